from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.access import check_group
from ..tools.wa_number import is_us_number, number_variants
from .winback_enrollment import LIVE_STATES


class ResPartner(models.Model):
    _inherit = "res.partner"

    # Every inbound WhatsApp message and every opt-out looks the customer up
    # by number: indexed, as crm does for leads (a scan of a million
    # partners otherwise).
    phone_sanitized = fields.Char(index="btree_not_null")
    winback_last_order_date = fields.Date(
        "Last purchase",
        company_dependent=True,
        readonly=True,
        help="Date of the last confirmed sale order, in the company's time zone.",
    )
    winback_segment_id = fields.Many2one(
        "winback.segment",
        "Win-back segment",
        company_dependent=True,
        readonly=True,
    )
    winback_days_inactive = fields.Integer(
        "Days inactive",
        compute="_compute_winback_days_inactive",
        search="_search_winback_days_inactive",
        help="Days since the last confirmed purchase, in the company's time zone.",
    )
    winback_typical_interval = fields.Float(
        "Typical interval (days)",
        company_dependent=True,
        readonly=True,
        digits=(16, 1),
        help="The customer's rhythm: the median number of days between two of "
        "their purchase days (several purchases on one day count once). Known "
        "from 3 purchase days on.",
    )
    winback_next_purchase_date = fields.Date(
        "Expected next purchase",
        company_dependent=True,
        readonly=True,
        help="The last purchase plus the typical interval.",
    )
    winback_overdue_factor = fields.Float(
        "Overdue factor",
        compute="_compute_winback_overdue_factor",
        search="_search_winback_overdue_factor",
        digits=(16, 1),
        help="Days since the last purchase divided by the typical interval: 1 "
        "is on schedule, 4 is four intervals late. Empty with fewer than 3 "
        "purchase days.",
    )
    winback_rhythm_fallback = fields.Boolean(
        "No rhythm yet",
        compute="_compute_winback_overdue_factor",
        search="_search_winback_rhythm_fallback",
        help="Fewer than 3 purchase days: no typical interval yet, so the "
        "overdue-factor segments place this customer by the days since the last "
        "purchase.",
    )
    winback_dormant = fields.Boolean(
        "Dormant",
        copy=False,
        help="Stayed silent after the last call of a win-back campaign: never "
        "sent promotions again.",
    )
    winback_consent_date = fields.Datetime(
        "WhatsApp marketing consent",
        copy=False,
        tracking=True,
        help="When the customer agreed to receive marketing messages on WhatsApp.",
    )
    winback_consent_source = fields.Char(
        "Consent source",
        copy=False,
        tracking=True,
        help="Where the consent was collected (shop counter, web form, ...).",
    )
    winback_enrollment_ids = fields.One2many(
        "winback.enrollment", "partner_id", "Win-back enrollments"
    )
    winback_enrollment_count = fields.Integer(
        "Win-back", compute="_compute_winback_enrollment_count"
    )
    # Customers who hide their number on WhatsApp are known by this ID only.
    whatsapp_bsuid = fields.Char(
        "WhatsApp user ID",
        copy=False,
        index="btree_not_null",
        help="The business-scoped user ID WhatsApp gives this customer (for "
        "example IT.1502576394655843). Recorded from their messages; "
        "WhatsApp changes it when they change number. Messages go to it when "
        "no phone number is known.",
    )
    whatsapp_username = fields.Char(
        "WhatsApp username",
        copy=False,
        help="The username the customer chose on WhatsApp, shown instead of "
        "their number.",
    )

    def init(self):
        res = super().init()
        # One contact per WhatsApp user and company: the same customer
        # stays one partner.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS res_partner_whatsapp_bsuid_uniq
                ON res_partner (whatsapp_bsuid, COALESCE(company_id, 0))
             WHERE whatsapp_bsuid IS NOT NULL
            """
        )
        return res

    def _compute_winback_enrollment_count(self):
        counts = dict(
            self.env["winback.enrollment"]._read_group(
                [("partner_id", "in", self.ids)], ["partner_id"], ["__count"]
            )
        )
        for partner in self:
            partner.winback_enrollment_count = counts.get(partner, 0)

    @api.depends("winback_last_order_date")
    @api.depends_context("company")
    def _compute_winback_days_inactive(self):
        today = self._winback_today()
        for partner in self:
            last = partner.winback_last_order_date
            partner.winback_days_inactive = (today - last).days if last else 0

    @api.depends("winback_last_order_date", "winback_typical_interval")
    @api.depends_context("company")
    def _compute_winback_overdue_factor(self):
        today = self._winback_today()
        for partner in self:
            last = partner.winback_last_order_date
            interval = partner.winback_typical_interval
            partner.winback_overdue_factor = (
                (today - last).days / interval if last and interval else 0.0
            )
            partner.winback_rhythm_fallback = bool(last and not interval)

    def action_view_winback_enrollments(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_view_winback_enrollments()

    def _action_view_winback_enrollments(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "winback_whatsapp.winback_enrollment_action"
        )
        action["domain"] = [("partner_id", "=", self.id)]
        return action

    def _search_winback_days_inactive(self, operator, value):
        """Days inactive >= N is a last purchase on or before today - N."""
        flipped = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
        if operator not in flipped or not isinstance(value, int):
            raise NotImplementedError(
                self.env._("Days inactive can only be compared with a number.")
            )
        date = self._winback_today() - timedelta(days=value)
        domain = [("winback_last_order_date", flipped[operator], date)]
        if operator == "!=":
            domain = ["|", ("winback_last_order_date", "=", False)] + domain
        return domain

    def _search_winback_overdue_factor(self, operator, value):
        """Overdue factor >= F is a last purchase on or before today minus F
        times the typical interval: the partners are found in SQL."""
        operators = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
        if operator not in operators or not isinstance(value, int | float):
            raise NotImplementedError(
                self.env._("The overdue factor can only be compared with a number.")
            )
        key = str(self.env.company.id)
        self.flush_model(["winback_last_order_date", "winback_typical_interval"])
        query = SQL(
            """(
            SELECT id FROM res_partner
             WHERE winback_typical_interval ? %(key)s
               AND (%(today)s - (winback_last_order_date ->> %(key)s)::date)
                   / (winback_typical_interval ->> %(key)s)::float8
                   %(operator)s %(value)s)
            """,
            key=key,
            today=self._winback_today(),
            operator=SQL(operators[operator]),
            value=float(value),
        )
        return [("id", "in", query)]

    def _search_winback_rhythm_fallback(self, operator, value):
        if operator not in ("=", "!=") or not isinstance(value, bool):
            raise NotImplementedError(
                self.env._("No rhythm yet can only be compared with true or false.")
            )
        key = str(self.env.company.id)
        self.flush_model(["winback_last_order_date", "winback_typical_interval"])
        query = SQL(
            """(
            SELECT id FROM res_partner
             WHERE winback_last_order_date ? %(key)s
               AND NOT COALESCE(winback_typical_interval, '{}') ? %(key)s)
            """,
            key=key,
        )
        return [("id", "in" if (operator == "=") == value else "not in", query)]

    def _winback_today(self):
        tz = self.env.company.partner_id.tz or "UTC"
        return fields.Date.context_today(self.with_context(tz=tz))

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    def write(self, vals):
        result = super().write(vals)
        if "tz" in vals:
            # Their queued messages look their send window up again.
            self.env["winback.message"].sudo()._forget_send_windows(partners=self)
        return result

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _winback_opt_out(self, reason, numbers=None, when=None, bsuids=None):
        """Take these partners' WhatsApp numbers (or ``numbers``, E.164) and
        WhatsApp user IDs (or ``bsuids``) off every promotional send at
        once: blacklist, user-ID opt-out, stop running enrollments, cancel
        queued messages. The reason is noted in the chatter. ``when`` is the
        customer's own time of the opt-out (default: now).

        Works without partner (a STOP from an unknown number) and whatever
        the number looks like: an opt-out is never lost."""
        numbers = {n for n in (*(numbers or []), *self.mapped("phone_sanitized")) if n}
        bsuids = {b for b in (*(bsuids or []), *self.mapped("whatsapp_bsuid")) if b}
        partners = self
        if bsuids:
            # No number to blacklist is no excuse: the user ID is opted out.
            self.env["winback.bsuid.optout"].sudo()._winback_add(
                bsuids, reason, when=when
            )
            partners |= (
                self.env["res.partner"]
                .sudo()
                .with_context(active_test=False)
                .search([("whatsapp_bsuid", "in", sorted(bsuids))])
            )
        if numbers:
            blacklisted = (
                self.env["phone.blacklist"]
                .sudo()
                ._winback_add(sorted(numbers), reason, when=when)
            )
            lines = numbers | set(blacklisted.mapped("number"))
            partners |= (
                self.env["res.partner"]
                .sudo()
                .with_context(active_test=False)
                .search([("phone_sanitized", "in", sorted(lines))])
            )
        enrollments = (
            self.env["winback.enrollment"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", partners.ids),
                    ("state", "in", LIVE_STATES),
                ]
            )
        )
        enrollments.write({"state": "opted_out", "outcome_date": fields.Datetime.now()})
        self.env["winback.message"].sudo().search(
            [
                ("partner_id", "in", partners.ids),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
            ]
        ).write({"state": "cancelled"})
        for partner in partners:
            partner.message_post(body=reason, subtype_xmlid="mail.mt_note")
        return partners

    def _winback_marketing_refusal(self, number):
        """Why a WhatsApp marketing message may not go to this partner (none:
        an unknown number) at ``number`` (E.164), or False: no consent, opted
        out (blacklist), dormant, or a United States number (Meta delivers no
        marketing template there). The send cron checks the same in SQL as
        it claims its messages (``winback.sender._due_query``)."""
        partner = self
        if not partner:
            code = "no_partner"
        elif not partner.winback_consent_date or not partner.winback_consent_source:
            code = "no_consent"
        elif (
            partner.sudo().phone_sanitized_blacklisted
            if number == partner.phone_sanitized
            else self.env["phone.blacklist"]
            .sudo()
            .search_count([("number", "=", number)], limit=1)
        ):
            code = "blacklisted"
        elif (
            self.env["winback.bsuid.optout"]
            .sudo()
            ._winback_is_opted_out([partner.sudo().whatsapp_bsuid, number])
        ):
            code = "blacklisted"
        elif partner.winback_dormant:
            code = "dormant"
        elif is_us_number(number):
            code = "us_number"
        else:
            return False
        return partner._winback_refusal_text(code, number)

    def _winback_refusal_text(self, code, number):
        """Why a WhatsApp message may not go to this partner (none: an
        unknown number) at ``number``, for the user, from a refusal code of
        ``winback.sender``'s ``REFUSALS``."""
        partner = self
        if code == "partner_company":
            return self.env._(
                "Not sent: the customer belongs to another company (%(company)s).",
                company=partner.company_id.name,
            )
        if code == "no_partner":
            return self.env._(
                "No customer for %(number)s: marketing messages go to consenting "
                "customers only.",
                number=number,
            )
        if code == "no_consent":
            return self.env._(
                "%(partner)s has not given WhatsApp marketing consent (date and "
                "source on the Win-back tab of the contact).",
                partner=partner.display_name,
            )
        if code == "blacklisted" and not (number or "").startswith("+"):
            return self.env._(
                "%(partner)s opted out of WhatsApp marketing messages: none "
                "goes to them.",
                partner=partner.display_name,
            )
        if code == "blacklisted":
            return self.env._(
                "%(number)s is on the blacklist (the customer opted out): no "
                "marketing message goes to it.",
                number=number,
            )
        if code == "us_number":
            return self.env._(
                "%(number)s is a United States number: Meta does not deliver "
                "WhatsApp marketing messages to it. Utility templates and "
                "replies within 24 hours still go.",
                number=number,
            )
        return self.env._(
            "%(partner)s is dormant (silent after a whole win-back "
            "campaign): no more marketing messages.",
            partner=partner.display_name,
        )

    # WEBHOOK

    @api.model
    def _winback_find_by_number(self, number, company=None):
        """The partner behind an E.164 number: its sanitized number, or its
        mobile or phone written with the country code (``+39 333 123 4567``,
        ``0039 333...``), through phone_validation's indexed search. Several
        partners share it: the one enrolled in a running campaign first,
        then the most recent customer, then the oldest."""
        if not number:
            return self.browse()
        # phone_mobile_search runs its own SQL on the raw columns.
        self.flush_model(["mobile", "phone", "phone_sanitized"])
        # The same line may be kept in another form (Argentina's mobile 9,
        # Mexico's former mobile 1, Brazil's ninth digit).
        numbers = [number, *number_variants(number)]
        domain = [("phone_sanitized", "in", numbers)]
        for candidate in numbers:
            domain = ["|", *domain, ("phone_mobile_search", "=", candidate)]
        partners = self.sudo().search(domain)
        if company:
            partners = partners.filtered(
                lambda p: not p.company_id or p.company_id == company
            )
        if len(partners) <= 1:
            return partners
        self.env["sale.order"].flush_model(["partner_id", "state", "date_order"])
        self.env["winback.enrollment"].flush_model(["partner_id", "state"])
        self.env.cr.execute(
            """
            SELECT p.id,
                   EXISTS (SELECT 1 FROM winback_enrollment e
                            WHERE e.partner_id = p.id AND e.state = 'running'),
                   (SELECT max(o.date_order) FROM sale_order o
                     WHERE o.partner_id = p.id AND o.state = 'sale')
              FROM res_partner p WHERE p.id IN %s
            """,
            (tuple(partners.ids),),
        )
        rows = self.env.cr.fetchall()
        rows.sort(key=lambda r: (not r[1], -(r[2].timestamp() if r[2] else 0), r[0]))
        return self.browse(rows[0][0])

    @api.model
    def _winback_find_by_bsuid(self, bsuids, company=None):
        """The partner behind a WhatsApp user ID (BSUID): the first of
        ``bsuids`` a partner holds; of ``company``'s partners, its own
        before the shared ones."""
        bsuids = [b for b in bsuids or () if b]
        if not bsuids:
            return self.browse()
        partners = self.sudo().search([("whatsapp_bsuid", "in", bsuids)])
        if company:
            partners = partners.filtered(
                lambda p: not p.company_id or p.company_id == company
            )
        for bsuid in bsuids:
            found = partners.filtered(lambda p, b=bsuid: p.whatsapp_bsuid == b)
            if found:
                return found.sorted(lambda p: (not p.company_id, p.id))[:1]
        return self.browse()

    def _winback_record_bsuid(self, bsuid, username=None):
        """Remember the WhatsApp user ID (and username) this partner wrote
        from, unless another contact of the same company holds it already.
        Returns whether the partner holds it now."""
        self.ensure_one()
        partner = self.sudo()
        vals = {}
        if username and partner.whatsapp_username != username:
            vals["whatsapp_username"] = username
        if bsuid and partner.whatsapp_bsuid != bsuid:
            company_id = partner.company_id.id or False
            taken = partner.with_context(active_test=False).search_count(
                [
                    ("whatsapp_bsuid", "=", bsuid),
                    ("company_id", "=", company_id),
                    ("id", "!=", partner.id),
                ],
                limit=1,
            )
            if not taken:
                vals["whatsapp_bsuid"] = bsuid
        if vals:
            partner.write(vals)
        return partner.whatsapp_bsuid == bsuid
