from odoo.tests import HttpCase, tagged

from .common import WinbackDataMixin


@tagged("post_install", "-at_install")
class TestTour(WinbackDataMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls._enroll(cls.segment_warm, "replied", messages=[(cls.step1, "read")])
        cls._enroll(
            cls.segment_cold, "converted", revenue=80.0, messages=[(cls.step1, "read")]
        )
        cls._enroll(cls.segment_cold, "holdout", holdout=True)

    def test_reporting_tour(self):
        """In a real browser, CRM > Win-back > Reporting opens the pivot of
        results by segment, and the graph draws."""
        self.start_tour("/odoo", "winback_whatsapp_reporting_tour", login="admin")

    def test_campaign_tour(self):
        """In a real browser, from the CRM menu: create a segment, create a
        two-message campaign on it, start it, open the results."""
        account = self.env["winback.account"].create({"name": "Tour account"})
        self.env["winback.template"].create(
            {
                "name": "winback_tour_news",
                "account_id": account.id,
                "language": "en",
                "status": "approved",
                "body": "Hi {{1}}, news for you!",
                "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
            }
        )
        self.start_tour("/odoo", "winback_whatsapp_campaign_tour", login="admin")
        campaign = self.env["winback.campaign"].search([("name", "=", "Fresh news")])
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.segment_ids.name, "Fresh")
        self.assertEqual(campaign.segment_ids.min_days, 30)
        self.assertEqual(campaign.step_ids.mapped("delay_days"), [0, 3])
        self.assertEqual(campaign.segment_ids.tag_id.name, "Win-back: Fresh")
