from odoo import fields, models

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
