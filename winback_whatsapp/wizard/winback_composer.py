from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

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
    body = fields.Text("Message")
    template_id = fields.Many2one(
        "winback.template",
        domain="[('account_id', '=', account_id), ('status', '=', 'approved')]",
        help="Outside the 24-hour window WhatsApp only accepts approved templates.",
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
            composer.last_inbound_at = last
            composer.window_open = bool(
                last and fields.Datetime.now() - last < SERVICE_WINDOW
            )

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
                    "The customer has not written in the last 24 hours: WhatsApp "
                    "only accepts an approved template now. Choose one."
                )
            )
        if not self.template_id and not (self.body or "").strip():
            raise UserError(self.env._("Write a message first."))
        self._check_recipient(number or bsuid)
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
        return message

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
