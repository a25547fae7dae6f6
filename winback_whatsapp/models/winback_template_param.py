import re

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools.mail import TEXT_URL_REGEX

PARAM_SOURCES = [
    ("first_name", "First name"),
    ("last_product", "Last product bought"),
    ("last_order_date", "Last order date"),
    ("salesperson", "Salesperson"),
    ("coupon_code", "Coupon code"),
    ("deadline", "Deadline"),
    ("link", "Link"),
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
    url = fields.Char(
        "Link",
        help="For a Link placeholder: the web address sent (https://...). "
        "Customers of a campaign receive it as a short link of Odoo's link "
        "tracker, which counts their clicks on the campaign.",
    )
    fallback = fields.Char(
        help="Sent when the customer has no value: WhatsApp refuses empty "
        "parameters, so an empty value is never sent."
    )

    @api.constrains("source", "url")
    def _check_url(self):
        for param in self.filtered(lambda p: p.source == "link"):
            if not re.fullmatch(TEXT_URL_REGEX, param.url or ""):
                raise ValidationError(
                    self.env._(
                        "Placeholder {{%(position)s}}: a link is a web address "
                        "starting with https:// (or http://), without spaces.",
                        position=param.position,
                    )
                )

    _sql_constraints = [
        (
            "position_uniq",
            "unique(template_id, position)",
            "Each placeholder is mapped once.",
        ),
    ]
