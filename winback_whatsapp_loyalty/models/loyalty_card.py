from odoo import fields, models


class LoyaltyCard(models.Model):
    _inherit = "loyalty.card"

    winback_enrollment_id = fields.Many2one(
        "winback.enrollment",
        "Win-back enrollment",
        index="btree_not_null",
        readonly=True,
        ondelete="set null",
        help="The win-back enrollment this personal code was issued for: "
        "redeeming it converts that enrollment.",
    )

    _sql_constraints = [
        (
            "winback_enrollment_uniq",
            "UNIQUE(winback_enrollment_id)",
            "A win-back enrollment has one personal coupon.",
        ),
    ]
