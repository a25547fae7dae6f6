from odoo import api, fields, models
from odoo.exceptions import ValidationError

# The coupon programs that issue one card per customer; a promotion code is
# one code shared by everyone.
PERSONAL_PROGRAM_TYPES = ("coupons", "next_order_coupons")


class WinbackCampaign(models.Model):
    _inherit = "winback.campaign"

    loyalty_program_id = fields.Many2one(
        "loyalty.program",
        "Coupon program",
        check_company=True,
        ondelete="restrict",
        domain="[('program_type', 'in', ('coupons', 'next_order_coupons')),"
        " ('company_id', 'in', (company_id, False))]",
        help="Each treated customer gets their own code of this coupon program "
        "when the message with the coupon code placeholder is queued, valid "
        "until the deadline the message states. Used instead of the coupon "
        "code above. Holdout customers get none; Odoo's coupon e-mail is not "
        "sent.",
    )

    @api.depends("loyalty_program_id")
    def _compute_phone_preview(self):
        return super()._compute_phone_preview()

    @api.constrains("loyalty_program_id")
    def _check_loyalty_program_id(self):
        for campaign in self:
            program = campaign.loyalty_program_id
            if program and program.program_type not in PERSONAL_PROGRAM_TYPES:
                raise ValidationError(
                    self.env._(
                        "Campaign %(campaign)s: %(program)s gives one code to "
                        "everyone. Choose a coupon program (Coupons or Next "
                        "Order Coupons), which gives each customer their own.",
                        campaign=campaign.name,
                        program=program.name,
                    )
                )
