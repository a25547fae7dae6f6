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
    winback_grace_days = fields.Integer(
        related="company_id.winback_grace_days", readonly=False
    )
    winback_cooldown_days = fields.Integer(
        related="company_id.winback_cooldown_days", readonly=False
    )
