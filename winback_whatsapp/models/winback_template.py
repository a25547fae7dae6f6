from odoo import fields, models


class WinbackTemplate(models.Model):
    _name = "winback.template"
    _description = "WhatsApp Message Template"
    _order = "name, language, id"

    name = fields.Char(
        required=True, help="The template's name at Meta (lowercase, underscores)."
    )
    active = fields.Boolean(default=True)
    account_id = fields.Many2one("winback.account", required=True, ondelete="cascade")
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    language = fields.Char(required=True, default="en", help="Language code, e.g. it.")
    category = fields.Selection(
        [
            ("marketing", "Marketing"),
            ("utility", "Utility"),
            ("authentication", "Authentication"),
        ],
        required=True,
        default="marketing",
    )
    status = fields.Selection(
        [
            ("draft", "Draft"),
            ("pending", "Pending"),
            ("approved", "Approved"),
            ("rejected", "Rejected"),
            ("paused", "Paused"),
            ("disabled", "Disabled"),
        ],
        default="draft",
        required=True,
        help="Meta's review status; only approved templates are sent.",
    )
    meta_id = fields.Char("Meta template ID", readonly=True, copy=False)
    body = fields.Text(
        required=True, help="Body text with {{1}}, {{2}}... placeholders."
    )
    param_ids = fields.One2many("winback.template.param", "template_id", "Placeholders")
    stop_payload = fields.Char(
        "STOP button payload",
        help="Payload of the template's quick-reply STOP button, if it has one.",
    )

    _sql_constraints = [
        (
            "name_lang_uniq",
            "unique(account_id, name, language)",
            "A template exists once per account and language.",
        ),
    ]
