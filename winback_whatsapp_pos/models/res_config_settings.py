from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    winback_count_pos_orders = fields.Boolean(
        related="company_id.winback_count_pos_orders", readonly=False
    )
