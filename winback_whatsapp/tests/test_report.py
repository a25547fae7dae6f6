from odoo.tests import tagged

from ..models.winback_lift import newcombe_interval, wilson_interval
from .common import WinbackReportCase


@tagged("post_install", "-at_install")
class TestReport(WinbackReportCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        warm, cold = cls.segment_warm, cls.segment_cold
        s1, s2 = cls.step1, cls.step2
        # Warm segment: 4 treated (1 converted, 2 replied, 1 running), 1 holdout.
        cls._enroll(warm, "converted", revenue=120.0, messages=[(s1, "read")])
        cls._enroll(warm, "replied", messages=[(s1, "read")])
        cls._enroll(warm, "replied", messages=[(s1, "delivered"), (s2, "read")])
        cls._enroll(warm, "running", messages=[(s1, "sent")])
        cls._enroll(warm, "holdout", holdout=True)
        # Cold segment: 6 treated (1 opted out, 1 dormant, 1 failed, 3 running
        # of which one still queued), 2 holdout of which one bought anyway.
        cls._enroll(cold, "opted_out", messages=[(s1, "delivered")])
        cls._enroll(cold, "dormant", messages=[(s1, "read"), (s2, "delivered")])
        cls._enroll(cold, "failed", messages=[(s1, "failed")])
        cls._enroll(cold, "running", messages=[(s1, "sent")])
        cls._enroll(cold, "running", messages=[(s1, "queued")])
        cls._enroll(cold, "running")
        cls._enroll(cold, "holdout", holdout=True)
        cls._enroll(cold, "converted", holdout=True, revenue=45.0)
        cls.env.flush_all()

    def _independent(self, segment, holdout):
        """The figures straight from the enrollment and message tables."""
        self.env.cr.execute(
            """
            SELECT COUNT(*),
                   COUNT(*) FILTER (WHERE state = 'replied'),
                   COUNT(*) FILTER (WHERE state = 'converted'),
                   COUNT(*) FILTER (WHERE state = 'opted_out'),
                   COALESCE(SUM(revenue), 0)
              FROM winback_enrollment
             WHERE segment_id = %s AND is_holdout = %s AND campaign_id = %s
            """,
            (segment.id, holdout, self.campaign.id),
        )
        enrolled, replied, converted, opted_out, revenue = self.env.cr.fetchone()
        self.env.cr.execute(
            """
            SELECT COUNT(*) FILTER (WHERE m.state IN ('sent', 'delivered', 'read')),
                   COUNT(*) FILTER (WHERE m.state IN ('delivered', 'read')),
                   COUNT(*) FILTER (WHERE m.state = 'read')
              FROM winback_message m
              JOIN winback_enrollment e ON e.id = m.enrollment_id
             WHERE e.segment_id = %s AND e.is_holdout = %s AND e.campaign_id = %s
               AND m.direction = 'outbound'
            """,
            (segment.id, holdout, self.campaign.id),
        )
        sent, delivered, read = self.env.cr.fetchone()
        return {
            "enrolled": enrolled,
            "sent": sent,
            "delivered": delivered,
            "read_count": read,
            "replied": replied,
            "converted": converted,
            "opted_out": opted_out,
            "revenue": float(revenue),
        }

    def test_pivot_figures_match_the_database(self):
        """The pivot by segment and holdout flag shows, for each cell, exactly
        what counting the enrollments and messages themselves gives."""
        measures = list(self._independent(self.segment_warm, False))
        groups = self.env["winback.report"].read_group(
            [("campaign_id", "=", self.campaign.id)],
            [f"{m}:sum" for m in measures],
            ["segment_id", "is_holdout"],
            lazy=False,
        )
        self.assertEqual(len(groups), 4)
        for group in groups:
            segment = self.env["winback.segment"].browse(group["segment_id"][0])
            expected = self._independent(segment, group["is_holdout"])
            got = {m: group[m] for m in measures}
            self.assertEqual(got, expected, f"{segment.name} {group['is_holdout']}")
        # And the figures themselves, as a user reads them off the data above.
        warm = next(
            g
            for g in groups
            if g["segment_id"][0] == self.segment_warm.id and not g["is_holdout"]
        )
        self.assertEqual(
            (warm["enrolled"], warm["sent"], warm["delivered"], warm["read_count"]),
            (4, 5, 4, 3),
        )
        self.assertEqual((warm["replied"], warm["converted"]), (2, 1))
        self.assertEqual(warm["revenue"], 120.0)

    def test_rates_are_ratios_of_sums(self):
        """Reply and conversion rates of a group are replied / treated and
        converted / enrolled of that group, not an average of row rates."""
        report = self.env["winback.report"]
        domain = [("campaign_id", "=", self.campaign.id)]
        by_segment = report.read_group(
            domain,
            ["reply_rate:sum", "conversion_rate:sum"],
            ["segment_id"],
            lazy=False,
        )
        rates = {g["segment_id"][0]: g for g in by_segment}
        warm, cold = rates[self.segment_warm.id], rates[self.segment_cold.id]
        self.assertAlmostEqual(warm["reply_rate"], 100.0 * 2 / 4)
        self.assertAlmostEqual(warm["conversion_rate"], 100.0 * 1 / 5)
        self.assertAlmostEqual(cold["reply_rate"], 0.0)
        self.assertAlmostEqual(cold["conversion_rate"], 100.0 * 1 / 8)
        # The total line (pivot's header) over both segments: 2 replies out of
        # 10 treated, 2 conversions out of 13 enrolled.
        (total,) = report.read_group(
            domain, ["reply_rate:sum", "conversion_rate:sum"], [], lazy=False
        )
        self.assertAlmostEqual(total["reply_rate"], 20.0)
        self.assertAlmostEqual(total["conversion_rate"], 100.0 * 2 / 13)

    def test_by_step_counts_last_step_sent(self):
        """Grouped by step, each customer counts once, under the last step
        whose message left; customers with nothing sent have no step."""
        groups = self.env["winback.report"].read_group(
            [("campaign_id", "=", self.campaign.id)],
            ["enrolled:sum"],
            ["step_id"],
            lazy=False,
        )
        by_step = {g["step_id"] and g["step_id"][0]: g["enrolled"] for g in groups}
        self.assertEqual(by_step[self.step2.id], 2)
        self.assertEqual(by_step[self.step1.id], 5)
        # holdout (3), failed, queued, and never sent: no step yet.
        self.assertEqual(by_step[False], 6)
        self.assertEqual(sum(by_step.values()), 13)

    def test_lift_rows_per_segment(self):
        """The holdout comparison shows, per campaign and segment, treated and
        holdout conversion and the incremental revenue."""
        lifts = self.env["winback.lift"].search(
            [("campaign_id", "=", self.campaign.id)]
        )
        cold = lifts.filtered(lambda r: r.segment_id == self.segment_cold)
        self.assertEqual((cold.treated_count, cold.treated_converted), (6, 0))
        self.assertEqual((cold.holdout_count, cold.holdout_converted), (2, 1))
        self.assertAlmostEqual(cold.treated_rate, 0.0)
        self.assertAlmostEqual(cold.holdout_rate, 50.0)
        self.assertAlmostEqual(cold.lift, -50.0)
        # Revenue per holdout customer 22.5, per treated 0: 6 x -22.5.
        self.assertAlmostEqual(cold.incremental_revenue, -135.0)
        warm = lifts.filtered(lambda r: r.segment_id == self.segment_warm)
        self.assertEqual((warm.treated_count, warm.holdout_count), (4, 1))
        self.assertAlmostEqual(warm.incremental_revenue, 120.0)


@tagged("post_install", "-at_install")
class TestLiftKnownDataset(WinbackReportCase):
    def test_newcombe_published_examples(self):
        """The interval matches the values published by Newcombe (1998),
        Table II, method 10, for 56/70 - 48/80 and 9/10 - 3/10."""
        diff, low, high = newcombe_interval(56, 70, 48, 80)
        self.assertAlmostEqual(diff, 0.2, places=6)
        self.assertAlmostEqual(low, 0.0524, places=4)
        self.assertAlmostEqual(high, 0.3339, places=4)
        diff, low, high = newcombe_interval(9, 10, 3, 10)
        self.assertAlmostEqual(low, 0.1705, places=4)
        self.assertAlmostEqual(high, 0.8090, places=4)
        # Wilson interval of 81/263 (Newcombe 1998, Table I): 0.2553-0.3662.
        low, high = wilson_interval(81, 263)
        self.assertAlmostEqual(low, 0.2553, places=4)
        self.assertAlmostEqual(high, 0.3662, places=4)

    def test_campaign_lift_on_known_dataset(self):
        """9 of 10 treated customers bought against 3 of 10 in the holdout:
        lift 60 points, 95% CI 17.05-80.90, incremental revenue
        (900/10 - 150/10) x 10 = 750."""
        for i in range(10):
            self._enroll(
                self.segment_warm,
                "converted" if i < 9 else "dormant",
                revenue=100.0 if i < 9 else 0.0,
                messages=[(self.step1, "read")],
            )
            self._enroll(
                self.segment_warm,
                "converted" if i < 3 else "holdout",
                holdout=True,
                revenue=50.0 if i < 3 else 0.0,
            )
        self.env.flush_all()
        lift = self.env["winback.lift"].search(
            [
                ("campaign_id", "=", self.campaign.id),
                ("segment_id", "=", self.segment_warm.id),
            ]
        )
        self.assertEqual(len(lift), 1)
        self.assertAlmostEqual(lift.treated_rate, 90.0)
        self.assertAlmostEqual(lift.holdout_rate, 30.0)
        self.assertAlmostEqual(lift.lift, 60.0)
        self.assertAlmostEqual(lift.lift_low, 17.05, places=2)
        self.assertAlmostEqual(lift.lift_high, 80.90, places=2)
        self.assertTrue(lift.significant)
        self.assertAlmostEqual(lift.incremental_revenue, 750.0)
