from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError

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
        self.ensure_one()
        message = self._action_send()
        if message.state == "failed":
            raise UserError(
                self.env._(
                    "WhatsApp refused the message: %(error)s",
                    error=message.error_message or message.error_code,
                )
            )
        return {"type": "ir.actions.act_window_close"}

    def _action_send(self):
        if not self.phone_e164:
            raise UserError(
                self.env._(
                    "%(partner)s has no valid mobile or phone number.",
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
        Message = self.env["winback.message"].sudo()
        message = Message.create(
            {
                "direction": "outbound",
                "partner_id": self.partner_id.id,
                "account_id": self.account_id.id,
                "company_id": self.account_id.company_id.id,
                "phone_e164": self.phone_e164,
                "template_id": self.template_id.id,
                "body": False if self.template_id else self.body.strip(),
                "state": "queued",
            }
        )
        ready = message._prepare_send()
        ready._send_claimed()
        if message.state in ("sent", "delivered", "read"):
            self.partner_id.message_post(
                body=Markup("<p><b>WhatsApp</b> → %s</p>%s")
                % (
                    self.phone_e164,
                    Markup("<br/>").join((message.body or "").split("\n")),
                ),
                subtype_xmlid="mail.mt_note",
            )
        return message
