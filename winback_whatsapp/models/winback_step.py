from markupsafe import Markup

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
    preview_partner_id = fields.Many2one(
        related="campaign_id.preview_partner_id",
        readonly=False,
        help="The customer the phone preview is rendered for (the campaign's "
        "choice). Empty: the test recipient, else a customer of the campaign's "
        "segments.",
    )
    phone_preview = fields.Html(
        "Phone preview",
        compute="_compute_phone_preview",
        sanitize=True,
        help="The message as a WhatsApp bubble on the sample customer's phone: "
        "their values filled in, the header image and the quick-reply buttons.",
    )
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
        "template_id",
        "campaign_id.test_partner_id",
        "campaign_id.preview_partner_id",
        "campaign_id.coupon_code",
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

    @api.depends(
        "name",
        "sequence",
        "delay_days",
        "template_id",
        "template_id.body",
        "template_id.header_image_url",
        "template_id.param_ids.source",
        "template_id.param_ids.fallback",
        "template_id.button_ids.text",
        "campaign_id.test_partner_id",
        "campaign_id.preview_partner_id",
        "campaign_id.coupon_code",
        "campaign_id.deadline_days",
        "campaign_id.account_id",
    )
    def _compute_phone_preview(self):
        for step in self:
            if not step.template_id:
                step.phone_preview = False
                continue
            step.phone_preview = step.campaign_id._phone_frame(step._phone_bubbles())

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

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _phone_bubbles(self):
        """The step's message on the sample customer's phone, under a caption
        with the step's name and day."""
        self.ensure_one()
        campaign = self.campaign_id
        return Markup('<div class="o_winback_phone_caption">%s</div>%s') % (
            self.env._(
                "%(step)s · day %(day)s", step=self.name or "", day=self._send_day()
            ),
            self.template_id._phone_bubble(campaign._sample_partner(), campaign),
        )

    def _send_day(self):
        """Days after enrollment this step is sent: its delay added to those
        of the steps before it."""
        self.ensure_one()
        steps = self.campaign_id.step_ids.sorted("sequence")
        day = 0
        for step in steps:
            day += step.delay_days
            if step == self:
                return day
        return day + self.delay_days
