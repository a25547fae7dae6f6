from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_datetime, formatLang, html_escape

from ..tools.access import check_group
from ..tools.eligibility import INELIGIBLE_REASONS
from ..tools.notification import success
from ..tools.send_window import customer_timezone, send_window
from .winback_lift import newcombe_interval, wilson_interval

MANAGER = "winback_whatsapp.group_winback_manager"
# Message states of a message that left: sent, then maybe delivered and read.
SENT_STATES = ("sent", "delivered", "read")
# The campaign's figures, each counted on the enrollments ``_stat_domain``
# selects: the funnel from enrolled to converted, and the holdout group.
FUNNEL = (
    "enrolled",
    "sent",
    "delivered",
    "read",
    "replied",
    "clicked",
    "converted",
    "holdout",
)
# Top of the lift chart's axis (percent): the first that fits every interval.
CHART_SCALE = [5, 10, 20, 25, 50, 75, 100]
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
    snooze_days = fields.Integer(
        "Snooze (days)",
        default=30,
        help="A customer who answers Not now leaves the campaign without a "
        "to-do and no win-back enrolls them before this many days; then they "
        "may enter again.",
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
    utm_campaign_id = fields.Many2one(
        "utm.campaign",
        "UTM campaign",
        readonly=True,
        copy=False,
        ondelete="restrict",
        help="Odoo's marketing campaign of this win-back, created with it: "
        "the orders it converts and the clicks on its links carry it, so "
        "Sales analysis grouped by campaign shows its revenue.",
    )
    utm_medium_id = fields.Many2one(
        "utm.medium",
        "UTM medium",
        compute="_compute_utm_medium_source",
        help="The medium of the orders it converts and of its links: WhatsApp.",
    )
    utm_source_id = fields.Many2one(
        "utm.source",
        "UTM source",
        compute="_compute_utm_medium_source",
        help="The source of the orders it converts and of its links: Win-back.",
    )
    click_count = fields.Integer(
        "Link clicks",
        related="utm_campaign_id.click_count",
        help="Clicks on the tracked links of the campaign's messages.",
    )
    test_partner_id = fields.Many2one(
        "res.partner",
        "Test recipient",
        help="Send test sends every message of the campaign to this contact, "
        "and the step previews are rendered for them.",
    )
    preview_partner_id = fields.Many2one(
        "res.partner",
        "Preview as",
        check_company=True,
        help="The sample customer the phone preview is rendered for, with their "
        "own values. Empty: the test recipient, else a customer of the "
        "campaign's segments.",
    )
    phone_preview = fields.Html(
        "Phone preview",
        compute="_compute_phone_preview",
        sanitize=True,
        help="Every message of the campaign as WhatsApp bubbles on the sample "
        "customer's phone: their values filled in, header images and "
        "quick-reply buttons.",
    )
    lift_chart = fields.Html(
        "Lift over holdout",
        compute="_compute_lift_chart",
        sanitize=True,
        help="Conversion of the treated customers against the holdout group, "
        "with 95% intervals (Wilson), and the lift with its 95% interval "
        "(Newcombe).",
    )
    enrolled_count = fields.Integer(
        "Enrolled",
        compute="_compute_stats",
        help="Customers who entered the campaign, outside the holdout group.",
    )
    holdout_count = fields.Integer("Holdout", compute="_compute_stats")
    sent_count = fields.Integer(
        "Sent",
        compute="_compute_stats",
        help="Enrolled customers who were sent at least one message.",
    )
    delivered_count = fields.Integer(
        "Delivered",
        compute="_compute_stats",
        help="Enrolled customers whose phone received at least one message.",
    )
    read_count = fields.Integer(
        "Read",
        compute="_compute_stats",
        help="Enrolled customers who read at least one message.",
    )
    replied_count = fields.Integer(
        "Replied",
        compute="_compute_stats",
        help="Enrolled customers who answered, whether they bought afterwards "
        "or not.",
    )
    clicked_count = fields.Integer(
        "Clicked",
        compute="_compute_stats",
        help="Enrolled customers who clicked a link of a message.",
    )
    converted_count = fields.Integer(
        "Converted",
        compute="_compute_stats",
        help="Enrolled customers who bought within the attribution window.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    revenue = fields.Monetary(
        compute="_compute_stats", help="Revenue of the converted customers."
    )
    lift = fields.Float(
        "Lift (points)",
        compute="_compute_stats",
        digits=(16, 1),
        help="Conversion of the enrolled customers minus conversion of the "
        "holdout group, in percentage points.",
    )
    queued_count = fields.Integer(
        "Queued",
        compute="_compute_stats",
        help="Messages waiting for the send window or for the send cron.",
    )
    message_sent_count = fields.Integer(
        "Messages sent", compute="_compute_stats", help="Messages sent so far."
    )
    failed_count = fields.Integer(
        "Failed", compute="_compute_stats", help="Messages that could not be sent."
    )
    next_send_at = fields.Datetime(
        "Next send",
        compute="_compute_stats",
        help="When the next messages go out: the earliest queued message or "
        "next step of an enrolled customer; for a running campaign nobody "
        "entered yet, the next opening of the send window after the first "
        "step's delay.",
    )
    eligible_count = fields.Integer(
        "Eligible",
        readonly=True,
        copy=False,
        help="Customers of the segments who could be enrolled at the last count "
        "(on start or with Count eligible customers).",
    )
    cost_estimate = fields.Monetary(
        "Estimated cost",
        readonly=True,
        copy=False,
        help="What Meta would charge for the first message to each eligible "
        "customer outside the holdout group, at the rate card's price for "
        "their country (at the last count).",
    )
    cost_estimate_max = fields.Monetary(
        "Estimated cost, every step",
        readonly=True,
        copy=False,
        help="The upper bound: every step sent to each eligible customer "
        "outside the holdout group (nobody replies, buys or stops first).",
    )
    cost = fields.Monetary(
        "Messaging cost",
        compute="_compute_costs",
        help="What Meta charged for the messages delivered so far, by the "
        "rate card.",
    )
    cost_per_reply = fields.Monetary("Cost per reply", compute="_compute_costs")
    cost_per_conversion = fields.Monetary(
        "Cost per conversion", compute="_compute_costs"
    )
    cost_per_incremental = fields.Monetary(
        "Cost per incremental conversion",
        compute="_compute_costs",
        help="Messaging cost / conversions beyond the holdout group's rate "
        "(segment by segment); empty while the messages added none.",
    )
    discount_granted = fields.Monetary(
        compute="_compute_costs",
        help="What the campaign's coupons took off the customers' orders.",
    )
    roi = fields.Float(
        "ROI (%)",
        compute="_compute_costs",
        digits=(16, 1),
        help="(Incremental revenue - messaging cost - discount granted) / "
        "(messaging cost + discount granted), in percent; the incremental "
        "revenue is measured against the holdout group, segment by segment.",
    )
    preview_html = fields.Html("Eligibility preview", readonly=True, copy=False)
    preview_date = fields.Datetime("Counted on", readonly=True, copy=False)
    last_enroll_date = fields.Date(
        "Last daily enrollment",
        readonly=True,
        copy=False,
        help="The daily enroll cron enrolls a running campaign once a day.",
    )

    @api.depends("state", "step_ids.delay_days")
    def _compute_stats(self):
        """The funnel of each campaign, one grouped query per figure: cheap
        on a million enrollments, and the smart buttons open exactly the
        records counted (``_stat_domain``)."""
        Enrollment = self.env["winback.enrollment"]
        counts = {}
        for stat in FUNNEL:
            counts[stat] = dict(
                Enrollment._read_group(
                    [("campaign_id", "in", self.ids), *self._stat_domain(stat)],
                    ["campaign_id"],
                    ["__count"],
                )
            )
        revenue = dict(
            Enrollment._read_group(
                [("campaign_id", "in", self.ids), *self._stat_domain("converted")],
                ["campaign_id"],
                ["revenue:sum"],
            )
        )
        # The lift of the Lift over Holdout report, all segments together.
        lift_rows = {
            campaign: rest
            for campaign, *rest in self.env["winback.lift"]._read_group(
                [("campaign_id", "in", self.ids)],
                ["campaign_id"],
                [
                    "treated_converted:sum",
                    "treated_count:sum",
                    "holdout_converted:sum",
                    "holdout_count:sum",
                ],
            )
        }
        messages = {
            (campaign, state): count
            for campaign, state, count in self.env["winback.message"]._read_group(
                [("campaign_id", "in", self.ids), ("direction", "=", "outbound")],
                ["campaign_id", "state"],
                ["__count"],
            )
        }
        next_enrollment = dict(
            Enrollment._read_group(
                [
                    ("campaign_id", "in", self.ids),
                    ("state", "=", "running"),
                    ("next_send_at", "!=", False),
                ],
                ["campaign_id"],
                ["next_send_at:min"],
            )
        )
        next_message = dict(
            self.env["winback.message"]._read_group(
                [
                    ("campaign_id", "in", self.ids),
                    ("direction", "=", "outbound"),
                    ("state", "=", "queued"),
                ],
                ["campaign_id"],
                ["scheduled_at:min"],
            )
        )
        Lift = self.env["winback.lift"]
        for campaign in self:
            for stat in FUNNEL:
                campaign[f"{stat}_count"] = counts[stat].get(campaign, 0)
            campaign.revenue = revenue.get(campaign, 0.0)
            campaign.lift = Lift._lift_figures(
                *lift_rows.get(campaign, (0, 0, 0, 0)), 0.0, 0.0
            )["lift"]
            campaign.queued_count = sum(
                messages.get((campaign, state), 0) for state in ("queued", "sending")
            )
            campaign.message_sent_count = sum(
                messages.get((campaign, state), 0) for state in SENT_STATES
            )
            campaign.failed_count = messages.get((campaign, "failed"), 0)
            planned = [
                when
                for when in (next_enrollment.get(campaign), next_message.get(campaign))
                if when
            ]
            campaign.next_send_at = min(planned) if planned else False
            if (
                not planned
                and campaign.state == "running"
                and campaign.step_ids
                and not campaign.enrolled_count
            ):
                campaign.next_send_at = campaign._first_batch_time()

    def _compute_utm_medium_source(self):
        self.utm_medium_id = self.env.ref(
            "winback_whatsapp.utm_medium_whatsapp", raise_if_not_found=False
        )
        self.utm_source_id = self.env.ref(
            "winback_whatsapp.utm_source_winback", raise_if_not_found=False
        )

    def _compute_costs(self):
        """Cost figures from the Lift over Holdout report's rows (one per
        segment): their costs, incremental conversions and revenue and
        discounts summed."""
        rows = self.env["winback.lift"].search([("campaign_id", "in", self.ids)])
        Cost = self.env["winback.cost"]
        for campaign in self:
            mine = rows.filtered(lambda r, c=campaign: r.campaign_id == c)
            cost = sum(mine.mapped("cost"))
            discount = sum(mine.mapped("discount"))
            figures = Cost._figures(
                cost,
                sum(mine.mapped("treated_replied")),
                sum(mine.mapped("treated_converted")),
                sum(mine.mapped("incremental_conversions")),
                sum(mine.mapped("incremental_revenue")),
                discount,
            )
            campaign.update(
                {
                    **figures,
                    "roi": 100.0 * figures["roi"],
                    "cost": cost,
                    "discount_granted": discount,
                }
            )

    @api.depends(
        "preview_partner_id",
        "test_partner_id",
        "segment_ids",
        "coupon_code",
        "deadline_days",
        "account_id",
        "step_ids.name",
        "step_ids.sequence",
        "step_ids.delay_days",
        "step_ids.template_id",
        "step_ids.template_id.body",
        "step_ids.template_id.header_image_url",
        "step_ids.template_id.param_ids.source",
        "step_ids.template_id.param_ids.fallback",
        "step_ids.template_id.button_ids.text",
    )
    def _compute_phone_preview(self):
        for campaign in self:
            steps = campaign.step_ids.filtered("template_id").sorted("sequence")
            campaign.phone_preview = (
                campaign._phone_frame(
                    Markup().join(step._phone_bubbles() for step in steps)
                )
                if steps
                else False
            )

    def _compute_lift_chart(self):
        for campaign in self:
            campaign.lift_chart = campaign._lift_chart_html(campaign._lift_chart_data())

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

    @api.model_create_multi
    def create(self, vals_list):
        # A campaign created running (a copy, an import) comes with its
        # messages: nobody receives them yet, they are not changes.
        campaigns = super(
            WinbackCampaign, self.with_context(winback_new_campaign=True)
        ).create(vals_list)
        campaigns._create_utm_campaigns()
        return campaigns.with_env(self.env)

    def write(self, vals):
        result = super().write(vals)
        if "name" in vals:
            self.utm_campaign_id.sudo().write({"title": vals["name"]})
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
        """Start, count who is eligible today and wake the enroll cron up.
        Returns a notification of what happens next: how many customers
        enter and when the first messages go out, or, when nobody is
        eligible, a warning with the reasons."""
        for campaign in self:
            campaign._check_startable()
        self.write({"state": "running", "last_enroll_date": False})
        counts = self._count_eligible()
        self.env.ref("winback_whatsapp.ir_cron_winback_enroll")._trigger()
        notification = self._start_notification(counts)
        # The figures read for the notification change as customers enter.
        self.invalidate_recordset(
            [
                name
                for name, field in self._fields.items()
                if field.compute == "_compute_stats"
            ]
        )
        return notification

    def _start_notification(self, counts):
        nobody = self.filtered(lambda c: not counts[c.id].get("eligible"))
        # Closing the notification reloads the form, which shows the progress.
        reload = {"type": "ir.actions.act_window_close"}
        if nobody:
            return {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "type": "warning",
                    "sticky": True,
                    "title": self.env._("Nobody is eligible today"),
                    "message": "\n".join(
                        campaign._no_eligible_reason(counts[campaign.id])
                        for campaign in nobody
                    ),
                    "next": reload,
                },
            }
        return success(
            "\n".join(
                self.env._(
                    "%(name)s: %(count)s customers eligible; the first messages "
                    "go out from %(when)s. Estimated cost: %(cost)s, up to "
                    "%(upper)s if every step is sent.",
                    name=campaign.name,
                    count=campaign.eligible_count,
                    # When the customers entering now get their first
                    # message (not an earlier customer's next one).
                    when=format_datetime(self.env, campaign._first_batch_time()),
                    cost=formatLang(
                        self.env,
                        campaign.cost_estimate,
                        currency_obj=campaign.currency_id,
                    ),
                    upper=formatLang(
                        self.env,
                        campaign.cost_estimate_max,
                        currency_obj=campaign.currency_id,
                    ),
                )
                for campaign in self
            ),
            next_action=reload,
        )

    def _no_eligible_reason(self, counts):
        """Why nobody of the segments can enter today, in words, from the
        eligibility ``counts`` ({reason: count})."""
        self.ensure_one()
        if not counts:
            return self.env._(
                "%(name)s: its segments (%(segments)s) have no customer yet. "
                "Segments are recomputed every night; the campaign enrolls "
                "customers as they lapse.",
                name=self.name,
                segments=", ".join(self.segment_ids.mapped("name")),
            )
        return self.env._(
            "%(name)s: no customer of its segments can be enrolled today. "
            "%(reasons)s. The campaign keeps running and enrolls customers as "
            "they become eligible.",
            name=self.name,
            reasons="; ".join(
                f"{self.env._(label)}: {counts[reason]}"
                for reason, label in INELIGIBLE_REASONS
                if counts.get(reason)
            ),
        )

    def action_preview(self):
        check_group(self.env, MANAGER)
        return self._action_preview()

    def _action_preview(self):
        self._count_eligible()
        return True

    def _count_eligible(self):
        """Count today's eligible customers, and the others by reason, and
        show them on the form; returns {campaign id: {reason: count}}. On
        demand: on a million customers the count takes seconds, too long for
        every opening of the form."""
        labels = {code: self.env._(label) for code, label in INELIGIBLE_REASONS}
        labels["eligible"] = self.env._("Eligible")
        result = {}
        Cost = self.env["winback.cost"]
        for campaign in self:
            counts, by_country = (
                Cost._eligibility_by_country(campaign)
                if campaign.segment_ids
                else ({}, {})
            )
            result[campaign.id] = counts
            estimate, upper = Cost._estimate(campaign, by_country)
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
                    "eligible_count": counts.get("eligible", 0),
                    "cost_estimate": estimate,
                    "cost_estimate_max": upper,
                }
            )
        return result

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

    def action_new_version(self):
        check_group(self.env, MANAGER)
        return self._action_new_version()

    def _action_new_version(self):
        """A draft copy of the campaign, steps included, to edit while this
        one keeps running (or is paused or ended by hand)."""
        self.ensure_one()
        copy = self.copy({"name": self.env._("%(name)s (new version)", name=self.name)})
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": copy.id,
            "view_mode": "form",
            "views": [(False, "form")],
        }

    def action_view_stat(self):
        """Smart buttons: the records behind one figure of the campaign, the
        figure's name in the context key ``winback_stat``."""
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_view_stat(self.env.context.get("winback_stat"))

    def _action_view_stat(self, stat):
        self.ensure_one()
        if stat == "lift":
            return {
                "type": "ir.actions.act_window",
                "name": self.env._("Lift over Holdout"),
                "res_model": "winback.lift",
                "view_mode": "list",
                "views": [(False, "list")],
                "domain": [("campaign_id", "=", self.id)],
            }
        if stat not in FUNNEL:
            raise UserError(self.env._("Unknown campaign figure: %s", stat))
        labels = {
            "enrolled": self.env._("Enrolled"),
            "sent": self.env._("Sent"),
            "delivered": self.env._("Delivered"),
            "read": self.env._("Read"),
            "replied": self.env._("Replied"),
            "clicked": self.env._("Clicked"),
            "converted": self.env._("Converted"),
            "holdout": self.env._("Holdout"),
        }
        return {
            "type": "ir.actions.act_window",
            "name": f"{self.name} · {labels[stat]}",
            "res_model": "winback.enrollment",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": [("campaign_id", "=", self.id), *self._stat_domain(stat)],
            "context": {"create": False},
        }

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

    @api.model
    def _stat_domain(self, stat):
        """The enrollments (of any campaign) counted by the figure ``stat``
        of FUNNEL."""
        treated = [("is_holdout", "=", False)]
        if stat == "holdout":
            return [("is_holdout", "=", True)]
        if stat == "enrolled":
            return treated
        if stat in ("sent", "delivered", "read"):
            states = SENT_STATES[SENT_STATES.index(stat) :]
            return treated + [
                (
                    "message_ids",
                    "any",
                    [("direction", "=", "outbound"), ("state", "in", states)],
                )
            ]
        if stat == "replied":
            return treated + [
                "|",
                ("state", "=", "replied"),
                ("message_ids", "any", [("direction", "=", "inbound")]),
            ]
        if stat == "clicked":
            return treated + [("link_clicked_at", "!=", False)]
        if stat == "converted":
            return treated + [("state", "=", "converted")]
        raise UserError(self.env._("Unknown campaign figure: %s", stat))

    def _create_utm_campaigns(self):
        """Each campaign's Odoo marketing campaign (``utm.campaign``), named
        after it, for those that have none yet."""
        missing = self.filtered(lambda campaign: not campaign.utm_campaign_id)
        utm_campaigns = (
            self.env["utm.campaign"]
            .sudo()
            .create([{"title": campaign.name} for campaign in missing])
        )
        for campaign, utm_campaign in zip(missing, utm_campaigns, strict=True):
            campaign.sudo().utm_campaign_id = utm_campaign

    def _utm_values(self):
        """The UTM values the campaign's converted orders and links carry:
        its campaign (created now for a campaign from before attribution),
        medium and source."""
        self.ensure_one()
        self._create_utm_campaigns()
        return {
            "campaign_id": self.utm_campaign_id.id,
            "medium_id": self.utm_medium_id.id,
            "source_id": self.utm_source_id.id,
        }

    def _first_batch_time(self):
        """When the first messages of a running campaign nobody entered yet
        go out: the first step's delay from now, at the next opening of the
        send window in the company's time zone."""
        self.ensure_one()
        now = fields.Datetime.now()
        first_step = self.step_ids[:1]
        return self._next_send_time(
            self.company_id.partner_id,
            False,
            now + timedelta(days=first_step.delay_days),
        )

    def _sample_partner(self):
        """Whom the previews are rendered for: the chosen sample customer,
        else the test recipient, else a customer of the campaign's segments,
        else the current user."""
        self.ensure_one()
        if self.preview_partner_id:
            return self.preview_partner_id
        if self.test_partner_id:
            return self.test_partner_id
        if self.segment_ids:
            partner = self.env["res.partner"].search(
                [("winback_segment_id", "in", self.segment_ids._origin.ids)], limit=1
            )
            if partner:
                return partner
        return self.env.user.partner_id

    def _phone_frame(self, content):
        """``content`` (bubbles) inside a phone's WhatsApp chat, headed by the
        account's name and the customer it is rendered for."""
        self.ensure_one()
        return Markup(
            '<div class="o_winback_phone">'
            '<div class="o_winback_phone_header">'
            '<i class="fa fa-whatsapp me-2" role="img" aria-label="WhatsApp"></i>'
            '<span class="o_winback_phone_account">%s</span>'
            '<span class="o_winback_phone_partner">%s</span></div>'
            '<div class="o_winback_phone_chat">%s</div></div>'
        ) % (
            self.account_id.name or "WhatsApp",
            self.env._("to %(partner)s", partner=self._sample_partner().display_name),
            content,
        )

    def _lift_chart_data(self):
        """Treated against holdout conversion of the campaign (all segments),
        as the lift report counts it: for each group its customers,
        conversions, rate and 95% Wilson interval (percent); the lift in
        points with its 95% Newcombe interval; ``too_small`` when the
        interval includes zero or a group is empty, i.e. the sample cannot
        tell the lift from chance."""
        self.ensure_one()
        totals = [0, 0, 0, 0]
        if self._origin.id:
            totals = self.env["winback.lift"]._read_group(
                [("campaign_id", "=", self._origin.id)],
                [],
                [
                    "treated_converted:sum",
                    "treated_count:sum",
                    "holdout_converted:sum",
                    "holdout_count:sum",
                ],
            )[0]
        x1, n1, x2, n2 = (int(value or 0) for value in totals)
        groups = []
        for key, label, converted, count in (
            ("treated", self.env._("Treated"), x1, n1),
            ("holdout", self.env._("Holdout"), x2, n2),
        ):
            low, high = wilson_interval(converted, count)
            groups.append(
                {
                    "key": key,
                    "label": label,
                    "count": count,
                    "converted": converted,
                    "rate": 100.0 * converted / count if count else 0.0,
                    "low": 100.0 * low,
                    "high": 100.0 * high,
                }
            )
        diff, low, high = newcombe_interval(x1, n1, x2, n2)
        return {
            "groups": groups,
            "lift": 100.0 * diff,
            "lift_low": 100.0 * low,
            "lift_high": 100.0 * high,
            "too_small": not (n1 and n2) or low <= 0 <= high,
        }

    def _lift_chart_html(self, data):
        """Bars of the treated and holdout conversion rates, each with its 95%
        interval drawn as a whisker, the lift and the verdict."""
        self.ensure_one()
        groups = data["groups"]
        if not all(group["count"] for group in groups):
            return Markup('<div class="o_winback_lift alert alert-info">%s</div>') % (
                self.env._(
                    "No comparison yet: the lift needs customers in both the "
                    "treated and the holdout group (set a holdout percentage)."
                )
            )

        def pct(value):
            return formatLang(self.env, value, digits=1) + "%"

        def points(value):
            return ("+" if round(value, 1) > 0 else "") + formatLang(
                self.env, value, digits=1
            )

        top = next(
            (step for step in CHART_SCALE if step >= max(g["high"] for g in groups)),
            100,
        )
        columns = Markup()
        labels = Markup()
        for group in groups:
            columns += Markup(
                '<div class="o_winback_lift_col o_winback_lift_%s">'
                '<div class="o_winback_lift_bar" style="height: %.2f%%;"></div>'
                '<div class="o_winback_lift_whisker" '
                'style="bottom: %.2f%%; height: %.2f%%;"></div>'
                '<div class="o_winback_lift_value" style="bottom: %.2f%%;">%s</div>'
                "</div>"
            ) % (
                group["key"],
                100.0 * group["rate"] / top,
                100.0 * group["low"] / top,
                100.0 * (group["high"] - group["low"]) / top,
                100.0 * group["high"] / top,
                pct(group["rate"]),
            )
            labels += Markup(
                '<div class="o_winback_lift_label"><strong>%s</strong>'
                '<div class="text-muted small">%s</div>'
                '<div class="text-muted small">%s</div></div>'
            ) % (
                group["label"],
                self.env._(
                    "%(converted)s of %(count)s converted",
                    converted=group["converted"],
                    count=group["count"],
                ),
                self.env._(
                    "95%% interval: %(low)s to %(high)s",
                    low=pct(group["low"]),
                    high=pct(group["high"]),
                ),
            )
        lift = Markup('<div class="o_winback_lift_summary">%s</div>') % (
            self.env._(
                "Lift: %(lift)s points (95%% interval: %(low)s to %(high)s)",
                lift=points(data["lift"]),
                low=points(data["lift_low"]),
                high=points(data["lift_high"]),
            )
        )
        if data["too_small"]:
            verdict = Markup(
                '<div class="o_winback_lift_verdict o_winback_lift_too_small '
                'alert alert-warning">%s</div>'
            ) % self.env._(
                "Sample too small to tell: the 95% interval of the lift includes "
                "zero, so the difference may be chance. Wait for more customers."
            )
        elif data["lift"] > 0:
            verdict = Markup(
                '<div class="o_winback_lift_verdict alert alert-success">%s</div>'
            ) % self.env._("The campaign lifts conversion over the holdout group.")
        else:
            verdict = Markup(
                '<div class="o_winback_lift_verdict alert alert-danger">%s</div>'
            ) % self.env._("The holdout group converts better than the treated one.")
        return Markup(
            '<div class="o_winback_lift">'
            '<div class="o_winback_lift_axis text-muted small">%s</div>'
            '<div class="o_winback_lift_plot">%s</div>'
            '<div class="o_winback_lift_labels">%s</div>%s%s</div>'
        ) % (
            self.env._("Conversion rate, up to %(top)s", top=pct(top)),
            columns,
            labels,
            lift,
            verdict,
        )

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

    def _check_steps_editable(self):
        """A running campaign's messages are fixed: customers are between two
        steps of them. Its module's data files may still load them."""
        context = self.env.context
        if context.get("install_mode") or context.get("winback_new_campaign"):
            return
        running = self.filtered(lambda c: c.state == "running")
        if running:
            raise UserError(
                self.env._(
                    "The messages of the running campaign %(name)s cannot be "
                    "changed: customers are receiving them. Pause the campaign "
                    "to change them, or duplicate it as a new version.",
                    name=running[0].name,
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
