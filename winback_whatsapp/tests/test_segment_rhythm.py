from datetime import datetime, timedelta

from psycopg2 import IntegrityError

from odoo.exceptions import ValidationError
from odoo.tests import Form, freeze_time, new_test_user, tagged
from odoo.tools import mute_logger

from .common import WinbackCase, run_job


@tagged("post_install", "-at_install")
class TestSegmentRhythm(WinbackCase):
    """Customers lapsed by their own rhythm: the typical interval between
    their purchases, and the overdue factor segments."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.admin = new_test_user(
            cls.env,
            login="winback_rhythm_admin",
            groups="base.group_system,winback_whatsapp.group_winback_manager",
        )
        cls.seller = new_test_user(
            cls.env,
            login="winback_rhythm_seller",
            groups="winback_whatsapp.group_winback_user",
        )

    def _recompute(self):
        run_job(self, "winback.segment.recompute", "_cron_recompute")

    def _customer(self, name, *days_ago):
        partner = self._partner(name)
        for days in days_ago:
            self._order(partner, days_ago=days)
        return partner

    def _settings(self, **vals):
        """Settings saved by a system administrator, as in the Settings app."""
        settings = self.env["res.config.settings"].with_user(self.admin)
        with Form(settings) as form:
            for name, value in vals.items():
                setattr(form, name, value)
        form.record.execute()

    def _as_seller(self, partner):
        """The partner as a salesperson reads it on the Win-back tab."""
        return partner.with_user(self.seller)

    def test_weekly_buyer_cold_yearly_buyer_on_schedule(self):
        """By days, the weekly florist customer away 40 days is in no
        segment and the yearly garden-centre customer at 200 days is cold.
        By their own rhythm it is the other way round."""
        weekly = self._customer("Weekly florist customer", 40, 47, 54, 61, 68)
        yearly = self._customer("Yearly garden customer", 200, 565, 930)
        self._recompute()
        self.assertFalse(weekly.winback_segment_id)
        self.assertEqual(yearly.winback_segment_id, self.cold)

        self._settings(winback_segment_mode="factor")
        self.assertEqual(self.cold.mode, "factor")
        self.assertEqual(self.cold.range_display, "4×+ rhythm (else 180+ days)")
        self._recompute()
        weekly_tab = self._as_seller(weekly)
        self.assertEqual(weekly_tab.winback_typical_interval, 7.0)
        self.assertEqual(
            weekly_tab.winback_next_purchase_date,
            self._today() - timedelta(days=40 - 7),
        )
        self.assertEqual(weekly_tab.winback_overdue_factor, 5.7)  # 40 / 7
        self.assertFalse(weekly_tab.winback_rhythm_fallback)
        self.assertEqual(weekly_tab.winback_segment_id, self.cold)
        self.assertIn(self.cold.tag_id, weekly.category_id)

        yearly_tab = self._as_seller(yearly)
        self.assertEqual(yearly_tab.winback_typical_interval, 365.0)
        self.assertEqual(
            yearly_tab.winback_next_purchase_date,
            self._today() + timedelta(days=165),
        )
        self.assertEqual(yearly_tab.winback_overdue_factor, 0.5)  # 200 / 365
        self.assertFalse(yearly_tab.winback_segment_id)
        self.assertNotIn(self.cold.tag_id, yearly.category_id)
        # The salesperson finds who is overdue by their own rhythm.
        overdue = (
            self.env["res.partner"]
            .with_user(self.seller)
            .search(
                [
                    ("winback_overdue_factor", ">=", 4),
                    ("id", "in", (weekly | yearly).ids),
                ]
            )
        )
        self.assertEqual(overdue, weekly)

    def test_median_gap_between_purchase_days(self):
        """The typical interval is the median gap, so one long pause does not
        hide a habit, and two orders on one day are one visit."""
        partner = self._customer("Regular with a holiday", 10, 20, 20, 30, 40, 100)
        self._recompute()
        self.assertEqual(partner.winback_typical_interval, 10.0)
        self.assertEqual(partner.winback_next_purchase_date, self._today())
        self.assertAlmostEqual(partner.winback_overdue_factor, 1.0)
        even = self._customer("Even number of gaps", 5, 10, 20)
        self._recompute()
        self.assertEqual(even.winback_typical_interval, 7.5)
        self.assertEqual(even.winback_next_purchase_date, self._today() + timedelta(3))

    def test_two_purchase_customer_falls_back_to_days(self):
        """Two purchase days give no rhythm: the customer is placed by the
        day range of the overdue-factor segments, and both say so."""
        self._settings(winback_segment_mode="factor")
        twice = self._customer("Two purchases", 100, 130)
        same_day = self._customer("Three orders on two days", 100, 130, 130)
        weekly = self._customer("Weekly, on schedule", 3, 10, 17)
        self._recompute()
        for partner in (twice, same_day):
            tab = self._as_seller(partner)
            self.assertFalse(tab.winback_typical_interval)
            self.assertFalse(tab.winback_next_purchase_date)
            self.assertFalse(tab.winback_overdue_factor)
            self.assertTrue(tab.winback_rhythm_fallback)
            self.assertEqual(tab.winback_segment_id, self.cooling)
        self.assertFalse(self._as_seller(weekly).winback_rhythm_fallback)
        self.assertFalse(weekly.winback_segment_id)
        cooling = self.cooling.with_user(self.seller)
        self.assertEqual(cooling.partner_count, 2)
        self.assertEqual(cooling.fallback_count, 2)
        self.assertEqual(
            self.env["res.partner"]
            .with_user(self.seller)
            .search(
                [
                    ("winback_rhythm_fallback", "=", True),
                    ("id", "in", (twice | same_day | weekly).ids),
                ]
            ),
            twice | same_day,
        )
        # A third purchase day gives them a rhythm: gaps 70 and 30, a median
        # of 50 days, and 100 days away is 2× that: lukewarm.
        self._order(twice, days_ago=200)
        self._recompute()
        self.assertEqual(twice.winback_typical_interval, 50.0)
        self.assertFalse(twice.winback_rhythm_fallback)
        self.assertEqual(twice.winback_segment_id, self.lukewarm)
        self.assertEqual(self.cooling.fallback_count, 1)

    def test_order_updates_factor_at_once(self):
        """A salesperson confirming an order brings the rhythm, the expected
        next purchase and the segment up to date, without the cron."""
        self._settings(winback_segment_mode="factor")
        weekly = self._customer("Weekly", 40, 47, 54, 61)
        self._recompute()
        self.assertEqual(weekly.winback_segment_id, self.cold)
        salesman = new_test_user(
            self.env,
            login="winback_rhythm_salesman",
            groups="sales_team.group_sale_salesman",
        )
        order = (
            self.env["sale.order"]
            .with_user(salesman)
            .create(
                {
                    "partner_id": weekly.id,
                    "order_line": [(0, 0, {"product_id": self.product.id})],
                }
            )
        )
        order.action_confirm()
        tab = self._as_seller(weekly)
        self.assertEqual(tab.winback_last_order_date, self._today())
        # Gaps 7, 7, 7 and 40: still a weekly customer, on schedule today.
        self.assertEqual(tab.winback_typical_interval, 7.0)
        self.assertEqual(tab.winback_next_purchase_date, self._today() + timedelta(7))
        self.assertEqual(tab.winback_overdue_factor, 0.0)
        self.assertFalse(tab.winback_segment_id)
        self.assertNotIn(self.cold.tag_id, weekly.category_id)
        order.with_user(salesman)._action_cancel()
        self.assertEqual(tab.winback_segment_id, self.cold)
        self.assertEqual(tab.winback_overdue_factor, 5.7)

    def test_settings_switch_mode(self):
        """The settings switch the default segments between days and
        overdue factors, with the company's factor thresholds."""
        fortnightly = self._customer("Fortnightly", 35, 49, 63)
        self._recompute()
        self.assertFalse(fortnightly.winback_segment_id)

        self._settings(
            winback_segment_mode="factor",
            winback_lukewarm_factor=2.0,
            winback_cooling_factor=3.0,
            winback_cold_factor=5.0,
        )
        segments = self.lukewarm | self.cooling | self.cold
        self.assertEqual(
            [(s.mode, s.min_factor, s.max_factor) for s in segments],
            [("factor", 2.0, 3.0), ("factor", 3.0, 5.0), ("factor", 5.0, 0.0)],
        )
        self.assertEqual(segments.mapped("min_days"), [60, 90, 180])
        self._recompute()
        self.assertEqual(fortnightly.winback_segment_id, self.lukewarm)  # 2.5×

        self._settings(winback_segment_mode="days")
        self.assertEqual(set(segments.mapped("mode")), {"days"})
        self._recompute()
        self.assertFalse(fortnightly.winback_segment_id)

        # A new company starts in the mode its settings say.
        other = self.env["res.company"].create(
            {"name": "Garden centre", "winback_segment_mode": "factor"}
        )
        other_segments = self.Segment.search([("company_id", "=", other.id)])
        self.assertEqual(set(other_segments.mapped("mode")), {"factor"})
        self.assertEqual(other_segments.mapped("min_factor"), [1.5, 2.5, 4.0])

    def test_factor_ranges_checked(self):
        self._settings(winback_segment_mode="factor")
        cooling = self.cooling.with_user(self.admin)
        with self.assertRaisesRegex(ValidationError, "overlap"):
            cooling.min_factor = 2.0
        with self.assertRaisesRegex(ValidationError, "before it starts"):
            cooling.write({"min_factor": 3.0, "max_factor": 2.8})
        with self.assertRaisesRegex(ValidationError, "overlap"):
            self.Segment.with_user(self.admin).create(
                {
                    "name": "Frozen",
                    "mode": "factor",
                    "min_days": 365,
                    "max_days": 0,
                    "min_factor": 6,
                    "lever": "offer",
                }
            )
        # The company's default factors must increase.
        with (
            self.assertRaises(IntegrityError),
            mute_logger("odoo.sql_db"),
            self.cr.savepoint(),
        ):
            self._settings(winback_cooling_factor=1.0)

    def test_incremental_night_picks_factor_crossers(self):
        """The nightly run recomputes the customers whose overdue factor
        crossed a band tonight, though their days crossed no day threshold."""
        self._settings(winback_segment_mode="factor")
        weekly = self._customer("Weekly, 27 days away", 27, 34, 41)
        self._recompute()
        self.assertEqual(weekly.winback_segment_id, self.cooling)  # 3.86×
        with freeze_time(datetime.now() + timedelta(days=1)):
            self.assertEqual(self._next_night(), 1)
            self.assertEqual(weekly.winback_segment_id, self.cold)  # 4×
            self.assertAlmostEqual(weekly.winback_overdue_factor, 4.0)
