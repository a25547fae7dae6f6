import logging
import time
from datetime import timedelta

import psycopg2
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL, split_every
from odoo.tools.safe_eval import safe_eval

from ..tools.access import check_group
from ..tools.cron import commit_batch, retry_serialization_failure
from ..tools.notification import success

_logger = logging.getLogger(__name__)

LEVERS = [
    ("news", "News"),
    ("benefit", "Benefit"),
    ("offer", "Offer with a deadline"),
]

# Partners are recomputed in ranges of ids: one transaction per range, so a
# million customers never sit in one huge transaction.
RECOMPUTE_CHUNK = 250_000
# Incremental nights recompute the commercial entities that may have changed,
# this many at a time.
INCREMENTAL_CHUNK = 50_000
INCREMENTAL_MARGIN = timedelta(hours=1)
FULL_RECOMPUTE_EVERY = timedelta(days=7)
PARAM_LAST_RUN = "winback_whatsapp.recompute_last_run"
PARAM_LAST_FULL = "winback_whatsapp.recompute_last_full"
PARAM_CHECKPOINT = "winback_whatsapp.recompute_checkpoint"
# A cron run stops after this many seconds and re-triggers itself: well
# under Odoo's limit_time_real_cron (limit_time_real, 120 s, by default),
# leaving room for the chunk that crosses the budget.
RECOMPUTE_TIME_BUDGET = 60


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
    min_days = fields.Integer(
        "From (days)",
        required=True,
        help="Customers whose last confirmed purchase is at least this many days "
        "old enter the segment.",
    )
    max_days = fields.Integer(
        "To (days)",
        help="Last day of the range, included. Leave empty for an open-ended "
        "segment (for instance 180+ days).",
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

    _sql_constraints = [
        ("min_days_positive", "CHECK(min_days >= 0)", "Days cannot be negative."),
    ]

    @api.depends("min_days", "max_days")
    def _compute_range_display(self):
        for segment in self:
            if segment.max_days:
                segment.range_display = self.env._(
                    "%(min)s–%(max)s days", min=segment.min_days, max=segment.max_days
                )
            else:
                segment.range_display = self.env._(
                    "%(min)s+ days", min=segment.min_days
                )

    def _compute_partner_count(self):
        counts = {}
        if self.ids:
            self.env["res.partner"].flush_model(["winback_segment_id"])
            for company in self.company_id:
                self.env.cr.execute(
                    SQL(
                        """
                        SELECT (winback_segment_id ->> %(key)s)::int, count(*)
                          FROM res_partner
                         WHERE (winback_segment_id ->> %(key)s)::int IN %(ids)s
                      GROUP BY 1
                        """,
                        key=str(company.id),
                        ids=tuple(self.ids),
                    )
                )
                counts.update(self.env.cr.fetchall())
        for segment in self:
            segment.partner_count = counts.get(segment.id, 0)

    @api.constrains("min_days", "max_days", "company_id", "active")
    def _check_ranges(self):
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
        for company in self.company_id:
            segments = self.search(
                [("company_id", "=", company.id)], order="min_days, id"
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
        if {"min_days", "max_days", "filter_domain", "active"} & set(vals):
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
        for company in self.company_id or self.env.company:
            self._recompute_company(company)

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
            segment.tag_id = self.env["res.partner.category"].create(
                {"name": self.env._("Win-back: %(name)s", name=segment.name)}
            )
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

    @api.model
    def _cron_recompute(self):
        """Nightly recompute of every company's segments (03:00 by default).

        The first run, a run after segments were edited and a weekly safety
        run recompute everyone, in chunks of partner ids, one transaction
        each, reporting progress and, past the time budget, re-triggering
        themselves to resume from a checkpoint. Other nights are incremental:
        only the customers with an order or partner change since the previous
        run, and those whose days inactive crossed a segment boundary since.

        :return: the number of partners whose values changed
        """
        params = self.env["ir.config_parameter"].sudo()
        companies = self.sudo().search([]).company_id.sorted("id")
        now = self.env.cr.now()
        last_run = fields.Datetime.to_datetime(params.get_param(PARAM_LAST_RUN))
        last_full = fields.Datetime.to_datetime(params.get_param(PARAM_LAST_FULL))
        checkpoint = params.get_param(PARAM_CHECKPOINT)
        full = (
            checkpoint
            or not last_run
            or not last_full
            or now - last_full > FULL_RECOMPUTE_EVERY
            or self.sudo()
            .with_context(active_test=False)
            .search_count([("write_date", ">=", last_run)], limit=1)
        )
        if full:
            changed, finished = self._recompute_full(companies, checkpoint or "")
            if not finished:
                return changed
            run_started = fields.Datetime.to_datetime(
                checkpoint.split("@")[1] if checkpoint else now
            )
            params.set_param(PARAM_LAST_FULL, fields.Datetime.to_string(run_started))
        else:
            run_started = now
            changed = self._recompute_incremental(companies, last_run)
        params.set_param(PARAM_LAST_RUN, fields.Datetime.to_string(run_started))
        commit_batch(self.env.cr)
        return changed

    def _recompute_full(self, companies, checkpoint):
        """Everyone, chunk by chunk. Returns (changed, finished)."""
        params = self.env["ir.config_parameter"].sudo()
        started = time.monotonic()
        position, _sep, run_started = checkpoint.partition("@")
        run_started = run_started or fields.Datetime.to_string(self.env.cr.now())
        start_company, start_id = (
            (int(part) for part in position.split(":")) if position else (0, 0)
        )
        max_id = self._max_partner_id()
        chunks_per_company = max_id // RECOMPUTE_CHUNK + 1
        total = len(companies) * chunks_per_company
        done = changed = 0
        for company in companies:
            if company.id < start_company:
                done += chunks_per_company
                continue
            low = start_id if company.id == start_company else 0
            done += low // RECOMPUTE_CHUNK
            while low <= max_id:
                high = low + RECOMPUTE_CHUNK - 1
                changed += self._recompute_chunk(company, id_range=(low, high))
                low = high + 1
                done += 1
                params.set_param(PARAM_CHECKPOINT, f"{company.id}:{low}@{run_started}")
                self.env["ir.cron"]._notify_progress(
                    done=done, remaining=max(total - done, 0)
                )
                commit_batch(self.env.cr)
                if time.monotonic() - started > RECOMPUTE_TIME_BUDGET:
                    self.env.ref(
                        "winback_whatsapp.ir_cron_winback_recompute"
                    )._trigger()
                    return changed, False
        params.set_param(PARAM_CHECKPOINT, "")
        self._sync_all_tags(companies)
        return changed, True

    def _recompute_incremental(self, companies, last_run):
        """Only the customers whose values may have changed since
        ``last_run``: an order or the partner itself was written since (with
        a margin for transactions that were still open), or the days since
        their last purchase crossed a segment boundary."""
        since = last_run - INCREMENTAL_MARGIN
        changed = 0
        for company in companies:
            key = str(company.id)
            tz = company.partner_id.tz or "UTC"
            today = fields.Date.context_today(self.with_context(tz=tz))
            last_day = fields.Date.context_today(
                self.with_context(tz=tz), timestamp=last_run
            )
            segments = self.sudo().search([("company_id", "=", company.id)])
            bounds = sorted(
                set(segments.mapped("min_days"))
                | {s.max_days + 1 for s in segments if s.max_days}
            )
            self.env.flush_all()
            self.env.cr.execute(
                SQL(
                    """
                SELECT buyer.commercial_partner_id
                  FROM sale_order so JOIN res_partner buyer ON buyer.id = so.partner_id
                 WHERE so.company_id = %(company)s AND so.write_date >= %(since)s
                 UNION
                SELECT commercial_partner_id FROM res_partner
                 WHERE write_date >= %(since)s
                 UNION
                SELECT commercial_partner_id FROM res_partner
                 WHERE winback_last_order_date ? %(key)s
                   AND EXISTS (
                       SELECT 1 FROM unnest(%(bounds)s::int[]) bound
                        WHERE %(today)s - (winback_last_order_date ->> %(key)s)::date
                              >= bound
                          AND %(last_day)s - (winback_last_order_date ->> %(key)s)::date
                              < bound)
                    """,
                    company=company.id,
                    since=since,
                    key=key,
                    bounds=bounds,
                    today=today,
                    last_day=last_day,
                )
            )
            commercial_ids = sorted(row[0] for row in self.env.cr.fetchall() if row[0])
            for chunk in split_every(INCREMENTAL_CHUNK, commercial_ids):
                changed += self._recompute_chunk(company, commercial_ids=list(chunk))
                commit_batch(self.env.cr)
        return changed

    def _recompute_chunk(self, company, id_range=None, commercial_ids=None):
        # An order confirmed meanwhile may touch a partner of the chunk.
        return retry_serialization_failure(
            self.env.cr,
            lambda: self._recompute_company(
                company, id_range=id_range, commercial_ids=commercial_ids
            ),
            5,
            "Win-back recompute chunk",
        )

    def _max_partner_id(self):
        self.env.cr.execute("SELECT COALESCE(max(id), 0) FROM res_partner")
        return self.env.cr.fetchone()[0]

    @api.model
    def _recompute_partners(self, partners, companies=None):
        """Update last purchase, segment and tag of ``partners`` (and of the
        rest of their commercial entity) at once, in ``companies`` (default:
        every company with segments).

        Called when an order is confirmed or cancelled, for the order's
        company only.
        """
        partners = partners.commercial_partner_id
        if not partners:
            return True
        if companies is None:
            companies = self.sudo().search([]).company_id
        for company in companies:
            self._recompute_company(company, commercial_ids=partners.ids)
        return True

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

    @api.model
    def _recompute_company(self, company, id_range=None, commercial_ids=None):
        """Set-based recompute of one company's last purchase dates, segments
        and tags, for the partners in ``id_range`` (inclusive id bounds) or
        the commercial entities ``commercial_ids``, or everyone.

        A commercial entity (a company, or a person without a parent) and all
        its contacts share one last purchase: the latest confirmed order any of
        them placed. Contacts therefore enter the segment with their company,
        so the person who has the mobile number gets the message.

        Only rows whose values change are written. Odoo's transactions are
        repeatable-read: when an order confirmation updates the same partner
        concurrently, one of the two transactions fails with a serialization
        error and is retried (the cron retries its chunk, Odoo retries the
        user's request), so no stale value overwrites a fresh one.
        """
        Partner = self.env["res.partner"]
        self.env.flush_all()
        key = str(company.id)
        tz = company.partner_id.tz or "UTC"
        today = fields.Date.context_today(self.with_context(tz=tz))
        segments = self.sudo().search([("company_id", "=", company.id)])
        subselects = segments._filter_subselects()
        self.env.flush_all()  # segments archived for a broken filter

        if commercial_ids:
            scope = SQL("p.commercial_partner_id = ANY(%s)", list(commercial_ids))
        elif id_range:
            scope = SQL("p.id BETWEEN %s AND %s", *id_range)
        else:
            scope = SQL("TRUE")
        self.env.cr.execute(
            "DROP TABLE IF EXISTS winback_recompute_tmp; "
            "CREATE TEMP TABLE winback_recompute_tmp ("
            " partner_id int PRIMARY KEY, last_date date,"
            " old_segment int, new_segment int) ON COMMIT DROP"
        )
        try:
            with self.env.cr.savepoint(flush=False):
                changed = self._recompute_fill(company, scope, today, subselects)
        except pg_errors.SerializationFailure:
            raise
        except psycopg2.Error:
            broken = segments._find_broken_filters(subselects)
            if not broken:
                raise
            for segment, error in broken.items():
                segment._disable_broken_filter(error)
                del subselects[segment]
            self.env.flush_all()
            changed = self._recompute_fill(company, scope, today, subselects)
        if changed:
            self._apply_recompute(key)
        if commercial_ids:
            Partner.invalidate_model(
                ["winback_last_order_date", "winback_segment_id", "category_id"]
            )
        else:
            Partner.invalidate_model(
                ["winback_last_order_date", "winback_segment_id", "category_id"],
                flush=False,
            )
        return changed

    @api.model
    def _recompute_fill(self, company, scope, today, subselects):
        """Fill winback_recompute_tmp with the partners of ``scope`` whose
        last purchase or segment changes; returns their number."""
        key = str(company.id)
        tz = company.partner_id.tz or "UTC"
        # A segment's extra filter becomes a sub-select over res_partner.
        filters = [
            SQL("WHEN %s THEN sc.id IN %s", segment.id, subselect)
            for segment, subselect in subselects.items()
        ]
        filter_sql = (
            SQL("CASE s.id %s ELSE TRUE END", SQL(" ").join(filters))
            if filters
            else SQL("TRUE")
        )
        self.env.cr.execute(
            SQL(
                """
            WITH scoped AS (
                SELECT p.id, p.commercial_partner_id, p.active,
                       (p.winback_last_order_date ->> %(key)s)::date AS old_date,
                       (p.winback_segment_id ->> %(key)s)::int AS old_segment
                  FROM res_partner p
                 WHERE %(scope)s
            ), last_order AS (
                SELECT buyer.commercial_partner_id AS commercial_id,
                       max(timezone(%(tz)s, so.date_order AT TIME ZONE 'UTC'))::date
                           AS last_date
                  FROM sale_order so
                  JOIN res_partner buyer ON buyer.id = so.partner_id
                 WHERE so.state = 'sale'
                   AND so.company_id = %(company)s
                   AND buyer.commercial_partner_id IN (
                       SELECT commercial_partner_id FROM scoped)
              GROUP BY buyer.commercial_partner_id
            ), target AS (
                SELECT sc.id, sc.old_date, sc.old_segment, lo.last_date,
                       (SELECT s.id
                          FROM winback_segment s
                         WHERE s.company_id = %(company)s AND s.active
                           AND %(today)s - lo.last_date >= s.min_days
                           AND (COALESCE(s.max_days, 0) = 0
                                OR %(today)s - lo.last_date <= s.max_days)
                           AND %(filter)s
                      ORDER BY s.min_days
                         LIMIT 1) AS new_segment
                  FROM scoped sc
             LEFT JOIN last_order lo
                    ON lo.commercial_id = sc.commercial_partner_id AND sc.active
                 WHERE lo.last_date IS NOT NULL OR sc.old_date IS NOT NULL
                    OR sc.old_segment IS NOT NULL
            )
            INSERT INTO winback_recompute_tmp
            SELECT id, last_date, old_segment, new_segment
              FROM target p
             WHERE last_date IS DISTINCT FROM old_date
                OR new_segment IS DISTINCT FROM old_segment
                """,
                key=key,
                scope=scope,
                tz=tz,
                company=company.id,
                today=today,
                filter=filter_sql,
            )
        )
        return self.env.cr.rowcount

    def _apply_recompute(self, key):
        """Write winback_recompute_tmp into res_partner and the tag relation."""
        self.env.cr.execute(
            SQL(
                """
            UPDATE res_partner p
               SET winback_last_order_date = NULLIF(CASE
                       WHEN t.last_date IS NULL
                       THEN COALESCE(p.winback_last_order_date, '{}'::jsonb) - %(key)s
                       ELSE COALESCE(p.winback_last_order_date, '{}'::jsonb)
                            || jsonb_build_object(%(key)s, t.last_date)
                   END, '{}'::jsonb),
                   winback_segment_id = NULLIF(CASE
                       WHEN t.new_segment IS NULL
                       THEN COALESCE(p.winback_segment_id, '{}'::jsonb) - %(key)s
                       ELSE COALESCE(p.winback_segment_id, '{}'::jsonb)
                            || jsonb_build_object(%(key)s, t.new_segment)
                   END, '{}'::jsonb)
              FROM winback_recompute_tmp t
             WHERE p.id = t.partner_id
                """,
                key=key,
            )
        )
        self.env.cr.execute(
            """
            DELETE FROM res_partner_res_partner_category_rel r
             USING winback_recompute_tmp t, winback_segment s
             WHERE r.partner_id = t.partner_id
               AND s.id = t.old_segment
               AND r.category_id = s.tag_id
               AND t.old_segment IS DISTINCT FROM t.new_segment
            """
        )
        self.env.cr.execute(
            """
            INSERT INTO res_partner_res_partner_category_rel
                            (category_id, partner_id)
            SELECT s.tag_id, t.partner_id
              FROM winback_recompute_tmp t
              JOIN winback_segment s ON s.id = t.new_segment
             WHERE s.tag_id IS NOT NULL
            ON CONFLICT DO NOTHING
            """
        )

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
                ON CONFLICT DO NOTHING
                    """,
                    key=key,
                )
            )
        self.env["res.partner"].invalidate_model(["category_id"], flush=False)
