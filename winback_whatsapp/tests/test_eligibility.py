from datetime import timedelta

from odoo import fields
from odoo.tests import tagged
from odoo.tools import SQL

from odoo.addons.winback_whatsapp.models.winback_enrollment import LIVE_STATES
from odoo.addons.winback_whatsapp.tools.eligibility import (
    INELIGIBLE_REASONS,
    eligibility_sql,
)

from .test_send import WinbackSendCase


@tagged("post_install", "-at_install")
class TestEligibilitySql(WinbackSendCase):
    """tools/eligibility.py on its own: ids and dates in, one SQL query out,
    run on the database."""

    def _reasons(self, **overrides):
        now = fields.Datetime.now()
        args = {
            "company_id": self.company.id,
            "segment_ids": self.cold.ids,
            "campaign_id": self.campaign.id,
            "live_states": LIVE_STATES,
            "cooldown_since": now - timedelta(days=30),
            "reentry_since": now - timedelta(days=90),
            "now": now,
            **overrides,
        }
        self.env.flush_all()
        self.env.cr.execute(
            SQL("SELECT id, reason FROM (%s) e", eligibility_sql(**args))
        )
        return dict(self.env.cr.fetchall())

    def test_every_reason_is_a_case_of_the_query(self):
        query = eligibility_sql(
            company_id=1,
            segment_ids=[1],
            campaign_id=1,
            live_states=LIVE_STATES,
            cooldown_since=fields.Datetime.now(),
            reentry_since=fields.Datetime.now(),
            now=fields.Datetime.now(),
        )
        for code, _label in INELIGIBLE_REASONS:
            self.assertIn(f"THEN '{code}'", query.code)

    def test_first_failing_check_is_the_reason(self):
        """A customer failing several checks shows the first one, in the
        order of INELIGIBLE_REASONS."""
        customer = self._customer("Many reasons", "+39 333 000 0011", consent=False)
        customer.winback_dormant = True
        self.env["phone.blacklist"]._add([customer.phone_sanitized])
        reasons = self._reasons()
        self.assertEqual(reasons[customer.id], "no_consent")
        self.assertEqual(reasons[self.roberta.id], "eligible")

    def test_dates_and_segments_come_from_the_caller(self):
        other = self.campaign.copy({"state": "running"})
        self.env["winback.enroller"]._enroll(other)
        enrollment = self.env["winback.enrollment"].search(
            [("partner_id", "=", self.roberta.id)]
        )
        enrollment.state = "replied"
        now = fields.Datetime.now()
        reasons = self._reasons(campaign_id=enrollment.campaign_id.id)
        self.assertEqual(reasons[self.roberta.id], "reentry")
        reasons = self._reasons(
            campaign_id=enrollment.campaign_id.id, reentry_since=now + timedelta(days=1)
        )
        self.assertEqual(reasons[self.roberta.id], "eligible")
        self.assertEqual(self._reasons(segment_ids=self.lukewarm.ids), {})
