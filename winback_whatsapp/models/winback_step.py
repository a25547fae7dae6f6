from odoo import api, fields, models
from odoo.exceptions import UserError

from .winback_segment import LEVERS


class WinbackStep(models.Model):
    _name = "winback.step"
    _description = "Win-back Sequence Step"
    _order = "sequence_id, sequence, id"

    sequence_id = fields.Many2one(
        "winback.sequence", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="sequence_id.company_id", store=True)
    sequence = fields.Integer("Order", default=10)
    name = fields.Char(required=True)
    delay_days = fields.Integer(
        "Delay (days)",
        default=0,
        help="Days after enrollment for the first step, then after the previous step.",
    )
    template_id = fields.Many2one(
        "winback.template", required=True, ondelete="restrict", check_company=True
    )
    lever = fields.Selection(LEVERS, required=True, default="news")
    is_last_call = fields.Boolean(
        "Last call",
        help="The final message: silence after it makes the customer dormant.",
    )
    preview = fields.Text(
        compute="_compute_preview",
        help="The message as a sample customer of the campaign would read it.",
    )

    @api.depends(
        "template_id", "sequence_id.test_partner_id", "sequence_id.coupon_code"
    )
    def _compute_preview(self):
        for step in self:
            if not step.template_id:
                step.preview = False
                continue
            partner = step.sequence_id._sample_partner()
            try:
                step.preview = step.template_id._render(
                    partner, sequence=step.sequence_id
                )[1]
            except UserError as error:
                step.preview = str(error)
