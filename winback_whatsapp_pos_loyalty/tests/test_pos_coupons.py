from odoo.tests import tagged

from odoo.addons.winback_whatsapp_pos.tests.common import WinbackPosCase


@tagged("post_install", "-at_install")
class TestPosCoupons(WinbackPosCase):
    """A personal win-back code shown at the counter converts its
    enrollment."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.program = (
            cls.env["loyalty.program"]
            .with_context(default_program_type="coupons")
            .create({"name": "Win-back 15%", "pos_config_ids": [cls.pos_config.id]})
        )
        cls.program.reward_ids.write({"discount": 15})
        cls.template.write(
            {
                "body": "Hello, 15% with your code {{1}}.",
                "param_ids": [(0, 0, {"position": 1, "source": "coupon_code"})],
            }
        )
        cls.campaign.write(
            {"loyalty_program_id": cls.program.id, "attribution_days": 0}
        )

    def _enroll_with_code(self):
        """A cold customer whose offer is being queued: their code is
        issued."""
        enrollment = self._enroll(self.segment_cold, "running")
        enrollment.step_id = self.step1
        enrollment._issue_coupons()
        self.assertTrue(enrollment.loyalty_card_id)
        return enrollment

    def _redeem_at_counter(self, enrollment):
        """The cashier scans the customer's code: a 15% reward line on 4
        bags, the order paid, then the coupon confirmed as the Point of Sale
        confirms it after the payment."""
        card = enrollment.loyalty_card_id
        reward = self.program.reward_ids
        order = self._pos_order(enrollment.partner_id, pay=False, quantity=4)
        order.write(
            {
                "lines": [
                    (
                        0,
                        0,
                        {
                            "name": reward.description,
                            "product_id": reward.discount_line_product_id.id,
                            "price_unit": -15.0,
                            "qty": 1,
                            "price_subtotal": -15.0,
                            "price_subtotal_incl": -15.0,
                            "is_reward_line": True,
                            "reward_id": reward.id,
                            "coupon_id": card.id,
                            "reward_identifier_code": "winback-reward",
                            "points_cost": 1,
                        },
                    )
                ],
                "amount_total": 85.0,
            }
        )
        self._pay(order)
        order.confirm_coupon_programs(
            {
                str(card.id): {
                    "points": -1,
                    "program_id": self.program.id,
                    "coupon_id": card.id,
                    "line_codes": ["winback-reward"],
                }
            }
        )
        return order

    def test_code_redeemed_at_the_counter_converts_its_enrollment(self):
        """Past the attribution window (0 days), the paid order alone would
        not convert; the redeemed code does, and only that customer's."""
        enrollment = self._enroll_with_code()
        other = self._enroll_with_code()
        order = self._redeem_at_counter(enrollment)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.conversion_kind, "coupon")
        self.assertEqual(enrollment.pos_order_id, order)
        self.assertEqual(enrollment.revenue, 85.0)
        self.assertEqual(enrollment.coupon_discount, 15.0)
        self.assertTrue(enrollment.coupon_redeemed_at)
        self.assertEqual(enrollment.loyalty_card_id.points, 0)
        self.assertEqual(other.state, "running")
        self.assertFalse(other.coupon_redeemed_at)

    def test_paid_in_window_with_the_code_is_a_coupon_conversion(self):
        """Within the window the payment converts first; the code redeemed
        on that same order attributes the conversion to the coupon."""
        self.campaign.attribution_days = 14
        enrollment = self._enroll_with_code()
        order = self._redeem_at_counter(enrollment)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.pos_order_id, order)
        self.assertEqual(enrollment.conversion_kind, "coupon")
        self.assertEqual(enrollment.coupon_discount, 15.0)
