from odoo import fields, models


class WinbackEnrollment(models.Model):
    _inherit = "winback.enrollment"

    pos_order_id = fields.Many2one(
        "pos.order",
        "Converted Point of Sale order",
        readonly=True,
        ondelete="set null",
        help="The paid Point of Sale order that converted the enrollment.",
    )
