import json
import threading
from datetime import datetime, timedelta
from unittest.mock import patch

import psycopg2
import requests

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import BaseCase, freeze_time, new_test_user, tagged
from odoo.tools import mute_logger

from odoo.addons.winback_whatsapp.models import winback_sender
from odoo.addons.winback_whatsapp.models.winback_sender import WinbackSender
from odoo.addons.winback_whatsapp.tools.whatsapp_api import (
    FAIL,
    OPT_OUT,
    PAUSE_ACCOUNT,
    PAUSE_CAMPAIGN,
    RETRY,
    UNKNOWN,
    WAIT,
    RateLimiter,
    WhatsAppApi,
    WhatsAppError,
    error_policy,
)

from .cloud_api_stub import PHONE_NUMBER_ID, TOKEN, WABA_ID
from .common import WinbackCase, run_job, start_cloud_api_stub


class Killed(Exception):
    """The cron worker's process dies here."""


class WinbackSendCase(WinbackCase):
    """A Meta account pointed at a local Cloud API server, an approved
    two-step campaign on the Cold segment, consenting Italian customers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.stub = start_cloud_api_stub(cls)
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Shop WhatsApp",
                "provider": "meta",
                "api_base_url": cls.stub.base_url,
                "phone_number_id": PHONE_NUMBER_ID,
                "waba_id": WABA_ID,
                "access_token": TOKEN,
                "app_secret": "secret",
                "messages_per_second": 0,
            }
        )
        Template = cls.env["winback.template"]
        cls.offer = Template.create(
            {
                "name": "winback_cold_offer",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "Ciao {{1}}! Fino al {{2}} hai il 15% con il codice {{3}}.",
                "button_ids": [(0, 0, {"index": 0, "text": "Stop", "payload": "STOP"})],
                "param_ids": [
                    (0, 0, {"position": 1, "source": "first_name"}),
                    (0, 0, {"position": 2, "source": "deadline"}),
                    (0, 0, {"position": 3, "source": "coupon_code"}),
                ],
            }
        )
        cls.last_call = Template.create(
            {
                "name": "winback_last_call",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "Ciao {{1}}, ultima chiamata.",
                "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
            }
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {
                "name": "Cold win-back",
                "account_id": cls.account.id,
                "segment_ids": [(6, 0, cls.cold.ids)],
                "holdout_percent": 0,
                "daily_cap": 0,
                "coupon_code": "WELCOMEBACK",
                "window_start": 0,
                "window_end": 24,
                "window_sunday": True,
                "step_ids": [
                    (0, 0, {"name": "Offer", "template_id": cls.offer.id,
                            "lever": "offer", "delay_days": 0}),
                    (0, 0, {"name": "Last call", "template_id": cls.last_call.id,
                            "lever": "offer", "delay_days": 3}),
                ],
            }
        )  # fmt: skip
        cls.roberta = cls._customer("Roberta Bianchi", "+39 333 123 4567")

    def setUp(self):
        super().setUp()
        with self.stub.state.lock:
            self.stub.state.requests.clear()
            self.stub.state.failures.clear()

    @classmethod
    def _customer(cls, name, mobile, days_ago=200, consent=True, **vals):
        partner = cls._partner(
            name,
            mobile=mobile,
            country_id=cls.env.ref("base.it").id,
            winback_consent_date=consent and fields.Datetime.now(),
            winback_consent_source=consent and "Shop counter",
            **vals,
        )
        cls._order(partner, days_ago=days_ago)
        cls.env["winback.segment.recompute"]._recompute_partners(partner)
        run_job(cls, "winback.segment.recompute", "_cron_recompute")
        return partner

    def _start_and_queue(self, campaign=None):
        campaign = campaign or self.campaign
        campaign.action_start()
        self.env["winback.enroller"]._enroll(campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        return campaign.enrollment_ids

    def _send(self):
        """One run of the send cron, as ir.cron runs it (it commits)."""
        return run_job(self, "winback.sender", "_cron_send")

    def _expire_sending(self):
        """Make the messages left sending older than the 30-minute timeout."""
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE winback_message SET write_date = write_date - interval '31 minutes'"
            " WHERE state = 'sending'"
        )
        self.env.invalidate_all()


@tagged("post_install", "-at_install")
class TestSend(WinbackSendCase):
    def test_exact_request_sent_to_whatsapp(self):
        enrollment = self._start_and_queue()
        self.assertEqual(enrollment.partner_id, self.roberta)
        message = enrollment.message_ids
        self.assertEqual(message.state, "queued")
        self.assertEqual(self._send(), 1)
        deadline = (enrollment.create_date + timedelta(days=14)).date()
        self.assertEqual(
            self.stub.state.sent(),
            [
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "+393331234567",
                    "type": "template",
                    "template": {
                        "name": "winback_cold_offer",
                        "language": {"code": "it"},
                        "components": [
                            {
                                "type": "body",
                                "parameters": [
                                    {"type": "text", "text": "Roberta"},
                                    {
                                        "type": "text",
                                        "text": deadline.strftime("%m/%d/%Y"),
                                    },
                                    {"type": "text", "text": "WELCOMEBACK"},
                                ],
                            },
                            {
                                "type": "button",
                                "sub_type": "quick_reply",
                                "index": "0",
                                "parameters": [{"type": "payload", "payload": "STOP"}],
                            },
                        ],
                    },
                    "biz_opaque_callback_data": f"winback:{message.id}",
                }
            ],
        )
        self.assertEqual(message.state, "sent")
        self.assertTrue(message.wamid.startswith("wamid.STUB"))
        self.assertIn("WELCOMEBACK", message.body)
        # The enrollment moves on to the last call, three days later.
        self.assertEqual(enrollment.step_id.name, "Last call")
        self.assertEqual(enrollment.next_send_at, message.sent_at + timedelta(days=3))
        self.assertEqual(self.campaign.sent_count, 1)

    def test_campaign_runs_to_its_end_then_dormant(self):
        enrollment = self._start_and_queue()
        self._send()
        self.assertFalse(self._send())  # nothing due before three days
        with freeze_time(datetime.now() + timedelta(days=3, hours=1)):
            self.env["winback.enrollment"]._queue_due_messages()
            self.assertEqual(self._send(), 1)
            self.assertFalse(enrollment.step_id)
        self.assertEqual(len(self.stub.state.sent()), 2)
        with freeze_time(datetime.now() + timedelta(days=8)):
            run_job(self, "winback.enrollment", "_cron_advance")
            self.assertEqual(enrollment.state, "running")  # grace period
        with freeze_time(datetime.now() + timedelta(days=11)):
            run_job(self, "winback.enrollment", "_cron_advance")
        self.assertEqual(enrollment.state, "dormant")
        self.assertTrue(self.roberta.winback_dormant)
        # Dormant customers are never enrolled again.
        self.env["winback.enroller"]._enroll(enrollment.campaign_id)
        self.assertEqual(len(self.campaign.enrollment_ids), 1)

    def test_purchase_converts_and_stops_messages(self):
        enrollment = self._start_and_queue()
        self._send()
        self.env["winback.enrollment"]._queue_due_messages()
        order = self._order(self.roberta, days_ago=0, amount=4)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.order_id, order)
        self.assertEqual(enrollment.revenue, order.amount_untaxed)
        self.assertFalse(self.roberta.winback_segment_id)
        self.assertEqual(self.campaign.converted_count, 1)
        with freeze_time(datetime.now() + timedelta(days=4)):
            self.env["winback.enrollment"]._queue_due_messages()
            self.assertFalse(self._send())
        self.assertEqual(len(self.stub.state.sent()), 1)

    def test_consent_and_blacklist_checked_again_at_send_time(self):
        enrollment = self._start_and_queue()
        self.env["phone.blacklist"]._add(["+393331234567"])
        self.assertFalse(self._send())
        self.assertEqual(enrollment.message_ids.state, "cancelled")
        self.assertFalse(self.stub.state.sent())

    def test_simulator_provider(self):
        self.account.provider = "simulator"
        enrollment = self._start_and_queue()
        self.assertEqual(self._send(), 1)
        self.assertEqual(enrollment.message_ids.state, "read")
        self.assertTrue(enrollment.message_ids.wamid.startswith("wamid.SIM."))
        self.assertFalse(self.stub.state.requests)

    def test_missing_value_is_never_sent_empty(self):
        self.offer.param_ids.filtered(lambda p: p.position == 3).source = "salesperson"
        enrollment = self._start_and_queue()
        self._send()
        message = enrollment.message_ids
        self.assertEqual(message.state, "failed")
        self.assertIn("no value for {{3}}", message.error_message)
        self.assertFalse(self.stub.state.sent())
        # With a fallback, the message goes out with it.
        self.offer.param_ids.filtered(lambda p: p.position == 3).fallback = "our team"
        other = self._customer("Franco Neri", "+39 347 765 4321")
        self.env["winback.enroller"]._enroll(self.campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        self._send()
        sent = self.stub.state.sent()[-1]
        self.assertEqual(sent["to"], other.phone_sanitized)
        params = sent["template"]["components"][0]["parameters"]
        self.assertEqual(params[2]["text"], "our team")

    def test_send_window_in_customer_time_zone(self):
        """09:00-12:00 on weekdays, in each customer's own time zone."""
        self.campaign.write(
            {"window_start": 9, "window_end": 12, "window_saturday": False,
             "window_sunday": False}
        )  # fmt: skip
        # A Canadian +1 number: a United States one gets no marketing message.
        torontonian = self._customer("Dana Smith", "+1 416 555 0100")
        in_rome = self._customer("Laura Verdi", "+39 345 111 2222", tz="Asia/Tokyo")
        monday_7utc = datetime(2026, 11, 30, 7, 0)
        with freeze_time(monday_7utc):
            enrollments = self._start_and_queue()
            by_partner = {e.partner_id: e.message_ids for e in enrollments}
            # Rome from its number: 09:00 CET is 08:00 UTC.
            self.assertEqual(by_partner[self.roberta].scheduled_at,
                             datetime(2026, 11, 30, 8, 0))  # fmt: skip
            # Toronto from its number: 09:00 EST is 14:00 UTC.
            self.assertEqual(by_partner[torontonian].scheduled_at,
                             datetime(2026, 11, 30, 14, 0))  # fmt: skip
            # A time zone set on the partner wins: Tokyo is past 12:00 on
            # Monday, so Tuesday 09:00 JST (Tuesday 00:00 UTC).
            self.assertEqual(by_partner[in_rome].scheduled_at,
                             datetime(2026, 12, 1, 0, 0))  # fmt: skip
            self.assertFalse(self._send())
        with freeze_time(datetime(2026, 11, 30, 8, 30)):
            self.assertEqual(self._send(), 1)
            self.assertEqual(self.stub.state.sent()[0]["to"], "+393331234567")

    def test_send_window_is_kept_from_queueing_until_it_changes(self):
        """The window a message is queued in is remembered (no time zone
        lookup per send); narrowing the campaign's window, or the customer
        moving time zone, makes the queued message follow the new one."""
        self.campaign.write(
            {"window_start": 9, "window_end": 18, "window_saturday": False,
             "window_sunday": False}
        )  # fmt: skip
        # A Canadian +1 number: a United States one gets no marketing message.
        dana = self._customer("Dana Smith", "+1 416 555 0100")
        with freeze_time(datetime(2026, 11, 30, 7, 0)):  # Monday
            enrollments = self._start_and_queue()
        by_partner = {e.partner_id: e.message_ids for e in enrollments}
        rome, toronto = by_partner[self.roberta], by_partner[dana]
        # 09:00-18:00 in Rome (UTC+1) closes at 17:00 UTC; in Toronto
        # (UTC-5) at 23:00 UTC.
        self.assertEqual(rome.window_closes_at, datetime(2026, 11, 30, 17, 0))
        self.assertEqual(toronto.window_closes_at, datetime(2026, 11, 30, 23, 0))
        # The shop now stops at 12:00 local time; Dana moves to Tokyo.
        self.campaign.window_end = 12
        dana.tz = "Asia/Tokyo"
        with freeze_time(datetime(2026, 11, 30, 14, 30)):
            # 15:30 in Rome, 23:30 in Tokyo: both wait for Tuesday 09:00.
            self.assertFalse(self._send())
        self.assertEqual(rome.scheduled_at, datetime(2026, 12, 1, 8, 0))
        self.assertEqual(rome.window_closes_at, datetime(2026, 12, 1, 11, 0))
        self.assertEqual(toronto.scheduled_at, datetime(2026, 12, 1, 0, 0))
        self.assertEqual(toronto.window_closes_at, datetime(2026, 12, 1, 3, 0))
        self.assertFalse(self.stub.state.sent())
        with freeze_time(datetime(2026, 12, 1, 11, 30)):
            # 12:30 in Rome, past the close remembered for the message (and
            # 20:30 in Tokyo): nothing goes, both wait for Wednesday.
            self.assertFalse(self._send())
        with freeze_time(datetime(2026, 12, 2, 8, 30)):
            self.assertEqual(self._send(), 1)
        self.assertEqual(self.stub.state.sent()[0]["to"], "+393331234567")

    def test_eligibility_preview_and_reasons(self):
        P = self.env["res.partner"]
        self._customer("No consent", "+39 333 000 0001", consent=False)
        self._customer("No number", False)
        self._customer("Bad number", "12")
        self._customer("Blacklisted", "+39 333 000 0004")
        self.env["phone.blacklist"]._add(["+393330000004"])
        dormant = self._customer("Dormant", "+39 333 000 0005")
        dormant.winback_dormant = True
        other_company = self.env["res.company"].create({"name": "Other shop"})
        elsewhere = self._customer("Other company", "+39 333 000 0006")
        elsewhere.company_id = other_company
        recent = self._customer("Contacted lately", "+39 333 000 0007")
        self.env["winback.message"].create(
            {"partner_id": recent.id, "direction": "outbound", "state": "sent",
             "sent_at": fields.Datetime.now() - timedelta(days=3),
             "account_id": self.account.id, "phone_e164": recent.phone_sanitized}
        )  # fmt: skip
        counts = self.env["winback.enroller"]._eligibility_counts(self.campaign)
        self.assertEqual(
            counts,
            {
                "eligible": 1,
                "no_consent": 1,
                "invalid_number": 2,
                "blacklisted": 1,
                "dormant": 1,
                "other_company": 1,
                "cooldown": 1,
            },
        )
        self.campaign.action_preview()
        self.assertIn("No WhatsApp marketing consent", self.campaign.preview_html)
        self.assertIn('<td class="text-end">2</td>', self.campaign.preview_html)
        self.campaign.action_start()
        self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 1)
        self.assertEqual(self.campaign.enrollment_ids.partner_id, self.roberta)
        # Already running in one win-back: another campaign leaves them out.
        other = self.campaign.copy({"name": "Another one"})
        other.action_start()
        self.assertEqual(
            self.env["winback.enroller"]
            ._eligibility_counts(other)
            .get("already_enrolled"),
            1,
        )
        self.assertEqual(self.env["winback.enroller"]._enroll(other), 0)
        self.assertEqual(P.search_count([("winback_dormant", "=", True)]), 1)

    def test_daily_cap_staggers_enrollment(self):
        for index in range(4):
            self._customer(f"Customer {index}", f"+39 333 100 00{index:02d}")
        self.campaign.daily_cap = 2
        self.campaign.action_start()
        self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 2)
        self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 0)
        with freeze_time(datetime.now() + timedelta(days=1)):
            self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 2)
            self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 0)
        self.assertEqual(len(self.campaign.enrollment_ids), 4)

    def test_reentry_after_lapsing_again(self):
        enrollment = self._start_and_queue()
        self._order(self.roberta)  # buys: converted
        self.assertEqual(enrollment.state, "converted")
        self.campaign.cooldown_days = 0
        # Lapses again later: back in Cold, but re-entry waits 90 days.
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE sale_order SET date_order = date_order - interval '200 days' "
            "WHERE partner_id = %s",
            [self.roberta.id],
        )
        self.env["winback.segment.recompute"]._recompute_partners(self.roberta)
        self.assertEqual(self.roberta.winback_segment_id, self.cold)
        self.assertEqual(
            self.env["winback.enroller"]._eligibility_counts(self.campaign),
            {"reentry": 1},
        )
        self.env.cr.execute(
            "UPDATE winback_enrollment "
            "SET create_date = create_date - interval '91 days'"
        )
        self.assertEqual(self.env["winback.enroller"]._enroll(self.campaign), 1)

    def test_holdout_is_a_seeded_random_share(self):
        self.campaign.write({"holdout_percent": 25, "holdout_seed": 7})
        partners = self.env["res.partner"].create(
            [
                {"name": f"Customer {i}", "mobile": f"+39 333 2{i:06d}",
                 "country_id": self.env.ref("base.it").id,
                 "winback_consent_date": fields.Datetime.now(),
                 "winback_consent_source": "Web form"}
                for i in range(400)
            ]
        )  # fmt: skip
        orders = self.env["sale.order"].create(
            [{"partner_id": p.id,
              "order_line": [(0, 0, {"product_id": self.product.id})]}
             for p in partners]
        )  # fmt: skip
        orders.action_confirm()
        orders.date_order = self._days_ago(250)
        run_job(self, "winback.segment.recompute", "_cron_recompute")
        self.campaign.action_start()
        self.env["winback.enroller"]._enroll(self.campaign)
        holdout = self.campaign.enrollment_ids.filtered("is_holdout")
        self.assertEqual(len(self.campaign.enrollment_ids), 401)
        self.assertTrue(70 <= len(holdout) <= 130, len(holdout))
        self.assertEqual(set(holdout.mapped("state")), {"holdout"})
        self.assertEqual(self.campaign.holdout_count, len(holdout))
        # The draw is reproducible.
        drawn = holdout.partner_id
        self.campaign.enrollment_ids.unlink()
        self.env["winback.enroller"]._enroll(self.campaign)
        self.assertEqual(
            self.campaign.enrollment_ids.filtered("is_holdout").partner_id, drawn
        )
        # Holdout customers receive nothing.
        self.env["winback.enrollment"]._queue_due_messages()
        self.assertFalse(holdout.message_ids)

    def test_end_campaign_cleanly(self):
        enrollment = self._start_and_queue()
        self.campaign.action_done()
        self.assertEqual(enrollment.state, "cancelled")
        self.assertEqual(enrollment.message_ids.state, "cancelled")
        self.assertFalse(self._send())

    def test_step_preview_for_a_sample_customer(self):
        offer = self.campaign.step_ids[0]
        # Without a test recipient: a customer of the campaign's segments.
        self.assertIn("Ciao Roberta!", offer.preview)
        self.assertIn("WELCOMEBACK", offer.preview)
        self.campaign.test_partner_id = self._partner("Laura Test")
        self.assertIn("Ciao Laura!", offer.preview)

    def test_send_test_to_one_partner(self):
        tester = self._partner(
            "Marco Rossi",
            mobile="+39 320 555 1234",
            country_id=self.env.ref("base.it").id,
            # Marketing templates: the test recipient consents like anyone.
            winback_consent_date=fields.Datetime.now(),
            winback_consent_source="Colleague",
        )
        self.campaign.test_partner_id = tester
        action = self.campaign.action_send_test()
        self.assertIn("2 test messages", action["params"]["message"])
        self._send()  # queued, sent after commit
        sent = self.stub.state.sent()
        self.assertEqual([b["to"] for b in sent], ["+393205551234"] * 2)
        self.assertEqual(
            [b["template"]["name"] for b in sent],
            ["winback_cold_offer", "winback_last_call"],
        )
        self.assertEqual(
            sent[0]["template"]["components"][0]["parameters"][2]["text"], "WELCOMEBACK"
        )
        self.assertFalse(self.campaign.enrollment_ids)  # a test enrolls nobody

    def test_partner_smart_button(self):
        self._start_and_queue()
        self.assertEqual(self.roberta.winback_enrollment_count, 1)
        action = self.roberta.action_view_winback_enrollments()
        self.assertEqual(
            self.env["winback.enrollment"].search(action["domain"]).partner_id,
            self.roberta,
        )

    def test_start_requires_two_or_three_steps(self):
        self.campaign.step_ids[1].unlink()
        with self.assertRaisesRegex(UserError, "two or three messages"):
            self.campaign.action_start()


@tagged("post_install", "-at_install")
class TestSendErrors(WinbackSendCase):
    def _queue_only(self, customer):
        """Enroll ``customer`` alone: earlier customers leave the campaign,
        so the next send is theirs."""
        self.env["winback.enroller"]._enroll(self.campaign)
        self.campaign.enrollment_ids.filtered(
            lambda e: e.partner_id != customer
        )._cancel()
        self.env["winback.enrollment"]._queue_due_messages()
        return self.env["winback.message"].search([("partner_id", "=", customer.id)])

    def _fail_once(self, code, status=400):
        self.stub.state.fail_next(code, status=status)
        enrollment = self._start_and_queue()
        self._send()
        return enrollment, enrollment.message_ids

    def test_throughput_errors_retry_with_bounded_backoff(self):
        self.campaign.write({"reentry_days": 0, "cooldown_days": 0})
        self.campaign.action_start()
        cases = [("130429", 400), ("131056", 400), ("131000", 500)]
        for index, (code, status) in enumerate(cases):
            with self.subTest(code=code):
                customer = self._customer(code, f"+39 333 400 00{index:02d}")
                message = self._queue_only(customer)
                self.stub.state.fail_next(code, status=status)
                self._send()
                self.assertEqual(message.state, "queued")
                self.assertEqual(message.error_code, code)
                self.assertEqual(message.attempt_count, 1)
                self.assertGreater(message.scheduled_at, fields.Datetime.now())

    def test_retry_gives_up_after_max_attempts(self):
        enrollment, message = self._fail_once("130429")
        for _attempt in range(4):
            self.stub.state.fail_next("130429")
            message.scheduled_at = fields.Datetime.now() - timedelta(seconds=1)
            self._send()
        self.assertEqual(message.attempt_count, 5)
        self.assertEqual(message.state, "failed")
        self.assertEqual(enrollment.state, "failed")

    def test_timeout_is_never_resent(self):
        """A read timeout may hide a message Meta accepted: it waits for the
        status webhook (see test_send_safety), it is not retried."""
        self.stub.state.fail_next("1", status=500, message="slow")
        self.stub.state.failures[-1]["delay"] = 1.0
        with patch.object(WhatsAppApi, "TIMEOUT", (1, 0.3)):
            _enrollment, message = None, self._start_and_queue().message_ids
            self._send()
        self.assertEqual(message.state, "sending")
        self.assertEqual(message.error_code, "timeout")

    def test_marketing_limit_waits_a_day(self):
        _enrollment, message = self._fail_once("131049")
        self.assertEqual(message.state, "queued")
        self.assertGreaterEqual(
            message.scheduled_at, fields.Datetime.now() + timedelta(hours=24)
        )

    def test_undeliverable_and_template_required_fail(self):
        for code in ("131026", "131047"):
            with self.subTest(code=code):
                enrollment, message = self._fail_once(code)
                self.assertEqual(message.state, "failed")
                self.assertEqual(message.error_code, code)
                self.assertEqual(enrollment.state, "failed")
                enrollment.unlink()
                self.campaign.state = "draft"

    def test_user_stopped_marketing_opts_out(self):
        enrollment, message = self._fail_once("131050")
        self.assertEqual(message.state, "failed")
        self.assertEqual(enrollment.state, "opted_out")
        self.assertTrue(
            self.env["phone.blacklist"].search([("number", "=", "+393331234567")])
        )
        self.assertTrue(self.roberta.phone_sanitized_blacklisted)

    def test_template_error_pauses_campaign(self):
        _enrollment, message = self._fail_once("132001")
        self.assertEqual(self.campaign.state, "paused")
        self.assertEqual(message.state, "queued")
        activity = self.campaign.activity_ids
        self.assertEqual(activity.user_id, self.campaign.user_id)
        self.assertIn("132001", activity.note)
        self.assertFalse(self._send())  # paused campaigns send nothing

    def test_account_errors_pause_the_account(self):
        self.campaign.write({"reentry_days": 0, "cooldown_days": 0})
        self.campaign.action_start()
        for index, code in enumerate(("190", "131042", "368", "131031")):
            with self.subTest(code=code):
                customer = self._customer(
                    f"Account {code}", f"+39 333 500 00{index:02d}"
                )
                message = self._queue_only(customer)
                self.stub.state.fail_next(code)
                self._send()
                self.assertEqual(self.account.state, "paused")
                self.assertIn(code, self.account.pause_reason)
                self.assertEqual(message.state, "queued")
                self.assertFalse(self._send())  # a paused account sends nothing
                self.assertIn(code, self.campaign.activity_ids[-1:].note or "")
                self.account.action_resume()

    def test_bad_token_pauses_account(self):
        self.account.access_token = "wrong"
        _enrollment = self._start_and_queue()
        self._send()
        self.assertEqual(self.account.state, "paused")


@tagged("post_install", "-at_install")
class TestCrashSafety(WinbackSendCase):
    def _queue_customers(self, count):
        for index in range(count):
            self._customer(f"Customer {index}", f"+39 333 900 00{index:02d}")
        enrollments = self._start_and_queue()
        messages = enrollments.message_ids
        self.assertEqual(len(messages), count + 1)
        self.assertEqual(set(messages.mapped("state")), {"queued"})
        return enrollments, messages

    def _killed_while_on_the_wire(self):
        """One run of the send cron killed (its transaction lost, as after
        a SIGKILL) as soon as a call ends, its other calls still on the
        wire: two at most (the pool's size)."""
        original = WinbackSender._record_outcomes

        def record_outcomes(self, outcomes):
            if outcomes:
                raise Killed()
            return original(self, outcomes)

        # Not self.assertRaises: it would roll back what the run committed.
        killed = False
        with (
            patch.object(winback_sender, "SEND_POOL", 2),
            patch.object(WinbackSender, "_record_outcomes", record_outcomes),
        ):
            try:
                self._send()
            except Killed:
                killed = True
        self.assertTrue(killed)
        self.env.invalidate_all()

    def test_claimed_message_is_never_resent(self):
        """A crash after the claim was committed (during or after the HTTP
        call): the message stays 'sending' and is not sent again; past the
        timeout it ends failed with "outcome unknown"."""
        enrollment = self._start_and_queue()
        claimed = enrollment.message_ids
        self._killed_while_on_the_wire()
        self.assertEqual(claimed.state, "sending")
        self.assertEqual(claimed.attempt_count, 1)
        self.assertEqual(len(self.stub.state.sent()), 1)
        self.assertFalse(self._send())
        self.assertEqual(len(self.stub.state.sent()), 1)
        self._expire_sending()
        self._send()
        self.assertEqual(claimed.state, "failed")
        self.assertEqual(claimed.error_code, "outcome_unknown")
        self.assertEqual(enrollment.state, "failed")
        self.assertEqual(len(self.stub.state.sent()), 1)

    def test_a_crash_leaves_unknown_only_the_calls_on_the_wire(self):
        """Killed with two calls on the wire: those two messages stay
        'sending' (never resent, flagged past the timeout); the rest of the
        claim is still queued, untouched, and goes out at the next run."""
        _enrollments, messages = self._queue_customers(5)
        self._killed_while_on_the_wire()
        on_the_wire = messages.filtered(lambda m: m.state == "sending")
        self.assertEqual(len(on_the_wire), 2)
        self.assertEqual(
            sorted(b["to"] for b in self.stub.state.sent()),
            sorted(on_the_wire.mapped("phone_e164")),
        )
        rest = messages - on_the_wire
        self.assertEqual(set(rest.mapped("state")), {"queued"})
        self.assertEqual(set(rest.mapped("attempt_count")), {0})
        self.assertEqual(self._send(), 4)
        self.assertEqual(set(rest.mapped("state")), {"sent"})
        self.assertEqual(set(on_the_wire.mapped("state")), {"sending"})
        # Every customer got exactly one message, whatever happened.
        numbers = [b["to"] for b in self.stub.state.sent()]
        self.assertEqual(sorted(numbers), sorted(messages.mapped("phone_e164")))
        self._expire_sending()
        self._send()
        self.assertEqual(set(on_the_wire.mapped("error_code")), {"outcome_unknown"})
        self.assertEqual(len(self.stub.state.sent()), 6)

    def test_calls_go_out_concurrently(self):
        """The four calls are on the wire together: the server answers none
        of them before it holds all four."""
        _enrollments, messages = self._queue_customers(3)
        self.stub.state.gate(4)
        self.assertEqual(self._send(), 4)
        self.assertFalse(self.stub.state.gate_broken)
        self.assertEqual(set(messages.mapped("state")), {"sent"})

    def test_calls_never_exceed_the_account_rate(self):
        """Concurrent calls share one rate limiter per account: at most
        messages_per_second calls start in any second."""
        self.account.messages_per_second = 40
        _enrollments, messages = self._queue_customers(5)
        slots = []
        original = RateLimiter.wait

        def wait(limiter):
            slot = original(limiter)
            slots.append((id(limiter), limiter.interval, slot))
            return slot

        with patch.object(RateLimiter, "wait", wait):
            self.assertEqual(self._send(), 6)
        self.assertEqual(len({limiter for limiter, _i, _s in slots}), 1)
        self.assertEqual({interval for _l, interval, _s in slots}, {1 / 40})
        starts = sorted(slot for _l, _i, slot in slots)
        gaps = [
            later - earlier for earlier, later in zip(starts, starts[1:], strict=False)
        ]
        self.assertGreaterEqual(min(gaps), 1 / 40 - 1e-9)

    def test_database_refuses_a_second_message_per_step(self):
        enrollment = self._start_and_queue()
        message = enrollment.message_ids
        with (
            self.assertRaises(psycopg2.errors.UniqueViolation),
            self.env.cr.savepoint(),
            mute_logger("odoo.sql_db"),
        ):
            message.copy()
            self.env.flush_all()


@tagged("post_install", "-at_install")
class TestAccount(WinbackSendCase):
    def test_test_connection(self):
        action = self.account.action_test_connection()
        self.assertIn("+39 02 1234 5678", action["params"]["message"])
        self.account.access_token = "wrong"
        with self.assertRaisesRegex(UserError, "Invalid OAuth access token"):
            self.account.action_test_connection()

    def test_sync_templates_from_meta(self):
        self.stub.state.templates = [
            {
                "id": str(900 + i),
                "name": f"promo_{i}",
                "language": "it",
                "status": "APPROVED" if i % 2 else "PENDING",
                "category": "MARKETING",
                "components": [
                    {"type": "BODY", "text": "Ciao {{1}}, novità per te!"},
                    {"type": "BUTTONS",
                     "buttons": [{"type": "QUICK_REPLY", "text": "Stop"}]},
                ],
            }
            for i in range(150)
        ]  # fmt: skip
        self.account.action_sync_templates()
        templates = self.env["winback.template"].search([("name", "like", "promo_")])
        self.assertEqual(len(templates), 150)
        promo = templates.filtered(lambda t: t.name == "promo_1")
        self.assertEqual(promo.status, "approved")
        self.assertEqual(promo.param_ids.position, 1)
        self.assertEqual(promo.button_ids.mapped("text"), ["Stop"])
        self.assertEqual(promo.button_ids.index, 0)
        self.assertTrue(promo.button_ids.is_stop)
        self.assertTrue(promo.button_ids.payload.startswith("WINBACK_"))
        # A second sync updates the status instead of duplicating.
        self.stub.state.templates[1]["status"] = "PAUSED"
        self.account.action_sync_templates()
        self.assertEqual(promo.status, "paused")
        self.assertEqual(
            self.env["winback.template"].search_count([("name", "like", "promo_")]), 150
        )

    def test_secrets_readable_by_administrators_only(self):
        manager = new_test_user(
            self.env, "wb_manager", groups="winback_whatsapp.group_winback_manager"
        )
        account = self.account.with_user(manager)
        self.assertEqual(account.name, "Shop WhatsApp")
        for secret in ("access_token", "app_secret", "verify_token"):
            with self.assertRaises(AccessError):
                account.read([secret])
        self.assertEqual(self.account.access_token, TOKEN)


@tagged("post_install", "-at_install")
class TestErrorPolicy(BaseCase):
    """The provider's error table, on Meta's error bodies."""

    def _error(self, status, body):
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        with self.assertRaises(WhatsAppError) as caught:
            WhatsAppApi._parse(response)
        return caught.exception

    def _meta(self, code, message, details=""):
        return {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": details},
                "fbtrace_id": "AbCdEfGhIjKlMnOp",
            }
        }

    def test_each_code_has_its_policy(self):
        cases = [
            (400, 130429, "Rate limit hit", RETRY),
            (503, 131016, "Service unavailable", RETRY),
            (500, 131000, "Something went wrong", RETRY),
            (400, 131056, "(Business Account, Consumer Account) pair rate limit "
                          "hit", RETRY),
            (400, 131049, "This message was not delivered to maintain healthy "
                          "ecosystem engagement.", WAIT),
            (400, 131050, "Unable to deliver the message. This recipient has "
                          "chosen to stop receiving marketing messages.", OPT_OUT),
            (401, 190, "Error validating access token: Session has expired",
             PAUSE_ACCOUNT),
            (400, 131042, "Business eligibility payment issue", PAUSE_ACCOUNT),
            (400, 368, "Temporarily blocked for policies violations", PAUSE_ACCOUNT),
            (400, 131031, "Account has been locked", PAUSE_ACCOUNT),
            (400, 132001, "Template name does not exist in the translation",
             PAUSE_CAMPAIGN),
            (400, 132018, "There was an issue with the parameters in your "
                          "template.", PAUSE_CAMPAIGN),
            (400, 131026, "Message undeliverable", FAIL),
            (400, 131047, "Re-engagement message", FAIL),
            (500, 1, "An unknown error occurred", UNKNOWN),
        ]  # fmt: skip
        for status, code, message, policy in cases:
            with self.subTest(code=code):
                error = self._error(status, self._meta(code, message))
                self.assertEqual(error.code, str(code))
                self.assertEqual(error.policy, policy)
        self.assertEqual(error_policy("connection"), RETRY)
        self.assertEqual(error_policy("invalid_token"), PAUSE_ACCOUNT)
        self.assertEqual(error_policy("http_307"), FAIL)
        self.assertEqual(
            WhatsAppError("timeout", "slow", outcome_unknown=True).policy, UNKNOWN
        )

    def test_rate_limiter_spaces_concurrent_calls(self):
        """Twenty threads asking at the same instant get twenty slots, one
        every 1/rate second: never more than rate in any second."""
        now = 1000.0
        sleeps = []
        limiter = RateLimiter(5, clock=lambda: now, sleep=sleeps.append)
        slots = []
        threads = [
            threading.Thread(target=lambda: slots.append(limiter.wait()))
            for _index in range(20)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(
            [round(slot - now, 6) for slot in sorted(slots)],
            [round(k / 5, 6) for k in range(20)],
        )
        self.assertEqual(
            [round(sleep, 6) for sleep in sorted(sleeps)],
            [round(k / 5, 6) for k in range(1, 20)],
        )
        unlimited = RateLimiter(0, clock=lambda: now, sleep=sleeps.append)
        self.assertEqual([unlimited.wait() for _index in range(3)], [now] * 3)
        self.assertEqual(len(sleeps), 19)
