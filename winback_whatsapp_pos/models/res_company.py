from odoo import api, fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    winback_count_pos_orders = fields.Boolean(
        "Count Point of Sale orders",
        default=True,
        help="A Point of Sale order is a purchase for the win-back segments "
        "once paid (then posted at the session's closing, or invoiced), dated "
        "at the order. Its invoice is the same purchase.",
    )

    @api.model
    def _winback_purchase_source_fields(self):
        return super()._winback_purchase_source_fields() | {"winback_count_pos_orders"}
