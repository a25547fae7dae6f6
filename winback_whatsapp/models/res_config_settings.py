from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    winback_lukewarm_days = fields.Integer(
        related="company_id.winback_lukewarm_days", readonly=False
    )
    winback_cooling_days = fields.Integer(
        related="company_id.winback_cooling_days", readonly=False
    )
    winback_cold_days = fields.Integer(
        related="company_id.winback_cold_days", readonly=False
    )
    winback_segment_mode = fields.Selection(
        related="company_id.winback_segment_mode", readonly=False
    )
    winback_lukewarm_factor = fields.Float(
        related="company_id.winback_lukewarm_factor", readonly=False
    )
    winback_cooling_factor = fields.Float(
        related="company_id.winback_cooling_factor", readonly=False
    )
    winback_cold_factor = fields.Float(
        related="company_id.winback_cold_factor", readonly=False
    )
    winback_grace_days = fields.Integer(
        related="company_id.winback_grace_days", readonly=False
    )
    winback_cooldown_days = fields.Integer(
        related="company_id.winback_cooldown_days", readonly=False
    )
    winback_reply_user_id = fields.Many2one(
        related="company_id.winback_reply_user_id", readonly=False
    )
    winback_count_sale_orders = fields.Boolean(
        related="company_id.winback_count_sale_orders", readonly=False
    )
    winback_count_invoices = fields.Boolean(
        related="company_id.winback_count_invoices", readonly=False
    )
    winback_message_retention_days = fields.Integer(
        "Keep message contents (days)",
        config_parameter="winback_whatsapp.message_retention_days",
        default=365,
        help="After this many days a WhatsApp message loses its text, number "
        "and profile name (its state and dates stay, for the results), and "
        "an unmatched reply is deleted.",
    )
    winback_webhook_event_retention_days = fields.Integer(
        "Keep processed webhook events (days)",
        config_parameter="winback_whatsapp.webhook_event_retention_days",
        default=30,
        help="Processed webhook events (raw calls from Meta) are deleted after "
        "this many days; failed ones are kept until the message contents' "
        "lifetime.",
    )
