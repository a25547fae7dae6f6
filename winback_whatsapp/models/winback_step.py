from odoo import api, fields, models
from odoo.exceptions import UserError

from .winback_segment import LEVERS

PREVIEW_LINE = 90  # characters of the one-line preview in the steps list


def shorten(text, width):
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


class WinbackStep(models.Model):
    _name = "winback.step"
    _description = "Win-back Campaign Step"
    _order = "campaign_id, sequence, id"

    campaign_id = fields.Many2one(
        "winback.campaign", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="campaign_id.company_id", store=True)
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
    preview = fields.Text(
        compute="_compute_preview",
        help="The message as a sample customer of the campaign would read it.",
    )
    preview_line = fields.Char(
        "Message",
        compute="_compute_preview",
        help="The beginning of the message as a sample customer would read it.",
    )

    @api.depends(
        "template_id", "campaign_id.test_partner_id", "campaign_id.coupon_code"
    )
    def _compute_preview(self):
        for step in self:
            if not step.template_id:
                step.preview = step.preview_line = False
                continue
            partner = step.campaign_id._sample_partner()
            try:
                step.preview = step.template_id._render(
                    partner, campaign=step.campaign_id
                )[1]
            except UserError as error:
                step.preview = str(error)
            step.preview_line = shorten(" ".join(step.preview.split()), PREVIEW_LINE)

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        campaigns = self.env["winback.campaign"].browse(
            vals["campaign_id"] for vals in vals_list if vals.get("campaign_id")
        )
        campaigns._check_steps_editable()
        return super().create(vals_list)

    def write(self, vals):
        # The step's own fields are the message; a related field written
        # through the step is the campaign's to check.
        if any(not self._fields[name].related for name in vals):
            campaigns = self.campaign_id
            if vals.get("campaign_id"):
                campaigns |= self.env["winback.campaign"].browse(vals["campaign_id"])
            campaigns._check_steps_editable()
        return super().write(vals)

    def unlink(self):
        self.campaign_id._check_steps_editable()
        return super().unlink()
