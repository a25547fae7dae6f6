from odoo import models
from odoo.tools import format_date


class WinbackTemplate(models.Model):
    _inherit = "winback.template"

    def _param_value(self, source, partner, enrollment, campaign=None):
        """With a coupon program, the coupon code and the deadline are the
        customer's own: their card's code, and its expiry (the date their
        card stops being accepted). Previews and test sends, which have no
        enrollment, show a sample code."""
        campaign = enrollment.campaign_id if enrollment else campaign
        if source not in ("coupon_code", "deadline") or not (
            campaign and campaign.loyalty_program_id
        ):
            return super()._param_value(source, partner, enrollment, campaign)
        card = enrollment.sudo().loyalty_card_id if enrollment else None
        if source == "coupon_code":
            return card.code if card else self._sample_coupon_code(enrollment)
        if card and card.expiration_date:
            lang = partner.lang or self.env.lang
            return format_date(self.env, card.expiration_date, lang_code=lang)
        return super()._param_value(source, partner, enrollment, campaign)

    def _sample_coupon_code(self, enrollment):
        """What a preview or a test send shows for the personal code; an
        enrollment without its card shows nothing (the placeholder's
        fallback, else the message fails with the reason)."""
        if enrollment:
            return ""
        return self.env._("PERSONAL-CODE")
