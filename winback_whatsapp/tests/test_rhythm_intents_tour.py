from odoo.tests import HttpCase, tagged

from .common import WinbackDataMixin


@tagged("post_install", "-at_install")
class TestRhythmIntentsTour(WinbackDataMixin, HttpCase):
    """Issue 16 in a real browser: the cold segment set by the customers'
    own rhythm, a quick-reply button given an intent, then the cost and the
    ROI of the campaign on the Lift over Holdout report."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls.template.button_ids = [
            (0, 0, {"index": 0, "text": "Tell me more"}),
            (0, 0, {"index": 1, "text": "Not now", "intent": "not_now"}),
        ]
        for i in range(8):
            cls._enroll(
                cls.segment_cold,
                "converted" if i < 4 else "dormant",
                revenue=50.0 if i < 4 else 0.0,
                messages=[(cls.step1, "delivered")],
            )
        for _i in range(4):
            cls._enroll(cls.segment_cold, "holdout", holdout=True)
        # What Meta's status callbacks priced: 0.10 a delivered message.
        cls.campaign.enrollment_ids.message_ids.write({"billable": True, "cost": 0.10})

    def test_rhythm_intents_tour(self):
        self.start_tour("/odoo", "winback_whatsapp_rhythm_intents_tour", login="admin")
        self.assertEqual(self.segment_cold.mode, "factor")
        self.assertEqual(self.segment_cold.min_factor, 4.0)
        button = self.template.button_ids.filtered(lambda b: b.text == "Tell me more")
        self.assertEqual(button.intent, "interested")
        lift = self.env["winback.lift"].search([("campaign_id", "=", self.campaign.id)])
        self.assertAlmostEqual(sum(lift.mapped("cost")), 0.80)
