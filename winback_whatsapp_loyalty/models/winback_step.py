from odoo import api, models


class WinbackStep(models.Model):
    _inherit = "winback.step"

    @api.depends("campaign_id.loyalty_program_id")
    def _compute_preview(self):
        return super()._compute_preview()

    @api.depends("campaign_id.loyalty_program_id")
    def _compute_phone_preview(self):
        return super()._compute_phone_preview()
