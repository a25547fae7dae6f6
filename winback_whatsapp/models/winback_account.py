import secrets

from odoo import api, fields, models


class WinbackAccount(models.Model):
    _name = "winback.account"
    _description = "WhatsApp Sender Account"
    _order = "name, id"

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    provider = fields.Selection(
        [
            ("simulator", "Simulator (offline demo)"),
            ("meta", "WhatsApp Cloud API (Meta)"),
        ],
        required=True,
        default="simulator",
        help="The simulator records every message as sent, delivered and read "
        "at once; nothing leaves Odoo.",
    )
    state = fields.Selection(
        [("active", "Active"), ("paused", "Paused")],
        default="active",
        required=True,
        copy=False,
        help="A paused account sends nothing until an administrator resumes it.",
    )
    pause_reason = fields.Text(copy=False, readonly=True)
    phone_number_id = fields.Char(
        "Phone number ID", help="Meta's ID of the sending phone number."
    )
    waba_id = fields.Char("WhatsApp Business Account ID")
    access_token = fields.Char(groups="base.group_system", copy=False)
    app_secret = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Used to check the X-Hub-Signature-256 of incoming webhooks.",
    )
    verify_token = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Meta sends it back when the webhook is registered.",
    )
    api_version = fields.Char("Graph API version", default="v21.0", required=True)
    api_base_url = fields.Char(
        "API base URL",
        default="https://graph.facebook.com",
        required=True,
        help="Point it at a local server for tests and staging.",
    )
    messages_per_second = fields.Integer(
        default=80, help="Meta's throughput limit for the phone number."
    )
    daily_recipient_limit = fields.Integer(
        "Daily unique recipients",
        default=1000,
        help="Meta's messaging tier: unique customers per rolling 24 hours.",
    )
    webhook_key = fields.Char(
        default=lambda self: secrets.token_urlsafe(24),
        copy=False,
        readonly=True,
        groups="base.group_system",
        index=True,
    )
    webhook_url = fields.Char(compute="_compute_webhook_url")

    _sql_constraints = [
        ("webhook_key_uniq", "unique(webhook_key)", "The webhook key must be unique."),
    ]

    @api.depends("webhook_key")
    def _compute_webhook_url(self):
        base_url = self.get_base_url()
        for account in self:
            key = account.sudo().webhook_key
            account.webhook_url = key and f"{base_url}/winback_whatsapp/webhook/{key}"
