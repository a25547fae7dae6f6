from odoo import models


class PosOrder(models.Model):
    _inherit = "pos.order"

    def confirm_coupon_programs(self, coupon_data):
        """The Point of Sale confirms the coupons its order used (Odoo writes
        no loyalty history for a coupon program's card used at the counter):
        a personal win-back code among them converts its enrollment."""
        result = super().confirm_coupon_programs(coupon_data)
        self._winback_register_redemptions()
        return result

    def _winback_register_redemptions(self):
        """Each personal win-back code a reward line of these orders used
        converts its enrollment, attributed to the coupon: the order's
        untaxed amount, dated at the order, with the discount it gave."""
        for order in self.sudo():
            rewards = order.lines.filtered(
                lambda line: line.reward_id and line.coupon_id.winback_enrollment_id
            )
            for card in rewards.coupon_id:
                card_rewards = rewards.filtered(
                    lambda line, c=card: line.coupon_id == c
                )
                card.winback_enrollment_id._redeem_coupon(
                    {
                        **order._winback_purchase(),
                        "discount": -sum(card_rewards.mapped("price_subtotal")),
                    }
                )
