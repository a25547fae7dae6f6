from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import format_datetime

from ..tools.access import check_group
from ..tools.notification import success

# WhatsApp's customer service window: free text is allowed for 24 hours after
# the customer's last message to us. Only INBOUND messages open it.
SERVICE_WINDOW = timedelta(hours=24)


class WinbackComposer(models.TransientModel):
    _name = "winback.composer"
    _description = "WhatsApp Composer"

    partner_id = fields.Many2one("res.partner", required=True, readonly=True)
    phone_e164 = fields.Char(
        "To", compute="_compute_phone_e164", store=True, readonly=False
    )
    whatsapp_bsuid = fields.Char(
        related="partner_id.whatsapp_bsuid",
        string="To (WhatsApp user ID)",
        help="The customer hides their number on WhatsApp: without a number, "
        "the message goes to their WhatsApp user ID.",
    )
    account_id = fields.Many2one(
        "winback.account",
        "From",
        required=True,
        default=lambda self: self.env["winback.account"].search(
            [("company_id", "in", self.env.companies.ids)], limit=1
        ),
    )
    last_inbound_at = fields.Datetime(
        "Customer's last message", compute="_compute_window"
    )
    window_open = fields.Boolean(compute="_compute_window")
    window_closes_at = fields.Datetime(
        "Free text until",
        compute="_compute_window",
        help="24 hours after the customer's last message: until then you may "
        "answer in free text, after it only with an approved template.",
    )
    window_note = fields.Char(
        "24-hour window",
        compute="_compute_window",
        help="Whether free text is possible, how long for, or since when not.",
    )
    body = fields.Text("Message")
    template_id = fields.Many2one(
        "winback.template",
        domain="[('account_id', '=', account_id), ('status', '=', 'approved')]",
        help="Outside the 24-hour window WhatsApp only accepts approved templates.",
    )
    preview = fields.Text(
        compute="_compute_preview",
        help="The template's text with this customer's values, as it is sent.",
    )
    reply_activity_id = fields.Many2one(
        "mail.activity",
        "Reply to-do",
        compute="_compute_reply_activity_id",
        help="The customer's open Win-back reply activity: sending marks it "
        "done, with your message as its feedback.",
    )

    @api.depends("partner_id")
    def _compute_phone_e164(self):
        for composer in self:
            composer.phone_e164 = composer.partner_id.phone_sanitized

    @api.depends("partner_id")
    def _compute_window(self):
        for composer in self:
            last = (
                self.env["winback.message"]
                .sudo()
                .search(
                    [
                        ("partner_id", "=", composer.partner_id.id),
                        ("direction", "=", "inbound"),
                        ("received_at", "!=", False),
                    ],
                    order="received_at desc",
                    limit=1,
                )
                .received_at
            )
            now = fields.Datetime.now()
            closes = last and last + SERVICE_WINDOW
            composer.last_inbound_at = last
            composer.window_closes_at = closes
            composer.window_open = bool(closes and now < closes)
            composer.window_note = composer._window_note(last, closes, now)

    def _window_note(self, last, closes, now):
        """One line: how long free text is still possible, or why not and
        since when."""
        if not last:
            return self.env._(
                "No free text: the customer has never written to you on "
                "WhatsApp, and WhatsApp only accepts an approved template."
            )
        if now >= closes:
            return self.env._(
                "No free text: the 24-hour window of the customer's last message "
                "(%(last)s) closed on %(closed)s. WhatsApp only accepts an "
                "approved template now.",
                last=format_datetime(self.env, last, dt_format=False),
                closed=format_datetime(self.env, closes, dt_format=False),
            )
        hours, minutes = divmod(int((closes - now).total_seconds()) // 60, 60)
        return self.env._(
            "Free text possible for %(hours)s h %(minutes)02d min more (until "
            "%(closes)s): the customer wrote on %(last)s.",
            hours=hours,
            minutes=minutes,
            closes=format_datetime(self.env, closes, dt_format=False),
            last=format_datetime(self.env, last, dt_format=False),
        )

    @api.depends("template_id", "partner_id", "account_id")
    def _compute_preview(self):
        for composer in self:
            composer.preview = False
            if not (composer.template_id and composer.partner_id):
                continue
            try:
                composer.preview = composer._render_template()[1]
            except UserError as error:
                composer.preview = self.env._(
                    "This template cannot be sent to this customer: %(reason)s",
                    reason=error.args[0],
                )

    @api.depends("partner_id")
    def _compute_reply_activity_id(self):
        for composer in self:
            composer.reply_activity_id = composer._reply_activities()[:1]

    def action_send(self):
        """Queue the message: the send cron sends it once this transaction is
        committed, so a request Odoo replays (serialization failure) never
        sends twice."""
        check_group(self.env, "winback_whatsapp.group_winback_user")
        self.ensure_one()
        message = self._action_send()
        return success(
            self.env._(
                "WhatsApp message to %(number)s queued: it is on its way. It "
                "shows in %(partner)s's chatter once sent.",
                number=message.phone_e164 or message.whatsapp_bsuid,
                partner=self.partner_id.display_name,
            ),
            next_action={"type": "ir.actions.act_window_close"},
        )

    def _action_send(self):
        bsuid = self.partner_id.sudo().whatsapp_bsuid
        if not self.phone_e164 and not bsuid:
            raise UserError(
                self.env._(
                    "%(partner)s has no valid mobile or phone number.",
                    partner=self.partner_id.display_name,
                )
            )
        # E.164 with the customer's country, as Odoo's SMS composer does.
        # Without a number, the customer's WhatsApp user ID.
        number = self.phone_e164 and self.partner_id._phone_format(
            number=self.phone_e164
        )
        if self.phone_e164 and not number:
            raise UserError(
                self.env._(
                    "%(number)s is not a valid phone number for %(partner)s.",
                    number=self.phone_e164,
                    partner=self.partner_id.display_name,
                )
            )
        if not self.template_id and not self.window_open:
            raise UserError(
                self.env._(
                    "%(why)s Choose one in the Template field.",
                    why=self.window_note,
                )
            )
        if not self.template_id and not (self.body or "").strip():
            raise UserError(self.env._("Write a message first."))
        self._check_template()
        self._check_recipient(number or bsuid)
        # What the customer reads: the template rendered now (a missing
        # value is refused here, not by the send cron later), or the text.
        text = self._render_template()[1] if self.template_id else self.body.strip()
        Message = self.env["winback.message"].sudo()
        message = Message.create(
            {
                "direction": "outbound",
                "partner_id": self.partner_id.id,
                "account_id": self.account_id.id,
                "company_id": self.account_id.company_id.id,
                "phone_e164": number or False,
                "whatsapp_bsuid": bsuid or False,
                "template_id": self.template_id.id,
                "body": False if self.template_id else self.body.strip(),
                "state": "queued",
                "scheduled_at": fields.Datetime.now(),
                "chatter_author_id": self.env.user.partner_id.id,
            }
        )
        self.env["winback.sender"]._trigger_send()
        self._close_reply_activities(text)
        return message

    def _check_template(self):
        """Only an approved template of the sending account goes out (the
        field's domain is the client's; a call over RPC is checked here)."""
        template = self.template_id.sudo()
        if not template:
            return
        if template.account_id != self.account_id or template.status != "approved":
            raise UserError(
                self.env._(
                    "Template %(template)s is not an approved template of "
                    "%(account)s: choose one that is.",
                    template=template.name,
                    account=self.account_id.display_name,
                )
            )

    def _render_template(self):
        """``(parameters, text)`` of the template for this customer, as the
        send cron renders a message without campaign: in the company of the
        account."""
        self.ensure_one()
        company = self.account_id.company_id or self.env.company
        return self.template_id.sudo().with_company(company)._render(self.partner_id)

    def _reply_activities(self):
        """The customer's open Win-back reply activities."""
        activity_type = self.env.ref(
            "winback_whatsapp.mail_activity_type_winback_reply",
            raise_if_not_found=False,
        )
        if not activity_type or not self.partner_id:
            return self.env["mail.activity"]
        return (
            self.env["mail.activity"]
            .sudo()
            .search(
                [
                    ("res_model", "=", "res.partner"),
                    ("res_id", "=", self.partner_id.id),
                    ("activity_type_id", "=", activity_type.id),
                ]
            )
        )

    def _close_reply_activities(self, text):
        """The customer is answered: their Win-back reply to-do is done, by
        the user who answered, with the answer as feedback. Whoever it was
        assigned to (a colleague may answer for the salesperson)."""
        activities = self._reply_activities()
        if activities:
            activities.action_feedback(
                feedback=self.env._("Answered on WhatsApp: %(text)s", text=text)
            )

    def _check_recipient(self, number):
        """Refuse what the sender would cancel: a customer of another
        company, and a marketing template to a customer who did not consent,
        opted out or is dormant."""
        company = self.partner_id.company_id
        if company and company != self.account_id.company_id:
            raise UserError(
                self.env._(
                    "%(partner)s is a customer of %(company)s: write from one of "
                    "its WhatsApp accounts.",
                    partner=self.partner_id.display_name,
                    company=company.name,
                )
            )
        if self.template_id.category != "marketing":
            return
        refusal = self.partner_id.sudo()._winback_marketing_refusal(number)
        if refusal:
            raise UserError(
                self.env._(
                    "%(reason)s Template %(template)s is a marketing template: "
                    "choose a utility one, or answer in free text within 24 hours "
                    "of the customer's last message.",
                    reason=refusal,
                    template=self.template_id.name,
                )
            )
