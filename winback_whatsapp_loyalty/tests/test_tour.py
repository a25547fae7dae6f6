from odoo.tests import HttpCase, new_test_user, tagged

from odoo.addons.winback_whatsapp.tests.common import WinbackDataMixin


@tagged("post_install", "-at_install")
class TestLoyaltyTour(WinbackDataMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls.campaign.write({"name": "Cold coupons", "coupon_code": "WELCOMEBACK"})
        Program = cls.env["loyalty.program"]
        cls.program = Program.with_context(default_program_type="coupons").create(
            {"name": "Win-back 15%"}
        )
        Program.with_context(default_program_type="promo_code").create(
            {"name": "Win-back shared code"}
        )
        cls.marketer = new_test_user(
            cls.env,
            login="tour_coupon_marketer",
            name="Marta Marketing",
            groups="sales_team.group_sale_salesman,"
            "winback_whatsapp.group_winback_manager",
        )

    def test_loyalty_tour(self):
        """In a real browser, a marketer chooses a coupon program on a
        campaign's offer: the static code gives way to personal codes."""
        self.start_tour(
            "/odoo", "winback_whatsapp_loyalty_tour", login="tour_coupon_marketer"
        )
        self.assertEqual(self.campaign.loyalty_program_id, self.program)
