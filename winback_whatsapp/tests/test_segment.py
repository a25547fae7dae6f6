from datetime import datetime, timedelta
from types import SimpleNamespace
from unittest.mock import patch

from odoo.exceptions import ValidationError
from odoo.tests import freeze_time, tagged

from odoo.addons.winback_whatsapp.models import winback_segment_recompute

from .common import WinbackCase, run_job


@tagged("post_install", "-at_install")
class TestSegment(WinbackCase):
    def _recompute(self):
        run_job(self, "winback.segment.recompute", "_cron_recompute")

    def test_default_segments(self):
        """A fresh install has Lukewarm 60-89 (news), Cooling 90-179 (benefit)
        and Cold 180+ (offer), each with its own partner tag."""
        segments = self.Segment.search([("company_id", "=", self.company.id)])
        self.assertEqual(
            [(s.name, s.min_days, s.max_days, s.lever) for s in segments],
            [
                ("Lukewarm", 60, 89, "news"),
                ("Cooling", 90, 179, "benefit"),
                ("Cold", 180, 0, "offer"),
            ],
        )
        self.assertEqual(self.cold.range_display, "180+ days")
        self.assertTrue(all(segments.mapped("tag_id")))
        self.assertEqual(len(segments.tag_id), 3)

    def test_boundaries(self):
        """59 days is still active; 60, 89 lukewarm; 90, 179 cooling; 180 cold."""
        expected = {
            59: False,
            60: self.lukewarm,
            89: self.lukewarm,
            90: self.cooling,
            179: self.cooling,
            180: self.cold,
            400: self.cold,
        }
        partners = {}
        for days in expected:
            partners[days] = self._partner(f"Customer {days}")
            self._order(partners[days], days_ago=days)
        self._recompute()
        for days, segment in expected.items():
            partner = partners[days]
            self.assertEqual(partner.winback_segment_id, segment or self.Segment)
            self.assertEqual(partner.winback_days_inactive, days)
            self.assertEqual(
                partner.winback_last_order_date, self._today() - timedelta(days=days)
            )
            tags = partner.category_id & (self.Segment.search([]).tag_id)
            self.assertEqual(tags, segment.tag_id if segment else tags.browse())
        self.assertEqual(self.lukewarm.partner_count, 2)
        self.assertEqual(self.cold.partner_count, 2)
        listed = self.env["res.partner"].search(
            self.lukewarm.action_view_partners()["domain"]
        )
        self.assertEqual(listed, partners[60] | partners[89])
        inactive_90 = self.env["res.partner"].search(
            [
                ("winback_days_inactive", ">=", 90),
                ("id", "in", [p.id for p in partners.values()]),
            ]
        )
        self.assertEqual(
            inactive_90, partners[90] | partners[179] | partners[180] | partners[400]
        )

    def test_cancelled_orders_and_quotations_do_not_count(self):
        quoted = self._partner("Only a quotation")
        self._order(quoted, days_ago=100, confirm=False)
        cancelled = self._partner("Bought long ago, cancelled lately")
        self._order(cancelled, days_ago=100)
        recent = self._order(cancelled, days_ago=10)
        recent._action_cancel()
        self._recompute()
        self.assertFalse(quoted.winback_segment_id)
        self.assertFalse(quoted.winback_last_order_date)
        self.assertEqual(cancelled.winback_segment_id, self.cooling)
        self.assertEqual(cancelled.winback_days_inactive, 100)

    def test_new_order_returns_customer_to_active(self):
        """Confirming an order updates the customer at once, no cron needed:
        back to active, tag removed. Cancelling it puts them back."""
        partner = self._partner("Roberta")
        self._order(partner, days_ago=200)
        self._recompute()
        self.assertEqual(partner.winback_segment_id, self.cold)
        self.assertIn(self.cold.tag_id, partner.category_id)

        order = self._order(partner, days_ago=0)
        self.assertFalse(partner.winback_segment_id)
        self.assertNotIn(self.cold.tag_id, partner.category_id)
        self.assertEqual(partner.winback_last_order_date, self._today())
        self.assertEqual(partner.winback_days_inactive, 0)

        order._action_cancel()
        self.assertEqual(partner.winback_segment_id, self.cold)
        self.assertIn(self.cold.tag_id, partner.category_id)

    def test_contacts_share_their_company_purchases(self):
        """Orders of any contact count for the company and all its contacts."""
        company = self._partner("Bar Centrale", is_company=True)
        buyer = self._partner("Stefano", parent_id=company.id)
        colleague = self._partner("Laura", parent_id=company.id)
        self._order(buyer, days_ago=120)
        self._recompute()
        for partner in company | buyer | colleague:
            self.assertEqual(partner.winback_segment_id, self.cooling, partner.name)
            self.assertEqual(partner.winback_days_inactive, 120)
        # One colleague buying brings the whole company back to active.
        self._order(colleague, days_ago=0)
        for partner in company | buyer | colleague:
            self.assertFalse(partner.winback_segment_id, partner.name)

    def test_two_companies_kept_apart(self):
        other = self.env["res.company"].create({"name": "Second Shop"})
        other_segments = self.Segment.search([("company_id", "=", other.id)])
        self.assertEqual(other_segments.mapped("min_days"), [60, 90, 180])
        self.env.user.company_ids |= other
        partner = self._partner("Davide")
        self._order(partner, days_ago=100, company=other)
        self._order(partner, days_ago=20)
        self._recompute()
        in_main = partner.with_company(self.company)
        in_other = partner.with_company(other)
        self.assertFalse(in_main.winback_segment_id)
        self.assertEqual(in_main.winback_days_inactive, 20)
        cooling_other = other_segments.filtered(lambda s: s.min_days == 90)
        self.assertEqual(in_other.winback_segment_id, cooling_other)
        self.assertEqual(in_other.winback_days_inactive, 100)
        self.assertIn(cooling_other.tag_id, partner.category_id)
        self.assertNotIn(self.cooling.tag_id, partner.category_id)

    def test_thresholds_edited_by_a_user(self):
        """A café: thirty days is an eternity."""
        partner = self._partner("Anna")
        self._order(partner, days_ago=45)
        self._recompute()
        self.assertFalse(partner.winback_segment_id)
        self.lukewarm.min_days = 30
        self._recompute()
        self.assertEqual(partner.winback_segment_id, self.lukewarm)

    def test_overlapping_ranges_refused(self):
        with self.assertRaisesRegex(ValidationError, "overlap"):
            self.cooling.min_days = 80
        with self.assertRaisesRegex(ValidationError, "overlap"):
            self.Segment.create({"name": "Frozen", "min_days": 365, "lever": "offer"})
        with self.assertRaisesRegex(ValidationError, "before it starts"):
            self.lukewarm.write({"min_days": 70, "max_days": 65})
        # Another company may use the same ranges.
        other = self.env["res.company"].create({"name": "Second Shop"})
        self.assertEqual(len(self.Segment.search([("company_id", "=", other.id)])), 3)

    def test_renamed_tag_keeps_working(self):
        first = self._partner("Franco")
        self._order(first, days_ago=200)
        self._recompute()
        self.cold.tag_id.name = "Needs a call"
        second = self._partner("Giulia")
        self._order(second, days_ago=250)
        self._recompute()
        self.assertEqual(self.cold.tag_id.name, "Needs a call")
        for partner in first | second:
            self.assertIn(self.cold.tag_id, partner.category_id)

    def test_deleted_tag_recreated(self):
        partner = self._partner("Franco")
        self._order(partner, days_ago=200)
        self._recompute()
        self.cold.tag_id.unlink()
        self.assertFalse(self.cold.tag_id)
        self.cold.write({"name": "Cold"})
        self.assertTrue(self.cold.tag_id)
        self.assertIn(self.cold.tag_id, partner.category_id)

    def test_extra_filter_applied(self):
        italy = self.env.ref("base.it")
        italian = self._partner("Roberta", country_id=italy.id)
        french = self._partner("Amélie", country_id=self.env.ref("base.fr").id)
        self._order(italian, days_ago=200)
        self._order(french, days_ago=200)
        self.cold.filter_domain = f"[('country_id', '=', {italy.id})]"
        self._recompute()
        self.assertEqual(italian.winback_segment_id, self.cold)
        self.assertFalse(french.winback_segment_id)
        self.assertEqual(french.winback_days_inactive, 200)
        with self.assertRaisesRegex(ValidationError, "not valid"):
            self.cold.filter_domain = "[('no_such_field', '=', 1)]"

    def test_archived_partners_ignored(self):
        partner = self._partner("Gone")
        self._order(partner, days_ago=100)
        self._recompute()
        self.assertEqual(partner.winback_segment_id, self.cooling)
        partner.action_archive()
        self._recompute()
        self.assertFalse(partner.winback_segment_id)
        self.assertNotIn(self.cooling.tag_id, partner.category_id)

    def test_days_counted_in_company_time_zone(self):
        """Late on 21 November in UTC is already 22 November in Auckland."""
        self.company.partner_id.tz = "Pacific/Auckland"
        partner = self._partner("Kiri")
        order = self._order(partner)
        with freeze_time("2026-11-22 10:00:00"):  # 23:00 in Auckland
            order.date_order = datetime(2026, 8, 23, 20, 0)  # 24 August there
            self._recompute()
            self.assertEqual(str(partner.winback_last_order_date), "2026-08-24")
            self.assertEqual(partner.winback_days_inactive, 90)
            self.assertEqual(partner.winback_segment_id, self.cooling)

    def test_recompute_now_button(self):
        partner = self._partner("Stefano")
        self._order(partner, days_ago=70)
        self.env.invalidate_all()
        # The hook ran at confirmation (date was today); the date was moved
        # afterwards, as a data import would, so the segment is stale.
        self.assertFalse(partner.winback_segment_id)
        action = self.lukewarm.action_recompute()
        self.assertEqual(action["params"]["type"], "success")
        self.assertEqual(partner.winback_segment_id, self.lukewarm)

    def test_recompute_writes_only_changes(self):
        partner = self._partner("Laura")
        self._order(partner, days_ago=70)
        Recompute = self.env["winback.segment.recompute"]
        self.assertEqual(Recompute._recompute_company(self.company), 1)
        self.assertEqual(Recompute._recompute_company(self.company), 0)

    def test_incremental_night_picks_boundary_crossers(self):
        """After a full run, the next night only recomputes what may have
        changed: here, the customer whose 60th day has come."""
        crossing = self._partner("Crossing tonight")
        self._order(crossing, days_ago=59)
        steady = self._partner("Steady")
        self._order(steady, days_ago=100)
        self._recompute()
        self.assertFalse(crossing.winback_segment_id)
        with freeze_time(datetime.now() + timedelta(days=1)):
            self.assertEqual(self._next_night(), 1)
            self.assertEqual(crossing.winback_segment_id, self.lukewarm)
            self.assertEqual(crossing.winback_days_inactive, 60)
            self.assertEqual(steady.winback_segment_id, self.cooling)

    def test_full_run_keeps_a_purchase_made_while_it_runs(self):
        """A full run reads every customer's purchases at once, then writes
        them chunk by chunk, each chunk a transaction of its own. A customer
        who buys in between (the order's confirmation recomputed them) keeps
        that purchase: the run does not write its older view over it."""
        partner = self._partner("Buys during the night")
        self._order(partner, days_ago=200)
        # Never recomputed yet, as on the first night after installing.
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE res_partner SET winback_last_order_date = NULL,"
            " winback_segment_id = NULL, winback_typical_interval = NULL,"
            " winback_next_purchase_date = NULL WHERE id = %s",
            [partner.id],
        )
        self.env.invalidate_all()
        Recompute = type(self.env["winback.segment.recompute"])
        fill = Recompute._recompute_fill_full

        def fill_then_buy(engine, company, id_range):
            fill(engine, company, id_range)
            # Read: 200 days ago, Cold. Now the customer buys.
            self._order(partner, days_ago=0)
            self.env.flush_all()

        self.env["ir.config_parameter"].sudo().set_param(
            winback_segment_recompute.PARAM_LAST_FULL, ""
        )
        with patch.object(Recompute, "_recompute_fill_full", fill_then_buy):
            self._recompute()
        self.assertEqual(partner.winback_days_inactive, 0)
        self.assertFalse(partner.winback_segment_id)
        self.assertNotIn(self.cold.tag_id, partner.category_id)

    def test_full_recompute_resumes_from_checkpoint(self):
        """Past its time budget a cron call stops after a chunk, tells
        ir.cron that work remains (so that ir.cron calls it again at once)
        and the next call resumes where it stopped."""
        partners = self.env["res.partner"]
        for index in range(6):
            partners |= self._partner(f"Customer {index}")
            self._order(partners[-1], days_ago=200)
        self.env.invalidate_all()
        self.assertFalse(partners.winback_segment_id)  # dates moved after confirm
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_recompute")
        chunk = max(partners.ids) // 3 + 1
        param = self.env["ir.config_parameter"]
        runs = 0
        with (
            patch.object(winback_segment_recompute, "RECOMPUTE_CHUNK", chunk),
            patch.object(winback_segment_recompute, "RECOMPUTE_TIME_BUDGET", -1),
        ):
            while True:
                runs += 1
                # One call of the job, as ir.cron makes it: with its progress.
                progress = self.env["ir.cron.progress"].create({"cron_id": cron.id})
                job = SimpleNamespace(
                    registry=self.registry,
                    cr=self.cr,
                    env=self.env(
                        context=dict(self.env.context, ir_cron_progress_id=progress.id)
                    ),
                )
                run_job(job, "winback.segment.recompute", "_cron_recompute")
                if not param.get_param(winback_segment_recompute.PARAM_CHECKPOINT):
                    self.assertFalse(progress.remaining)
                    break
                self.assertTrue(progress.done)
                self.assertTrue(progress.remaining)
                self.assertLess(runs, 10)
        self.assertGreaterEqual(runs, 3)
        self.assertEqual(partners.winback_segment_id, self.cold)
        self.assertTrue(param.get_param(winback_segment_recompute.PARAM_LAST_FULL))
