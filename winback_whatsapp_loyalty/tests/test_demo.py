"""The demo data of ``make demo``: the cold campaign gives personal codes.
The test database has no demo data, so the test loads the demo files itself,
in its own transaction (rolled back)."""

from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import convert_file

CORE_DEMO = ("demo/winback_demo.xml", "demo/winback_demo_customers.xml")


@tagged("post_install", "-at_install")
class TestLoyaltyDemoData(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        idref = {}
        for filename in CORE_DEMO:
            convert_file(
                cls.env, "winback_whatsapp", filename, idref, mode="init", kind="demo"
            )
        convert_file(
            cls.env,
            "winback_whatsapp_loyalty",
            "demo/winback_loyalty_demo.xml",
            idref,
            mode="init",
            kind="demo",
        )
        cls.env.flush_all()

    def test_cold_campaign_gives_personal_codes(self):
        campaign = self.env.ref("winback_whatsapp.sequence_cold")
        program = campaign.loyalty_program_id
        self.assertEqual(program.program_type, "coupons")
        self.assertEqual(program.reward_ids.discount, 15)
        enrollments = campaign.enrollment_ids.filtered("loyalty_card_id")
        self.assertEqual(len(enrollments), 2)
        self.assertEqual(len(set(enrollments.loyalty_card_id.mapped("code"))), 2)
        for enrollment in enrollments:
            card = enrollment.loyalty_card_id
            self.assertEqual(card.partner_id, enrollment.partner_id)
            self.assertEqual(
                card.expiration_date, fields.Date.today() + timedelta(days=14)
            )
        self.assertFalse(self.env["mail.mail"].search([("model", "=", "loyalty.card")]))
