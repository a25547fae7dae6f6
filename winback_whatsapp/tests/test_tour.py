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
