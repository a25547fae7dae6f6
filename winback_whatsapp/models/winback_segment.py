import logging

import psycopg2
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, LazyTranslate
from odoo.tools.safe_eval import safe_eval

from ..tools.access import check_group
from ..tools.notification import success

_logger = logging.getLogger(__name__)
_lt = LazyTranslate(__name__)

LEVERS = [
    ("news", "News"),
    ("benefit", "Benefit"),
    ("offer", "Offer with a deadline"),
]
# The default segments' names, by lever: data/winback_segment_data.xml for
# the main company, res.company for the others.
DEFAULT_NAMES = {
    "news": _lt("Lukewarm"),
    "benefit": _lt("Cooling"),
    "offer": _lt("Cold"),
}
MODES = [
    ("days", "Days since last purchase"),
    ("factor", "Overdue factor"),
]


class WinbackSegment(models.Model):
    _name = "winback.segment"
    _description = "Win-back Inactivity Segment"
    _order = "company_id, min_days, id"

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    mode = fields.Selection(
        MODES,
        required=True,
        default="days",
        help="Days since last purchase: the same days for every customer. "
        "Overdue factor: each customer by their own rhythm, the days since "
        "their last purchase divided by their typical interval between "
        "purchases (a weekly customer away 40 days is 5.7× overdue, a yearly "
        "one at 200 days 0.5×). Customers with fewer than 3 purchase days have "
        "no rhythm yet: they enter by the days range instead.",
    )
    min_days = fields.Integer(
        "From (days)",
        required=True,
        help="Customers whose last confirmed purchase is at least this many days "
        "old enter the segment. In overdue-factor mode, only the customers "
        "with fewer than 3 purchase days (no rhythm yet) enter by days.",
    )
    max_days = fields.Integer(
        "To (days)",
        help="Last day of the range, included. Leave empty for an open-ended "
        "segment (for instance 180+ days).",
    )
    min_factor = fields.Float(
        "From (× rhythm)",
        digits=(16, 2),
        help="Overdue-factor mode: customers whose days since the last purchase "
        "are at least this many times their typical interval enter the segment.",
    )
    max_factor = fields.Float(
        "To (× rhythm)",
        digits=(16, 2),
        help="Overdue-factor mode: end of the range, excluded (1.5 to 2.5, then "
        "2.5 to 4). Leave empty for an open-ended segment (for instance 4×+).",
    )
    lever = fields.Selection(
        LEVERS,
        required=True,
        default="news",
        help="The proportionate reason to come back: news for the lukewarm, a "
        "benefit for the cooling, an offer with a deadline for the cold.",
    )
    tag_id = fields.Many2one(
        "res.partner.category",
        "Tag",
        readonly=True,
        ondelete="set null",
        help="Partner tag kept in sync with the segment's members. You may rename "
        "it; the segment keeps using it.",
    )
    tag_color = fields.Integer(related="tag_id.color", string="Tag color")
    filter_domain = fields.Char(
        "Extra filter",
        default="[]",
        help="Only customers matching this filter enter the segment.",
    )
    filter_error = fields.Text(
        "Filter error",
        readonly=True,
        copy=False,
        help="The extra filter failed at recompute time (a field removed since, "
        "a value the data does not accept): the segment was archived. Fix the "
        "filter, then unarchive it.",
    )
    range_display = fields.Char("Inactive for", compute="_compute_range_display")
    partner_count = fields.Integer("Customers", compute="_compute_partner_count")
    fallback_count = fields.Integer(
        "Placed by days",
        compute="_compute_partner_count",
        help="Overdue-factor mode: the customers of this segment with fewer "
        "than 3 purchase days, placed by the days since their last purchase.",
    )

    _sql_constraints = [
        ("min_days_positive", "CHECK(min_days >= 0)", "Days cannot be negative."),
        (
            "factors_positive",
            "CHECK(COALESCE(min_factor, 0) >= 0 AND COALESCE(max_factor, 0) >= 0)",
            "Overdue factors cannot be negative.",
        ),
    ]

    @api.depends("mode", "min_days", "max_days", "min_factor", "max_factor")
    def _compute_range_display(self):
        for segment in self:
            if segment.max_days:
                days = self.env._(
                    "%(min)s–%(max)s days", min=segment.min_days, max=segment.max_days
                )
            else:
                days = self.env._("%(min)s+ days", min=segment.min_days)
            # Formatted apart: the translation extractor cannot read an
            # f-string inside the call.
            low, high = (
                format(f, "g") for f in (segment.min_factor, segment.max_factor)
            )
            if segment.mode != "factor":
                segment.range_display = days
            elif segment.max_factor:
                segment.range_display = self.env._(
                    "%(min)s–%(max)s× rhythm (else %(days)s)",
                    min=low,
                    max=high,
                    days=days,
                )
            else:
                segment.range_display = self.env._(
                    "%(min)s×+ rhythm (else %(days)s)", min=low, days=days
                )

    def _compute_partner_count(self):
        counts = {}
        if self.ids:
            self.env["res.partner"].flush_model(
                ["winback_segment_id", "winback_typical_interval"]
            )
            for company in self.company_id:
                self.env.cr.execute(
                    SQL(
                        """
                        SELECT (winback_segment_id ->> %(key)s)::int, count(*),
                               count(*) FILTER (
                                   WHERE NOT COALESCE(winback_typical_interval, '{}')
                                             ? %(key)s)
                          FROM res_partner
                         WHERE (winback_segment_id ->> %(key)s)::int IN %(ids)s
                      GROUP BY 1
                        """,
                        key=str(company.id),
                        ids=tuple(self.ids),
                    )
                )
                counts.update(
                    (segment, (total, fallback))
                    for segment, total, fallback in self.env.cr.fetchall()
                )
        for segment in self:
            total, fallback = counts.get(segment.id, (0, 0))
            segment.partner_count = total
            segment.fallback_count = fallback if segment.mode == "factor" else 0

    @api.constrains(
        "min_days",
        "max_days",
        "mode",
        "min_factor",
        "max_factor",
        "company_id",
        "active",
    )
    def _check_ranges(self):
        """Days ranges never overlap in a company (every segment has one: the
        fallback of the overdue-factor segments), nor do the factor ranges of
        its overdue-factor segments."""
        if self.env.context.get("winback_skip_overlap"):
            return
        for segment in self:
            if segment.max_days and segment.max_days < segment.min_days:
                raise ValidationError(
                    self.env._(
                        "Segment %(name)s ends (%(max)s days) before it starts "
                        "(%(min)s days).",
                        name=segment.name,
                        max=segment.max_days,
                        min=segment.min_days,
                    )
                )
            if segment.max_factor and segment.max_factor <= segment.min_factor:
                raise ValidationError(
                    self.env._(
                        "Segment %(name)s ends (%(max)s× rhythm) before it starts "
                        "(%(min)s× rhythm).",
                        name=segment.name,
                        max=format(segment.max_factor, "g"),
                        min=format(segment.min_factor, "g"),
                    )
                )
        for company in self.company_id:
            segments = self.search(
                [("company_id", "=", company.id)], order="min_days, id"
            )
            factor_segments = segments.filtered(lambda s: s.mode == "factor").sorted(
                lambda s: (s.min_factor, s.id)
            )
            for current, following in zip(
                factor_segments, factor_segments[1:], strict=False
            ):
                if not current.max_factor or current.max_factor > following.min_factor:
                    raise ValidationError(
                        self.env._(
                            "The overdue factors of segments %(first)s "
                            "(%(first_range)s) and %(second)s (%(second_range)s) "
                            "overlap in %(company)s: a customer can only be in "
                            "one segment.",
                            first=current.name,
                            first_range=current.range_display,
                            second=following.name,
                            second_range=following.range_display,
                            company=company.name,
                        )
                    )
            for current, following in zip(segments, segments[1:], strict=False):
                if not current.max_days or current.max_days >= following.min_days:
                    raise ValidationError(
                        self.env._(
                            "Segments %(first)s (%(first_range)s) and %(second)s "
                            "(%(second_range)s) overlap in %(company)s: a customer "
                            "can only be in one segment.",
                            first=current.name,
                            first_range=current.range_display,
                            second=following.name,
                            second_range=following.range_display,
                            company=company.name,
                        )
                    )

    @api.constrains("filter_domain")
    def _check_filter_domain(self):
        for segment in self:
            try:
                self.env["res.partner"].search_count(segment._get_filter_domain())
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The extra filter of segment %(name)s is not valid: %(error)s",
                        name=segment.name,
                        error=error,
                    )
                ) from error

    @api.model_create_multi
    def create(self, vals_list):
        segments = super().create(vals_list)
        segments._ensure_tags()
        return segments

    def write(self, vals):
        if "filter_domain" in vals or vals.get("active"):
            vals = {"filter_error": False, **vals}
        res = super().write(vals)
        if "name" in vals or "tag_id" in vals:
            self._ensure_tags()
        if {
            "min_days",
            "max_days",
            "mode",
            "min_factor",
            "max_factor",
            "filter_domain",
            "active",
        } & set(vals):
            # New thresholds: let the recompute cron move customers soon.
            self.env.ref("winback_whatsapp.ir_cron_winback_recompute")._trigger()
        return res

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_recompute(self):
        """Recompute now, for these segments' companies."""
        check_group(self.env, "winback_whatsapp.group_winback_manager")
        self._action_recompute()
        return success(
            self.env._("Win-back segments recomputed."),
            next_action={"type": "ir.actions.act_window_close"},
        )

    def _action_recompute(self):
        Recompute = self.env["winback.segment.recompute"]
        for company in self.company_id or self.env.company:
            Recompute._recompute_company(company)

    def action_view_partners(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_view_partners()

    def _action_view_partners(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Customers in %(segment)s", segment=self.name),
            "res_model": "res.partner",
            "view_mode": "list,kanban,form",
            "domain": [("winback_segment_id", "=", self.id)],
            "context": {
                "allowed_company_ids": [self.company_id.id],
                "create": False,
            },
        }

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _get_filter_domain(self):
        self.ensure_one()
        return safe_eval(self.filter_domain or "[]")

    def _ensure_tags(self):
        """Give every segment a partner tag; a new tag is given at once to the
        segment's current members."""
        for segment in self.filtered(lambda s: not s.tag_id):
            english = segment.with_context(lang="en_US")
            segment.tag_id = (
                self.env["res.partner.category"]
                .with_context(lang="en_US")
                .create({"name": english._tag_name()})
            )
            segment._translate_names()
            self.env.cr.execute(
                SQL(
                    """
                    INSERT INTO res_partner_res_partner_category_rel
                            (category_id, partner_id)
                    SELECT %(tag)s, id FROM res_partner
                     WHERE (winback_segment_id ->> %(key)s)::int = %(segment)s
                    ON CONFLICT DO NOTHING
                    """,
                    tag=segment.tag_id.id,
                    key=str(segment.company_id.id),
                    segment=segment.id,
                )
            )
        self.env["res.partner"].invalidate_model(["category_id"])

    def _tag_name(self):
        """The name of the segment's partner tag, in the context's language:
        "Win-back: Lukewarm"."""
        self.ensure_one()
        return self.env._("Win-back: %(name)s", name=self.name)

    def _translate_names(self, langs=None):
        """Give the default segment names (``DEFAULT_NAMES``) and the segment
        tags their translation in ``langs`` (default: the installed
        languages) where they have none yet. A name or a tag renamed in
        English is the user's own: left alone."""
        if langs is None:
            langs = [code for code, _name in self.env["res.lang"].get_installed()]
        langs = [lang for lang in langs if lang != "en_US"]
        if not langs:
            return
        for segment in self:
            english = segment.with_context(lang="en_US")
            for label in DEFAULT_NAMES.values():
                if english.name == english.env._(label):
                    segment._fill_translations(
                        segment,
                        {
                            lang: segment.with_context(lang=lang).env._(label)
                            for lang in langs
                        },
                    )
            tag = segment.tag_id.sudo().with_context(lang="en_US")
            if tag and tag.name == english._tag_name():
                segment._fill_translations(
                    tag,
                    {
                        lang: segment.with_context(lang=lang)._tag_name()
                        for lang in langs
                    },
                )

    @api.model
    def _fill_translations(self, record, names):
        """Set ``record``'s name in the languages of ``names`` ({lang: name})
        where it is still the English one."""
        english = record.with_context(lang="en_US").name
        missing = {
            lang: name
            for lang, name in names.items()
            if record.with_context(lang=lang).name == english and name != english
        }
        if missing:
            record.update_field_translations("name", missing)

    @api.model
    def _sync_all_tags(self, companies):
        """Reconcile every segment tag with the segments' members, in bulk:
        repairs tags a user added or removed by hand."""
        for company in companies:
            key = str(company.id)
            self.env.cr.execute(
                SQL(
                    """
                DELETE FROM res_partner_res_partner_category_rel r
                 USING winback_segment s, res_partner p
                 WHERE s.company_id = %(company)s
                   AND r.category_id = s.tag_id
                   AND p.id = r.partner_id
                   AND (p.winback_segment_id ->> %(key)s)::int IS DISTINCT FROM s.id
                    """,
                    company=company.id,
                    key=key,
                )
            )
            self.env.cr.execute(
                SQL(
                    """
                INSERT INTO res_partner_res_partner_category_rel
                            (category_id, partner_id)
                SELECT s.tag_id, p.id
                  FROM res_partner p
                  JOIN winback_segment s
                    ON s.id = (p.winback_segment_id ->> %(key)s)::int
                 WHERE s.tag_id IS NOT NULL
                   AND p.winback_segment_id ? %(key)s
                   AND NOT EXISTS (
                       SELECT 1 FROM res_partner_res_partner_category_rel r
                        WHERE r.partner_id = p.id AND r.category_id = s.tag_id)
                ON CONFLICT DO NOTHING
                    """,
                    key=key,
                )
            )
        self.env["res.partner"].invalidate_model(["category_id"], flush=False)

    def _filter_subselects(self):
        """{segment: SQL sub-select of its extra filter} for the segments
        with one. A filter that cannot be compiled any more (a field removed
        since it was written) archives its segment, with an alert."""
        Partner = self.env["res.partner"].sudo().with_context(active_test=False)
        subselects = {}
        for segment in self:
            try:
                domain = segment._get_filter_domain()
                if domain:
                    subselects[segment] = Partner._search(domain).subselect()
            except Exception as error:  # noqa: BLE001 - archived and reported
                segment._disable_broken_filter(error)
        return subselects

    def _find_broken_filters(self, subselects):
        """The segments whose filter fails when the database runs it (a value
        the data does not accept, for instance)."""
        broken = {}
        for segment, subselect in subselects.items():
            try:
                with self.env.cr.savepoint(flush=False):
                    self.env.cr.execute(SQL("SELECT count(*) FROM (%s) f", subselect))
            except pg_errors.SerializationFailure:
                raise
            except psycopg2.Error as error:
                broken[segment] = error
        return broken

    def _disable_broken_filter(self, error):
        """Archive the segment whose extra filter fails, so that its failure
        never blocks a sale nor the nightly recompute, and alert the
        responsibles of the campaigns that use it."""
        self.ensure_one()
        segment = self.sudo()
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _logger.warning(
            "Win-back segment %s archived: its extra filter fails: %s",
            segment.id,
            reason,
        )
        segment.write({"active": False, "filter_error": reason})
        note = self.env._(
            "The extra filter of segment %(segment)s fails (%(error)s): the "
            "segment was archived and its customers leave it. Fix the filter "
            "in CRM › Win-back › Segments (archived) and unarchive it.",
            segment=segment.display_name,
            error=reason,
        )
        campaigns = (
            self.env["winback.campaign"]
            .sudo()
            .search([("segment_ids", "in", segment.ids)])
        )
        campaigns._alert_responsible(note)
