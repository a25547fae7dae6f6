from odoo import fields, models

PARAM_SOURCES = [
    ("first_name", "First name"),
    ("last_product", "Last product bought"),
    ("last_order_date", "Last order date"),
    ("salesperson", "Salesperson"),
    ("coupon_code", "Coupon code"),
    ("deadline", "Deadline"),
]


class WinbackTemplateParam(models.Model):
    _name = "winback.template.param"
    _description = "WhatsApp Template Placeholder"
    _order = "template_id, position"

    template_id = fields.Many2one(
        "winback.template", required=True, ondelete="cascade", index=True
    )
    position = fields.Integer(required=True, help="N of the {{N}} placeholder.")
    source = fields.Selection(PARAM_SOURCES, required=True, default="first_name")
    fallback = fields.Char(
        help="Sent when the customer has no value: WhatsApp refuses empty "
        "parameters, so an empty value is never sent."
    )

    _sql_constraints = [
        (
            "position_uniq",
            "unique(template_id, position)",
            "Each placeholder is mapped once.",
        ),
    ]
