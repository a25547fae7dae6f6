from datetime import datetime, timedelta
from types import SimpleNamespace
from unittest.mock import patch

from odoo import api, fields
from odoo.service.model import retrying
from odoo.tests import freeze_time, new_test_user, tagged
from odoo.tools import config, mute_logger

from odoo.addons.winback_whatsapp.models import (
    winback_enrollment,
    winback_segment_recompute,
)

from .common import WinbackCase, run_job
from .test_send import WinbackSendCase


def process_cron(case, xmlid):
    """Run the scheduled action ``xmlid`` as an Odoo cron worker does, in
    cursors of its own (test mode, as Odoo's cron tests): ir.cron calls it
    again while it reports work remaining, at most 10 times a run. Returns
    the progress records of the run, one per call."""
    cron = case.env.ref(xmlid)
    Progress = case.env["ir.cron.progress"]
    before = Progress.search([("cron_id", "=", cron.id)])
    job = {
        **cron.read(load=None)[0],
        **{"done": 0, "remaining": 0, "timed_out_counter": 0},
    }
    case.env.flush_all()
    registry = case.registry
    entered = registry.test_cr is None
    if entered:
        registry.enter_test_mode(case.cr)
    try:
        with registry.cursor() as cron_cr:
            registry["ir.cron"]._process_job(registry.db_name, cron_cr, job)
    finally:
        if entered:
            registry.leave_test_mode()
    case.env.invalidate_all()
    return Progress.search([("cron_id", "=", cron.id)], order="id") - before


@tagged("post_install", "-at_install")
class TestConcurrentEnroll(WinbackCase):
    """Two transactions enroll the same customer at the same time, on two
    real connections, both committed: the database keeps one enrollment."""

    def _committed_fixture(self):
        """A consenting customer of the Cold segment and two running
        campaigns sharing that segment, committed so that other connections
        see them. Removed again at the end of the test."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            company = env.company
            cold = env.ref("winback_whatsapp.segment_cold")
            account = env["winback.account"].create(
                {"name": "Race account", "phone_number_id": "999000111"}
            )
            template = env["winback.template"].create(
                {
                    "name": "winback_race",
                    "language": "en",
                    "account_id": account.id,
                    "status": "approved",
                    "body": "Hello, we miss you.",
                }
            )
            partner = env["res.partner"].create(
                {
                    "name": "Racing Customer",
                    "mobile": "+39 333 987 6543",
                    "country_id": env.ref("base.it").id,
                    "winback_consent_date": fields.Datetime.now(),
                    "winback_consent_source": "Shop counter",
                }
            )
            env.flush_all()
            # The customer bought 200 days ago: Cold.
            cr.execute(
                """
                UPDATE res_partner
                   SET winback_last_order_date = jsonb_build_object(%s, %s::date),
                       winback_segment_id = jsonb_build_object(%s, %s)
                 WHERE id = %s
                """,
                [
                    str(company.id),
                    fields.Date.today() - timedelta(days=200),
                    str(company.id),
                    cold.id,
                    partner.id,
                ],
            )
            campaigns = env["winback.campaign"].create(
                [
                    {
                        "name": f"Race campaign {index}",
                        "account_id": account.id,
                        "segment_ids": [(6, 0, cold.ids)],
                        "holdout_percent": 0,
                        "daily_cap": 0,
                        "state": "running",
                        "step_ids": [
                            (0, 0, {"name": "One", "template_id": template.id}),
                            (0, 0, {"name": "Two", "template_id": template.id,
                                    "delay_days": 3}),
                        ],
                    }
                    for index in (1, 2)
                ]
            )  # fmt: skip
            ids = (partner.id, campaigns.ids, account.id, template.id)
        self.addCleanup(self._remove_fixture, *ids)
        return ids

    def _remove_fixture(self, partner_id, campaign_ids, account_id, template_id):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            cr.execute(
                "DELETE FROM winback_message WHERE partner_id = %s", [partner_id]
            )
            cr.execute(
                "DELETE FROM winback_enrollment WHERE partner_id = %s", [partner_id]
            )
            env["winback.campaign"].browse(campaign_ids).unlink()
            env["winback.template"].browse(template_id).unlink()
            env["winback.account"].browse(account_id).unlink()
            env["res.partner"].browse(partner_id).unlink()

    def _live_enrollments(self, partner_id):
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT campaign_id FROM winback_enrollment "
                "WHERE partner_id = %s AND state IN ('running', 'holdout')",
                [partner_id],
            )
            return [row[0] for row in cr.fetchall()]

    def _race(self, campaign_id, second):
        """Both transactions look at who is eligible (their snapshot), then
        the first enrolls with *Enroll now* on ``campaign_id`` and commits,
        then ``second`` runs in the other transaction and commits."""
        partner_id = self._fixture[0]
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            env1 = api.Environment(cr1, api.SUPERUSER_ID, {})
            env2 = api.Environment(cr2, api.SUPERUSER_ID, {})
            for env in (env1, env2):
                counts = env["winback.enroller"]._eligibility_counts(
                    env["winback.campaign"].browse(campaign_id)
                )
                self.assertEqual(counts.get("eligible"), 1)
            env1["winback.campaign"].browse(campaign_id).action_enroll_now()
            cr1.commit()
            with mute_logger("odoo.service.model", "odoo.sql_db"), patch("time.sleep"):
                second(env2)
            cr2.commit()
        return self._live_enrollments(partner_id)

    def test_two_campaigns_sharing_a_segment_enroll_once(self):
        """*Enroll now* on two campaigns of one segment at the same time; the
        second request is retried on a serialization failure, as Odoo
        retries any request."""
        self._fixture = self._committed_fixture()
        seq1, seq2 = self._fixture[1]

        def enroll_now(env):
            campaign = env["winback.campaign"].browse(seq2)
            return retrying(campaign.action_enroll_now, env)

        self.assertEqual(self._race(seq1, enroll_now), [seq1])

    def test_cron_and_enroll_now_enroll_once(self):
        """The nightly cron runs while a user clicks *Enroll now* on the same
        campaign (the other one is paused)."""
        self._fixture = self._committed_fixture()
        seq1, seq2 = self._fixture[1]
        with self.registry.cursor() as cr:
            cr.execute(
                "UPDATE winback_campaign SET state = 'paused' WHERE id = %s", [seq2]
            )

        def cron(env):
            env["winback.enroller"]._cron_enroll()

        self.assertEqual(self._race(seq1, cron), [seq1])


@tagged("post_install", "-at_install")
class TestQueueSafety(WinbackSendCase):
    def test_step_already_queued_is_skipped(self):
        """The demo's case: the enrollment is due for a step whose message
        already exists. Queuing skips it and moves on."""
        enrollment = self._start_and_queue()
        message = enrollment.message_ids
        self.assertEqual(message.state, "queued")
        enrollment.sudo().write(
            {"next_send_at": fields.Datetime.now() - timedelta(hours=1)}
        )
        other = self._customer("Franco Neri", "+39 347 765 4321")
        self.env["winback.enroller"]._enroll(self.campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        self.assertEqual(enrollment.message_ids, message)
        self.assertFalse(enrollment.next_send_at)
        self.assertEqual(enrollment.state, "running")
        self.assertEqual(enrollment.step_id, self.campaign.step_ids[0])
        # The other customer is queued in the same run.
        self.assertEqual(
            self.env["winback.message"].search([("partner_id", "=", other.id)]).state,
            "queued",
        )
        # Once sent, the enrollment advances to the next step as usual.
        self.assertEqual(self._send(), 2)
        self.assertEqual(enrollment.step_id, self.campaign.step_ids[1])

    def test_one_bad_enrollment_fails_alone(self):
        good = self._customer("Franco Neri", "+39 347 765 4321")
        bad = self._customer("Laura Verdi", "+39 345 111 2222")
        self.campaign.action_start()
        self.env["winback.enroller"]._enroll(self.campaign)
        Enrollment = self.env["winback.enrollment"]
        prepare = type(Enrollment)._prepare_message_vals

        def broken(enrollment):
            if enrollment.partner_id == bad:
                raise ValueError("The send window is empty.")
            return prepare(enrollment)

        with (
            patch.object(type(Enrollment), "_prepare_message_vals", broken),
            mute_logger("odoo.addons.winback_whatsapp.models.winback_enrollment"),
        ):
            run_job(self, "winback.enrollment", "_cron_advance")
        by_partner = {e.partner_id: e for e in self.campaign.enrollment_ids}
        self.assertEqual(by_partner[self.roberta].message_ids.state, "queued")
        self.assertEqual(by_partner[good].message_ids.state, "queued")
        failed = by_partner[bad]
        self.assertEqual(failed.state, "failed")
        self.assertFalse(failed.message_ids)
        self.assertIn("The send window is empty.", failed.error_message)
        self.assertFalse(failed.next_send_at)
        self.assertEqual(self._send(), 2)


@tagged("post_install", "-at_install")
class TestEnrollOrder(WinbackSendCase):
    def test_most_recently_lapsed_first(self):
        """Daily cap 2: the customers who lapsed last enter first."""
        self.campaign.write(
            {"segment_ids": [(6, 0, (self.lukewarm | self.cooling).ids)],
             "daily_cap": 2}
        )  # fmt: skip
        lapsed_85 = self._customer("Lapsed 85", "+39 333 100 0085", days_ago=85)
        lapsed_95 = self._customer("Lapsed 95", "+39 333 100 0095", days_ago=95)
        lapsed_70 = self._customer("Lapsed 70", "+39 333 100 0070", days_ago=70)
        lapsed_62 = self._customer("Lapsed 62", "+39 333 100 0062", days_ago=62)
        self.campaign.action_start()
        self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 2)
        self.assertEqual(self.campaign.enrollment_ids.partner_id, lapsed_62 | lapsed_70)
        with freeze_time(datetime.now() + timedelta(days=1)):
            self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 2)
        self.assertEqual(
            self.campaign.enrollment_ids.partner_id,
            lapsed_62 | lapsed_70 | lapsed_85 | lapsed_95,
        )


@tagged("post_install", "-at_install")
class TestPurchaseEndsSequence(WinbackSendCase):
    def test_purchase_after_attribution_window_ends_without_conversion(self):
        enrollment = self._start_and_queue()
        self.assertEqual(self._send(), 1)
        self.env["winback.enrollment"]._queue_due_messages()
        with freeze_time(datetime.now() + timedelta(days=20)):
            order = self._order(self.roberta, days_ago=0, amount=2)
            self.assertEqual(enrollment.state, "bought")
            self.assertFalse(enrollment.step_id)
            self.assertFalse(enrollment.next_send_at)
            self.assertFalse(enrollment.order_id)
            self.assertFalse(enrollment.revenue)
            self.env["winback.enrollment"]._queue_due_messages()
            self.assertFalse(self._send())
        self.assertTrue(order)
        self.assertEqual(len(self.stub.state.sent()), 1)
        self.assertEqual(self.campaign.converted_count, 0)
        report = self.env["winback.report"].search(
            [("enrollment_id", "=", enrollment.id)]
        )
        self.assertEqual((report.state, report.converted), ("bought", 0))
        lift = self.env["winback.lift"].search([("campaign_id", "=", self.campaign.id)])
        self.assertEqual((lift.treated_count, lift.treated_converted), (1, 0))

    def test_holdout_purchase_after_window_ends_it(self):
        self.campaign.holdout_percent = 50
        partners = [
            self._customer(f"Holdout {i}", f"+39 333 300 00{i:02d}") for i in range(12)
        ]
        self.campaign.action_start()
        self.env["winback.enroller"]._enroll(self.campaign)
        holdout = self.campaign.enrollment_ids.filtered("is_holdout")[:1]
        self.assertIn(holdout.partner_id, partners)
        with freeze_time(datetime.now() + timedelta(days=30)):
            self._order(holdout.partner_id)
        self.assertEqual(holdout.state, "bought")
        self.assertFalse(holdout.order_id)


@tagged("post_install", "-at_install")
class TestSegmentFilterSafety(WinbackCase):
    """A broken extra filter (here: on a field that was removed since)
    never blocks a sale, nor the nightly cron."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = new_test_user(
            cls.env, "wb_salesman", groups="sales_team.group_sale_salesman"
        )
        cls.customer = cls._partner("Giulia Rossi")
        cls._order(cls.customer, days_ago=70)
        cls.env["winback.segment.recompute"]._recompute_partners(cls.customer)

    def _break(self, segment, domain="[('x_removed_field', '=', True)]"):
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE winback_segment SET filter_domain = %s WHERE id = %s",
            [domain, segment.id],
        )
        segment.invalidate_recordset()

    def _sell(self):
        order = (
            self.env["sale.order"]
            .with_user(self.salesman)
            .create(
                {
                    "partner_id": self.customer.id,
                    "order_line": [(0, 0, {"product_id": self.product.id})],
                }
            )
        )
        order.action_confirm()
        return order

    def test_sale_recomputes_only_its_company(self):
        other = self.env["res.company"].create({"name": "Other shop"})
        # A new company gets its own default segments.
        broken = self.Segment.search([("company_id", "=", other.id)], limit=1)
        self.assertTrue(broken)
        self._break(broken)
        self.assertEqual(self.customer.winback_segment_id, self.lukewarm)
        order = self._sell()
        self.assertEqual(order.state, "sale")
        self.assertFalse(self.customer.winback_segment_id)
        self.assertTrue(broken.active)  # another company's: not even looked at

    def test_broken_filter_disables_segment_with_alert(self):
        account = self.env["winback.account"].create(
            {"name": "Filter account", "phone_number_id": "555000111"}
        )
        manager = new_test_user(
            self.env, "wb_boss", groups="winback_whatsapp.group_winback_manager"
        )
        campaign = self.env["winback.campaign"].create(
            {
                "name": "Lukewarm news",
                "account_id": account.id,
                "segment_ids": [(6, 0, self.lukewarm.ids)],
                "user_id": manager.id,
            }
        )
        self._break(self.lukewarm)
        with mute_logger("odoo.addons.winback_whatsapp.models.winback_segment"):
            order = self._sell()
        self.assertEqual(order.state, "sale")
        self.assertFalse(self.lukewarm.active)
        self.assertIn("x_removed_field", self.lukewarm.filter_error)
        activity = campaign.activity_ids
        self.assertEqual(activity.user_id, manager)
        self.assertIn(self.lukewarm.name, activity.note)
        self.assertIn(self.lukewarm.name, campaign.message_ids[0].body)

    def test_filter_failing_in_the_database_disables_segment(self):
        """A filter PostgreSQL refuses when it runs (here a LIKE pattern
        ending with its escape character)."""
        self._break(self.lukewarm, r"[('name', '=like', '%\\')]")
        with mute_logger(
            "odoo.addons.winback_whatsapp.models.winback_segment", "odoo.sql_db"
        ):
            run_job(self, "winback.segment.recompute", "_cron_recompute")
        self.assertFalse(self.lukewarm.active)
        self.assertIn("escape character", self.lukewarm.filter_error)
        self.assertFalse(self.customer.winback_segment_id)

    def test_nightly_cron_goes_on_past_a_broken_filter(self):
        self._break(self.cooling)
        other = self._partner("Marco Bianchi")
        self._order(other, days_ago=200)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE res_partner SET winback_segment_id = NULL WHERE id = %s",
            [other.id],
        )
        other.invalidate_recordset()
        with mute_logger("odoo.addons.winback_whatsapp.models.winback_segment"):
            run_job(self, "winback.segment.recompute", "_cron_recompute")
        self.assertFalse(self.cooling.active)
        self.assertEqual(other.winback_segment_id, self.cold)


@tagged("post_install", "-at_install")
class TestCronBudget(WinbackCase):
    def test_recompute_stops_before_odoo_kills_the_cron(self):
        """Odoo kills a cron that runs longer than limit_time_real_cron
        (limit_time_real, 120 s, by default): a full recompute re-triggers
        itself well before that."""
        limit = config["limit_time_real_cron"]
        if limit is None or limit < 0:
            limit = config["limit_time_real"] or 120
        limit = min(limit, 120)
        clock = {"now": 1000.0}
        Recompute = type(self.env["winback.segment.recompute"])
        recompute_chunk = Recompute._recompute_chunk

        def slow_chunk(engine, *args, **kwargs):
            clock["now"] += 25.0  # every chunk takes 25 s
            return recompute_chunk(engine, *args, **kwargs)

        self._partner("Chunked customer")
        self.env["ir.config_parameter"].sudo().set_param(
            winback_segment_recompute.PARAM_LAST_FULL, ""
        )
        with (
            patch.object(winback_segment_recompute, "RECOMPUTE_CHUNK", 1),
            patch.object(
                winback_segment_recompute,
                "time",
                SimpleNamespace(monotonic=lambda: clock["now"]),
            ),
            patch.object(Recompute, "_recompute_chunk", slow_chunk),
        ):
            started = clock["now"]
            run_job(self, "winback.segment.recompute", "_cron_recompute")
            elapsed = clock["now"] - started
        self.assertLess(elapsed, limit)
        checkpoint = (
            self.env["ir.config_parameter"]
            .sudo()
            .get_param(winback_segment_recompute.PARAM_CHECKPOINT)
        )
        self.assertTrue(checkpoint)  # resumes from there on the next run


@tagged("post_install", "-at_install")
class TestCronChunks(WinbackSendCase):
    """The crons work in chunks, committed one by one: each call reports
    what remains, and ir.cron calls again until nothing does."""

    def test_enroll_cron_one_campaign_per_call(self):
        other = self.campaign.copy(
            {"name": "Cooling news", "segment_ids": [(6, 0, self.cooling.ids)]}
        )
        cooling = self._customer("Franco Neri", "+39 347 765 4321", days_ago=100)
        (self.campaign | other).action_start()
        self.assertFalse(self.campaign.enrollment_ids | other.enrollment_ids)
        progress = process_cron(self, "winback_whatsapp.ir_cron_winback_enroll")
        self.assertEqual(progress.mapped("remaining"), [1, 0])
        self.assertEqual(self.campaign.enrollment_ids.partner_id, self.roberta)
        self.assertEqual(other.enrollment_ids.partner_id, cooling)
        # Once a day: the next run finds nothing to do.
        progress = process_cron(self, "winback_whatsapp.ir_cron_winback_enroll")
        self.assertEqual(len(progress), 1)
        self.assertEqual(len(self.campaign.enrollment_ids), 1)

    def test_advance_cron_one_batch_per_call(self):
        for index in range(4):
            self._customer(f"Customer {index}", f"+39 333 800 00{index:02d}")
        self.campaign.action_start()
        self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 5)
        with patch.object(winback_enrollment, "QUEUE_BATCH", 2):
            progress = process_cron(self, "winback_whatsapp.ir_cron_winback_advance")
        self.assertEqual(progress.mapped("done"), [2, 2, 1])
        self.assertEqual(progress.mapped("remaining"), [3, 1, 0])
        messages = self.campaign.enrollment_ids.message_ids
        self.assertEqual(len(messages), 5)
        self.assertEqual(set(messages.mapped("state")), {"queued"})
