from odoo import api, fields, models


class LoyaltyHistory(models.Model):
    _inherit = "loyalty.history"

    @api.model_create_multi
    def create(self, vals_list):
        histories = super().create(vals_list)
        histories._winback_register_redemptions()
        return histories

    def _winback_register_redemptions(self):
        """A personal win-back code used on an order converts its
        enrollment."""
        for history in self.sudo().filtered(
            lambda h: h.used > 0 and h.order_model and h.card_id.winback_enrollment_id
        ):
            purchase = history._winback_purchase()
            if purchase:
                history.card_id.winback_enrollment_id._redeem_coupon(purchase)

    def _winback_purchase(self):
        """The order this history line used its card on, as a purchase of
        ``winback.enroller._register_purchases`` with the ``discount`` the
        card gave (None for an order of another kind: the Point of Sale writes
        no history for a coupon used at the counter; its glue module converts
        at the coupon's confirmation)."""
        self.ensure_one()
        if self.order_model != "sale.order":
            return None
        order = self.env["sale.order"].browse(self.order_id)
        rewards = order.order_line.filtered(
            lambda line: line.coupon_id == self.card_id and line.reward_id
        )
        return {
            "partner": order.partner_id,
            "company": order.company_id,
            # Used when the order is confirmed: now.
            "date": fields.Datetime.now(),
            "amount": order.amount_untaxed,
            "currency": order.currency_id,
            "link": {"order_id": order.id},
            "discount": -sum(rewards.mapped("price_subtotal")),
        }
