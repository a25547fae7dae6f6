from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import html_escape

from ..tools.access import check_group
from ..tools.eligibility import INELIGIBLE_REASONS
from ..tools.notification import success
from ..tools.send_window import customer_timezone, send_window

MANAGER = "winback_whatsapp.group_winback_manager"
WEEKDAY_FIELDS = [
    "window_monday",
    "window_tuesday",
    "window_wednesday",
    "window_thursday",
    "window_friday",
    "window_saturday",
    "window_sunday",
]


class WinbackCampaign(models.Model):
    _name = "winback.campaign"
    _description = "Win-back Campaign"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    account_id = fields.Many2one(
        "winback.account",
        "WhatsApp account",
        required=True,
        check_company=True,
        domain="[('company_id', '=', company_id)]",
    )
    segment_ids = fields.Many2many(
        "winback.segment",
        string="Segments",
        check_company=True,
        domain="[('company_id', '=', company_id)]",
    )
    step_ids = fields.One2many("winback.step", "campaign_id", "Steps", copy=True)
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("running", "Running"),
            ("paused", "Paused"),
            ("done", "Done"),
        ],
        default="draft",
        required=True,
        copy=False,
        tracking=True,
    )
    user_id = fields.Many2one(
        "res.users",
        "Responsible",
        default=lambda self: self.env.user,
        tracking=True,
        help="Gets the follow-up activities: replies without a salesperson, "
        "template errors.",
    )
    # Send window, in the customer's time zone.
    window_start = fields.Float("Send from", default=9.0, required=True)
    window_end = fields.Float("Send until", default=19.0, required=True)
    window_monday = fields.Boolean("Monday", default=True)
    window_tuesday = fields.Boolean("Tuesday", default=True)
    window_wednesday = fields.Boolean("Wednesday", default=True)
    window_thursday = fields.Boolean("Thursday", default=True)
    window_friday = fields.Boolean("Friday", default=True)
    window_saturday = fields.Boolean("Saturday", default=True)
    window_sunday = fields.Boolean("Sunday", default=False)
    daily_cap = fields.Integer(
        default=200,
        help="At most this many new customers enter the campaign each day, so "
        "sends are staggered over several days. 0 means no cap.",
    )
    cooldown_days = fields.Integer(
        default=lambda self: self.env.company.winback_cooldown_days,
        help="Customers contacted by any win-back within this many days are "
        "left out.",
    )
    reentry_days = fields.Integer(
        "Re-entry after (days)",
        default=90,
        help="A customer who bought and lapsed again may re-enter after this "
        "many days from their previous enrollment.",
    )
    holdout_percent = fields.Float(
        "Holdout (%)",
        default=10.0,
        help="A random control group that receives nothing, kept to measure lift.",
    )
    holdout_seed = fields.Integer(
        default=0, help="Seed of the holdout draw; the draw is reproducible."
    )
    attribution_days = fields.Integer(
        default=14,
        help="A confirmed order within this many days of the last message counts "
        "as a conversion.",
    )
    grace_days = fields.Integer(
        default=lambda self: self.env.company.winback_grace_days,
        help="Days to wait after the last step before a silent customer becomes "
        "dormant.",
    )
    coupon_code = fields.Char(help="Value of the coupon code placeholder.")
    deadline_days = fields.Integer(
        default=14,
        help="The deadline placeholder is the enrollment date plus this many days.",
    )
    enrollment_ids = fields.One2many("winback.enrollment", "campaign_id")
    test_partner_id = fields.Many2one(
        "res.partner",
        "Test recipient",
        help="Send test sends every message of the campaign to this contact, "
        "and the step previews are rendered for them.",
    )
    enrolled_count = fields.Integer("Enrolled", compute="_compute_stats")
    holdout_count = fields.Integer("Holdout", compute="_compute_stats")
    sent_count = fields.Integer("Sent", compute="_compute_stats")
    replied_count = fields.Integer("Replied", compute="_compute_stats")
    converted_count = fields.Integer("Converted", compute="_compute_stats")
    currency_id = fields.Many2one(related="company_id.currency_id")
    revenue = fields.Monetary(compute="_compute_stats")
    preview_html = fields.Html("Eligibility preview", readonly=True, copy=False)
    preview_date = fields.Datetime("Counted on", readonly=True, copy=False)
    last_enroll_date = fields.Date(
        "Last daily enrollment",
        readonly=True,
        copy=False,
        help="The daily enroll cron enrolls a running campaign once a day.",
    )

    def _compute_stats(self):
        Enrollment = self.env["winback.enrollment"]
        stats = {
            (campaign.id, state, holdout): (count, revenue)
            for campaign, state, holdout, count, revenue in Enrollment._read_group(
                [("campaign_id", "in", self.ids)],
                ["campaign_id", "state", "is_holdout"],
                ["__count", "revenue:sum"],
            )
        }
        sent = dict(
            self.env["winback.message"]._read_group(
                [
                    ("campaign_id", "in", self.ids),
                    ("direction", "=", "outbound"),
                    ("state", "in", ("sent", "delivered", "read")),
                ],
                ["campaign_id"],
                ["__count"],
            )
        )
        for campaign in self:
            rows = {k: v for k, v in stats.items() if k[0] == campaign.id}
            treated = {k: v for k, v in rows.items() if not k[2]}
            campaign.enrolled_count = sum(v[0] for v in treated.values())
            campaign.holdout_count = sum(v[0] for k, v in rows.items() if k[2])
            campaign.replied_count = treated.get((campaign.id, "replied", False), (0,))[
                0
            ]
            converted = treated.get((campaign.id, "converted", False), (0, 0))
            campaign.converted_count = converted[0]
            campaign.revenue = converted[1]
            campaign.sent_count = sent.get(campaign, 0)

    @api.constrains("window_start", "window_end", *WEEKDAY_FIELDS)
    def _check_window(self):
        for campaign in self:
            if not 0 <= campaign.window_start < campaign.window_end <= 24:
                raise ValidationError(
                    self.env._("The send window must start before it ends.")
                )
            if not campaign._window_weekdays():
                raise ValidationError(
                    self.env._("The send window needs at least one weekday.")
                )

    @api.constrains("holdout_percent")
    def _check_holdout(self):
        for campaign in self:
            if not 0 <= campaign.holdout_percent <= 50:
                raise ValidationError(
                    self.env._("The holdout group is between 0% and 50%.")
                )

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    def write(self, vals):
        result = super().write(vals)
        if {"window_start", "window_end", "company_id", *WEEKDAY_FIELDS} & set(vals):
            self.env["winback.message"]._forget_send_windows(campaigns=self)
        return result

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_start(self):
        check_group(self.env, MANAGER)
        return self._action_start()

    def _action_start(self):
        for campaign in self:
            campaign._check_startable()
        self.write({"state": "running", "last_enroll_date": False})
        self._action_preview()
        self.env.ref("winback_whatsapp.ir_cron_winback_enroll")._trigger()
        return True

    def action_preview(self):
        check_group(self.env, MANAGER)
        return self._action_preview()

    def _action_preview(self):
        """Count today's eligible customers, and the others by reason. On
        demand: on a million customers the count takes seconds, too long for
        every opening of the form."""
        labels = {code: self.env._(label) for code, label in INELIGIBLE_REASONS}
        labels["eligible"] = self.env._("Eligible")
        for campaign in self:
            counts = (
                self.env["winback.enroller"]._eligibility_counts(campaign)
                if campaign.segment_ids
                else {}
            )
            rows = "".join(
                f"<tr><td>{html_escape(labels[reason])}</td>"
                f"<td class='text-end'>{counts[reason]}</td></tr>"
                for reason in ["eligible"] + [r for r, _l in INELIGIBLE_REASONS]
                if counts.get(reason)
            )
            campaign.write(
                {
                    "preview_html": (
                        f"<table class='table table-sm'><tbody>{rows}</tbody></table>"
                        if rows
                        else html_escape(
                            self.env._("No customer in these segments yet.")
                        )
                    ),
                    "preview_date": fields.Datetime.now(),
                }
            )
        return True

    def action_pause(self):
        check_group(self.env, MANAGER)
        return self._action_pause()

    def _action_pause(self):
        self.filtered(lambda s: s.state == "running").write({"state": "paused"})
        return True

    def action_done(self):
        check_group(self.env, MANAGER)
        return self._action_done()

    def _action_done(self):
        """End the campaign cleanly: nothing more is sent, running customers
        leave it as cancelled."""
        self.write({"state": "done"})
        enrollments = self.env["winback.enrollment"].search(
            [("campaign_id", "in", self.ids), ("state", "=", "running")]
        )
        enrollments._cancel()
        return True

    def action_enroll_now(self):
        check_group(self.env, MANAGER)
        return self._action_enroll_now()

    def _action_enroll_now(self):
        Enroller = self.env["winback.enroller"]
        for campaign in self:
            Enroller._enroll(campaign)
        return True

    def action_send_test(self):
        """Send every step's message to the test recipient, now, in order."""
        check_group(self.env, MANAGER)
        self.ensure_one()
        messages = self._action_send_test()
        failed = messages.filtered(lambda m: m.state == "failed")
        if failed:
            raise UserError(
                self.env._(
                    "The test failed: %(error)s",
                    error=failed[0].error_message or failed[0].error_code,
                )
            )
        return success(
            self.env._(
                "%(count)s test messages on their way to %(partner)s.",
                count=len(messages),
                partner=self.test_partner_id.display_name,
            )
        )

    def _action_send_test(self):
        """Queue every step's message to the test recipient: the send cron
        sends them once this transaction is committed (never twice when Odoo
        replays the request)."""
        partner = self.test_partner_id
        if not partner.phone_sanitized:
            raise UserError(
                self.env._("Choose a test recipient with a valid mobile number.")
            )
        Message = self.env["winback.message"].sudo()
        if "marketing" in self.step_ids.template_id.mapped("category"):
            refusal = partner.sudo()._winback_marketing_refusal(partner.phone_sanitized)
            if refusal:
                raise UserError(
                    self.env._(
                        "The test recipient receives marketing templates like any "
                        "customer: %(reason)s",
                        reason=refusal,
                    )
                )
        messages = Message.create(
            [
                {
                    "direction": "outbound",
                    "partner_id": partner.id,
                    "account_id": self.account_id.id,
                    "company_id": self.company_id.id,
                    "step_id": step.id,
                    "template_id": step.template_id.id,
                    "phone_e164": partner.phone_sanitized,
                    "state": "queued",
                    "scheduled_at": fields.Datetime.now(),
                }
                for step in self.step_ids
            ]
        )
        self.env["winback.sender"]._trigger_send()
        return messages

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _sample_partner(self):
        """Whom the previews are rendered for: the test recipient, else a
        customer of the campaign's segments, else the current user."""
        self.ensure_one()
        if self.test_partner_id:
            return self.test_partner_id
        if self.segment_ids:
            partner = self.env["res.partner"].search(
                [("winback_segment_id", "in", self.segment_ids.ids)], limit=1
            )
            if partner:
                return partner
        return self.env.user.partner_id

    def _window_weekdays(self):
        return {day for day, fname in enumerate(WEEKDAY_FIELDS) if self[fname]}

    def _check_startable(self):
        if not self.segment_ids:
            raise UserError(
                self.env._("Campaign %(name)s has no segment.", name=self.name)
            )
        if not 2 <= len(self.step_ids) <= 3:
            raise UserError(
                self.env._(
                    "A win-back campaign has two or three messages: %(name)s has "
                    "%(count)s.",
                    name=self.name,
                    count=len(self.step_ids),
                )
            )
        self.step_ids.template_id._check_placeholders()
        not_approved = self.step_ids.template_id.filtered(
            lambda t: t.status != "approved"
        )
        if not_approved and self.account_id.provider_type == "meta":
            raise UserError(
                self.env._(
                    "Templates not approved by Meta yet: %(names)s.",
                    names=", ".join(not_approved.mapped("name")),
                )
            )

    def _alert_responsible(self, note):
        """Put a to-do on the responsible and a note in the chatter."""
        for campaign in self:
            campaign.message_post(body=note, subtype_xmlid="mail.mt_note")
            campaign.activity_schedule(
                "mail.mail_activity_data_todo",
                summary=self.env._("Win-back campaign needs attention"),
                note=note,
                user_id=(campaign.user_id or self.env.user).id,
            )

    def _next_send_time(self, partner, number, when):
        """The first moment at or after ``when`` (naive UTC) inside this
        campaign's send window, in the customer's time zone: the partner's,
        else their number's (E.164), else the company's."""
        return self._send_window(partner, number, when)[0]

    def _send_window(self, partner, number, when):
        """``(opens, closes)``: the first moment at or after ``when`` (naive
        UTC) inside this campaign's send window in the customer's time zone
        (``_next_send_time``), and when that window closes."""
        self.ensure_one()
        tz = customer_timezone(partner.tz, number, self.company_id.partner_id.tz)
        return send_window(
            when, tz, self.window_start, self.window_end, self._window_weekdays()
        )
