from datetime import timedelta

import psycopg2

from odoo.exceptions import ValidationError
from odoo.tests import freeze_time, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.winback_whatsapp.tests.common import run_job
from odoo.addons.winback_whatsapp.tests.test_send import WinbackSendCase

MODULE = "winback_whatsapp"


@tagged("post_install", "-at_install")
class TestPersonalCoupons(WinbackSendCase):
    """A cold campaign offering 15% with a personal code of a coupon program,
    valid for the campaign's 14 deadline days."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.marketer = new_test_user(
            cls.env,
            login="coupon_marketer",
            name="Marta Marketing",
            groups=f"sales_team.group_sale_salesman,{MODULE}.group_winback_manager",
        )
        cls.seller = new_test_user(
            cls.env,
            login="coupon_seller",
            name="Sergio Sales",
            groups="sales_team.group_sale_salesman",
        )
        # As Sales › Discount & Loyalty › New › Coupons makes it, with
        # Odoo's coupon e-mail at creation.
        cls.program = (
            cls.env["loyalty.program"]
            .with_context(default_program_type="coupons")
            .create({"name": "Win-back 15%"})
        )
        cls.program.reward_ids.write({"discount": 15})
        cls.campaign.with_user(cls.marketer).write(
            {"loyalty_program_id": cls.program.id, "coupon_code": False}
        )
        cls.marco = cls._customer("Marco Rossi", "+39 333 765 4321")
        cls.roberta.email = "roberta@example.com"
        cls.marco.email = "marco@example.com"

    def _start_and_queue(self, campaign=None):
        campaign = campaign or self.campaign
        campaign.with_user(self.marketer).action_start()
        self.env["winback.enroller"]._enroll(campaign)
        run_job(self, "winback.enrollment", "_cron_advance")
        return campaign.enrollment_ids

    def _redeem(self, partner, code):
        """``partner`` orders 4 bags at the shop and the seller enters their
        code, as in the sale order's *Coupon Code* button, then confirms."""
        order = (
            self.env["sale.order"]
            .with_user(self.seller)
            .create(
                {
                    "partner_id": partner.id,
                    "order_line": [
                        (0, 0, {"product_id": self.product.id, "product_uom_qty": 4})
                    ],
                }
            )
        )
        action = (
            self.env["sale.loyalty.coupon.wizard"]
            .with_user(self.seller)
            .create({"order_id": order.id, "coupon_code": code})
            .action_apply()
        )
        self.env["sale.loyalty.reward.wizard"].with_user(self.seller).with_context(
            **action["context"]
        ).create({"selected_reward_id": self.program.reward_ids.id}).action_apply()
        order.action_confirm()
        return order

    def test_two_customers_get_two_codes_expiring_at_the_stated_deadline(self):
        enrollments = self._start_and_queue()
        self.assertEqual(enrollments.partner_id, self.roberta | self.marco)
        cards = enrollments.loyalty_card_id
        self.assertEqual(len(cards), 2)
        self.assertEqual(len(set(cards.mapped("code"))), 2)
        self.assertEqual(self.program.coupon_count, 2)
        for enrollment in enrollments:
            card = enrollment.loyalty_card_id
            deadline = (enrollment.create_date + timedelta(days=14)).date()
            self.assertEqual(card.partner_id, enrollment.partner_id)
            self.assertEqual(card.program_id, self.program)
            self.assertEqual(card.expiration_date, deadline)
            self.assertEqual(card.points, 1)
        # No coupon e-mail (the program would send one at creation):
        # WhatsApp is the channel.
        self.assertTrue(self.program.communication_plan_ids.mail_template_id)
        self.assertFalse(
            self.env["mail.mail"].search(
                [("model", "=", "loyalty.card"), ("res_id", "in", cards.ids)]
            )
        )
        self.assertFalse(
            self.env["mail.message"].search(
                [
                    ("model", "=", "loyalty.card"),
                    ("res_id", "in", cards.ids),
                    ("message_type", "!=", "notification"),
                ]
            )
        )
        # The message gives each customer their own code and its expiry.
        self.assertEqual(self._send(), 2)
        sent = {
            request["to"]: [
                p["text"] for p in request["template"]["components"][0]["parameters"]
            ]
            for request in self.stub.state.sent()
        }
        for enrollment in enrollments:
            card = enrollment.loyalty_card_id
            date = card.expiration_date.strftime("%m/%d/%Y")
            first_name = enrollment.partner_id.name.split(" ")[0]
            self.assertEqual(sent[enrollment.phone_e164], [first_name, date, card.code])
            self.assertIn(
                f"Fino al {date} hai il 15% con il codice {card.code}.",
                enrollment.message_ids.body,
            )

    def test_one_card_per_enrollment_when_queued_again(self):
        enrollments = self._start_and_queue()
        cards = enrollments.loyalty_card_id
        enrollments.write({"next_send_at": self._days_ago(1)})
        enrollments._queue_claimed()
        self.env.invalidate_all()
        self.assertEqual(enrollments.loyalty_card_ids, cards)
        self.assertEqual(self.program.coupon_count, 2)
        with mute_logger("odoo.sql_db"), self.assertRaises(psycopg2.IntegrityError):
            with self.env.cr.savepoint():
                self.env["loyalty.card"].create(
                    {
                        "program_id": self.program.id,
                        "partner_id": self.roberta.id,
                        "winback_enrollment_id": enrollments[0].id,
                    }
                )

    def test_redeeming_a_code_converts_that_enrollment_only(self):
        """Roberta redeems her code after the attribution window closed: her
        enrollment converts, attributed to the coupon. Marco buys in the
        window without his code: a conversion of the window."""
        self.campaign.attribution_days = 2
        enrollments = self._start_and_queue()
        self._send()
        roberta = enrollments.filtered(lambda e: e.partner_id == self.roberta)
        marco = enrollments - roberta
        order = self._order(self.marco)
        self.assertEqual(marco.state, "converted")
        self.assertEqual(marco.conversion_kind, "window")
        self.assertFalse(marco.coupon_redeemed_at)
        self.assertEqual(roberta.state, "running")
        with freeze_time(roberta.create_date + timedelta(days=5)):
            order = self._redeem(self.roberta, roberta.loyalty_card_id.code)
        self.assertEqual(roberta.state, "converted")
        self.assertEqual(roberta.conversion_kind, "coupon")
        self.assertEqual(roberta.order_id, order)
        self.assertEqual(order.amount_untaxed, 85.0)
        self.assertEqual(roberta.revenue, 85.0)
        self.assertEqual(roberta.coupon_discount, 15.0)
        self.assertTrue(roberta.coupon_redeemed_at)
        self.assertFalse(marco.coupon_redeemed_at)
        self.assertEqual(roberta.loyalty_card_id.points, 0)
        # The report, as the marketer reads it.
        Report = self.env["winback.report"].with_user(self.marketer)
        totals = Report.read_group(
            [("campaign_id", "=", self.campaign.id)],
            [
                "codes_issued",
                "codes_redeemed",
                "redemption_rate",
                "discount",
                "coupon_converted",
                "window_converted",
                "revenue",
            ],
            [],
        )[0]
        self.assertEqual(totals["codes_issued"], 2)
        self.assertEqual(totals["codes_redeemed"], 1)
        self.assertEqual(totals["redemption_rate"], 50.0)
        self.assertEqual(totals["discount"], 15.0)
        self.assertEqual(totals["coupon_converted"], 1)
        self.assertEqual(totals["window_converted"], 1)
        # The offer's cost sits beside the messages' in the return on
        # investment: the discount Roberta's code gave.
        lift = self.env["winback.lift"].with_user(self.marketer)
        lift = lift.search([("campaign_id", "=", self.campaign.id)])
        self.assertEqual(sum(lift.mapped("discount")), 15.0)
        self.assertEqual(self.campaign.with_user(self.marketer).discount_granted, 15.0)

    def test_code_is_refused_after_its_deadline(self):
        enrollment = self._start_and_queue()[0]
        card = enrollment.loyalty_card_id
        with (
            freeze_time(card.expiration_date + timedelta(days=1)),
            self.assertRaisesRegex(ValidationError, "expired"),
        ):
            self._redeem(enrollment.partner_id, card.code)
        self.assertEqual(enrollment.state, "running")

    def test_holdout_customers_get_no_code(self):
        self.campaign.holdout_percent = 50
        # 30 customers: the seeded draw leaves a group empty once in 500
        # million runs, not once in 500 as with 10.
        for number in range(28):
            self._customer(f"Cold customer {number}", f"+39 347 000 00{number:02d}")
        enrollments = self._start_and_queue()
        holdout = enrollments.filtered("is_holdout")
        treated = enrollments - holdout
        self.assertTrue(holdout)
        self.assertTrue(treated)
        self.assertFalse(holdout.loyalty_card_ids)
        self.assertEqual(len(treated.loyalty_card_ids), len(treated))

    def test_preview_shows_a_sample_code_and_the_deadline(self):
        step = self.campaign.with_user(self.marketer).step_ids[0]
        self.assertIn("PERSONAL-CODE", step.preview)
        self.assertNotIn("WELCOMEBACK", step.preview)

    def test_a_shared_promotion_code_is_not_offered(self):
        promo = self.env["loyalty.program"].create(
            {"name": "Shared code", "program_type": "promo_code"}
        )
        with self.assertRaisesRegex(ValidationError, "one code to everyone"):
            self.campaign.with_user(self.marketer).loyalty_program_id = promo
