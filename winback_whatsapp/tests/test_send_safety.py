"""Send safety: nobody is messaged twice, or against their will, or in the
wrong company's name; one bad record never stops the others."""

import contextlib
import json
import os
import socketserver
import threading
import time
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo.exceptions import AccessError, UserError
from odoo.tests import freeze_time, new_test_user, tagged
from odoo.tools import config

from odoo.addons.winback_whatsapp.models import winback_sender
from odoo.addons.winback_whatsapp.tools import webhook_simulator
from odoo.addons.winback_whatsapp.tools.send_window import customer_timezone
from odoo.addons.winback_whatsapp.tools.webhook_parser import parse_status
from odoo.addons.winback_whatsapp.tools.whatsapp_api import WhatsAppApi

from .cloud_api_stub import PHONE_NUMBER_ID, TOKEN, WABA_ID
from .common import run_job
from .test_send import WinbackSendCase

FAST = (1, 0.5)  # connect and read timeouts of the tests that hang


class SendSafetyCase(WinbackSendCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = new_test_user(
            cls.env, "wb_safety_sales", groups="winback_whatsapp.group_winback_user"
        )
        cls.welcome = cls.env["winback.template"].create(
            {
                "name": "order_update",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "category": "utility",
                "body": "Ciao {{1}}, il tuo ordine è pronto.",
                "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
            }
        )

    def setUp(self):
        super().setUp()
        with self.stub.state.lock:
            self.stub.state.accepted.clear()
            self.stub.state.leaks.clear()

    def _queued_message(self):
        enrollment = self._start_and_queue()
        self.assertEqual(enrollment.message_ids.state, "queued")
        return enrollment, enrollment.message_ids

    def _status(self, message, status, wamid):
        return self.env["winback.status"]._apply_status(
            message.account_id,
            parse_status(
                webhook_simulator.status(
                    wamid,
                    status,
                    time.time(),
                    message.phone_e164.lstrip("+"),
                    biz_opaque_callback_data=f"winback:{message.id}",
                )
            ),
        )

    def _composer(self, partner, **vals):
        return (
            self.env["winback.composer"]
            .with_user(self.salesman)
            .create({"partner_id": partner.id, "account_id": self.account.id, **vals})
        )

    def _accepted_to(self, number):
        return [
            body for body, _wamid in self.stub.state.accepted if body["to"] == number
        ]


@tagged("post_install", "-at_install")
class TestOutcomeUnknown(SendSafetyCase):
    """Item 6: only what certainly did not leave is sent again."""

    def _assert_never_resent(self, message, enrollment):
        self.assertEqual(message.state, "sending")
        self.assertIn("Outcome unknown", message.error_message)
        self.assertEqual(len(self.stub.state.accepted), 1)
        # Later runs never send it again, whatever the time.
        with freeze_time(datetime.now() + timedelta(minutes=20)):
            self._send()
        self.assertEqual(len(self.stub.state.accepted), 1)
        self.assertEqual(enrollment.step_id.name, "Offer")

    def test_read_timeout_waits_for_the_status_webhook(self):
        enrollment, message = self._queued_message()
        self.stub.state.fail_next(mode="hang", delay=1.5)
        with patch.object(WhatsAppApi, "TIMEOUT", FAST):
            self.assertFalse(self._send())
        self.assertEqual(message.error_code, "timeout")
        self._assert_never_resent(message, enrollment)
        # Meta's status webhook settles it, by the callback data.
        wamid = self.stub.state.accepted[0][1]
        self.assertTrue(self._status(message, "delivered", wamid))
        self.assertEqual(message.state, "delivered")
        self.assertEqual(message.wamid, wamid)
        self.assertFalse(message.error_message)
        self.assertEqual(enrollment.step_id.name, "Last call")

    def test_dropped_connection_is_flagged_after_the_timeout(self):
        enrollment, message = self._queued_message()
        self.stub.state.fail_next(mode="drop")
        self._send()
        self.assertEqual(message.error_code, "connection_lost")
        self._assert_never_resent(message, enrollment)
        self._expire_sending()
        self._send()
        self.assertEqual(message.state, "failed")
        self.assertEqual(message.error_code, "outcome_unknown")
        self.assertEqual(enrollment.state, "failed")
        self.assertEqual(len(self.stub.state.accepted), 1)

    def test_server_error_without_meta_body_is_outcome_unknown(self):
        enrollment, message = self._queued_message()
        self.stub.state.fail_next(mode="bare", status=502)
        self._send()
        self.assertEqual(message.error_code, "http_502")
        self._assert_never_resent(message, enrollment)

    def test_server_error_meta_did_not_document_as_not_sent(self):
        _enrollment, message = self._queued_message()
        self.stub.state.fail_next("1", status=500, message="An unknown error occurred")
        self._send()
        self.assertEqual(message.state, "sending")
        self.assertEqual(message.error_code, "1")
        self.assertIn("Outcome unknown", message.error_message)

    def test_documented_not_sent_errors_are_retried(self):
        self.campaign.write({"reentry_days": 0, "cooldown_days": 0})
        self.campaign.action_start()
        for index, (code, status) in enumerate(
            [("131016", 503), ("131000", 500), ("130429", 400)]
        ):
            with self.subTest(code=code):
                customer = self._customer(code, f"+39 333 600 00{index:02d}")
                self.env["winback.enroller"]._enroll(self.campaign)
                self.campaign.enrollment_ids.filtered(
                    lambda e, c=customer: e.partner_id != c
                )._cancel()
                self.env["winback.enrollment"]._queue_due_messages()
                message = customer.winback_enrollment_ids.message_ids
                self.stub.state.fail_next(code, status=status)
                self._send()
                self.assertEqual(message.state, "queued")
                self.assertEqual(message.error_code, code)
                with freeze_time(datetime.now() + timedelta(minutes=5)):
                    self._send()
                self.assertEqual(message.state, "sent")
                self.assertEqual(len(self._accepted_to(customer.phone_sanitized)), 1)

    def test_connection_refused_is_retried(self):
        _enrollment, message = self._queued_message()
        with self.stub.refuse_connections():
            self._send()
        self.assertEqual(message.state, "queued")
        self.assertEqual(message.error_code, "connection")
        self.assertFalse(self.stub.state.accepted)
        with freeze_time(datetime.now() + timedelta(minutes=5)):
            self._send()
        self.assertEqual(message.state, "sent")
        self.assertEqual(len(self.stub.state.accepted), 1)

    def test_redirect_is_never_followed(self):
        _enrollment, message = self._queued_message()
        self.stub.state.fail_next(mode="redirect", status=307)
        self._send()
        self.assertEqual(message.state, "failed")
        self.assertEqual(message.error_code, "http_307")
        self.assertEqual(self.stub.state.leaks, [])
        self.assertFalse(self.stub.state.accepted)

    def test_the_environments_proxy_is_used(self):
        """A shop behind a proxy (``HTTP_PROXY``/``HTTPS_PROXY``) sends
        through it, as ``requests`` would."""
        _enrollment, message = self._queued_message()
        seen = []

        class Proxy(socketserver.StreamRequestHandler):
            def handle(self):
                head = []
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    head.append(line.decode().strip())
                length = next(
                    int(h.split(":")[1]) for h in head if h.startswith("Content-Length")
                )
                seen.append((head[0], json.loads(self.rfile.read(length))))
                answer = json.dumps({"messages": [{"id": "wamid.PROXIED"}]}).encode()
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
                )

        with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Proxy) as proxy:
            threading.Thread(target=proxy.serve_forever, daemon=True).start()
            address = "http://127.0.0.1:%d" % proxy.server_address[1]
            environ = {"HTTP_PROXY": address, "NO_PROXY": "", "no_proxy": ""}
            try:
                with patch.dict(os.environ, environ):
                    self._send()
            finally:
                proxy.shutdown()
        self.assertEqual(message.state, "sent")
        self.assertEqual(message.wamid, "wamid.PROXIED")
        # The proxy was asked for the API's own URL, the message in the body.
        request_line, body = seen[0]
        self.assertEqual(
            request_line,
            f"POST {self.stub.base_url}/{self.account.api_version}/"
            f"{PHONE_NUMBER_ID}/messages HTTP/1.1",
        )
        self.assertEqual(body["to"], message.phone_e164)
        self.assertFalse(self.stub.state.accepted)


@tagged("post_install", "-at_install")
class TestOneBadRecord(SendSafetyCase):
    """Item 7: each message fails alone, with its reason."""

    def test_token_with_a_zero_width_space_pauses_only_its_account(self):
        other_account = self.account.copy(
            {"name": "Second number", "access_token": TOKEN + "\u200b"}
        )
        other_template = self.welcome.copy(
            {
                "account_id": other_account.id,
                "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
            }
        )
        franco = self._customer("Franco Neri", "+39 347 765 4321", consent=False)
        _enrollment, message = self._queued_message()
        other = self.env["winback.message"].create(
            {"direction": "outbound", "partner_id": franco.id,
             "account_id": other_account.id, "company_id": self.company.id,
             "template_id": other_template.id, "phone_e164": franco.phone_sanitized,
             "state": "queued"}
        )  # fmt: skip
        self.assertEqual(self._send(), 1)
        self.assertEqual(message.state, "sent")
        self.assertEqual(other.state, "queued")
        self.assertEqual(other.error_code, "invalid_token")
        self.assertEqual(other_account.state, "paused")
        self.assertIn("access token", other_account.pause_reason)
        self.assertEqual(self._accepted_to(franco.phone_sanitized), [])

    def test_multiline_parameters_are_cleaned(self):
        self.campaign.coupon_code = "  WELCOME\n\tBACK  "
        self.roberta.name = "Roberta\tBianchi"
        _enrollment, message = self._queued_message()
        self.assertEqual(self._send(), 1)
        params = self.stub.state.sent()[0]["template"]["components"][0]["parameters"]
        self.assertEqual(params[0]["text"], "Roberta Bianchi")
        self.assertEqual(params[2]["text"], "WELCOME BACK")
        self.assertEqual(self.campaign.state, "running")
        self.assertEqual(message.state, "sent")

    def test_batch_stops_at_the_time_budget(self):
        self.campaign.action_start()
        for index in range(2):
            self._customer(f"Customer {index}", f"+39 333 700 00{index:02d}")
        self.env["winback.enroller"]._enroll(self.campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        messages = self.campaign.enrollment_ids.message_ids
        self.assertEqual(len(messages), 3)
        # One call at a time; the first takes longer than the whole budget.
        self.stub.state.fail_next(mode="hang", delay=0.6)
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_send")
        cron, progress = cron.sudo()._add_progress()
        env = self.env
        self.env = env(context=dict(env.context, **cron.env.context))
        try:
            with (
                patch.object(winback_sender, "SEND_TIME_BUDGET", 0.3),
                patch.object(winback_sender, "SEND_POOL", 1),
                patch.object(WhatsAppApi, "TIMEOUT", (1, 3)),
            ):
                self.assertEqual(self._send(), 1)
        finally:
            self.env = env
        self.assertEqual(len(self.stub.state.accepted), 1)
        self.assertEqual(sorted(messages.mapped("state")), ["queued", "queued", "sent"])
        self.assertEqual(sorted(messages.mapped("attempt_count")), [0, 0, 1])
        # ir.cron runs the job again at once: work remains.
        self.assertEqual((progress.done, progress.remaining), (1, 2))

    def test_a_run_ends_before_odoo_kills_it(self):
        """limit_time_real_cron -1 means limit_time_real (120 s by default): a
        run starts no call after its budget, and its last call ends within
        the connect and read timeouts."""
        limit = config["limit_time_real_cron"]
        if limit in (None, -1):
            limit = config["limit_time_real"]
        self.assertLess(
            winback_sender.SEND_TIME_BUDGET + sum(WhatsAppApi.TIMEOUT), limit
        )


@tagged("post_install", "-at_install")
class TestConsentEverywhere(SendSafetyCase):
    """Item 4: every marketing template is checked, whatever queued it."""

    def _direct(self, partner, template, **vals):
        return self.env["winback.message"].create(
            {"direction": "outbound", "partner_id": partner.id,
             "account_id": self.account.id, "company_id": self.company.id,
             "template_id": template.id, "phone_e164": partner.phone_sanitized,
             "state": "queued", **vals}
        )  # fmt: skip

    def test_marketing_without_enrollment_is_checked_at_send_time(self):
        no_consent = self._customer("Gino Senza", "+39 333 800 0001", consent=False)
        stopped = self._customer("Ada Stop", "+39 333 800 0002")
        self.env["phone.blacklist"]._add([stopped.phone_sanitized])
        dormant = self._customer("Dino Dormiente", "+39 333 800 0003")
        dormant.winback_dormant = True
        messages = [
            self._direct(partner, self.last_call)
            for partner in (no_consent, stopped, dormant)
        ]
        service = self._direct(no_consent, self.welcome)
        self.assertEqual(self._send(), 1)
        self.assertEqual([m.state for m in messages], ["cancelled"] * 3)
        self.assertIn("consent", messages[0].error_message)
        self.assertIn("blacklist", messages[1].error_message)
        self.assertIn("dormant", messages[2].error_message)
        # Utility templates are no marketing: they go out.
        self.assertEqual(service.state, "sent")
        self.assertEqual(
            [b["template"]["name"] for b in self.stub.state.sent()], ["order_update"]
        )

    def test_message_of_another_company_than_its_account_is_never_sent(self):
        other = self.env["res.company"].create({"name": "Other shop"})
        message = self._direct(self.roberta, self.last_call, company_id=other.id)
        self.assertFalse(self._send())
        self.assertEqual(message.state, "cancelled")
        self.assertIn("company", message.error_message)
        self.assertFalse(self.stub.state.requests)

    def test_customer_of_another_company_is_never_sent(self):
        other = self.env["res.company"].create({"name": "Other shop"})
        self.env.user.company_ids |= other
        self.roberta.company_id = other
        message = self._direct(self.roberta, self.last_call)
        self.assertFalse(self._send())
        self.assertEqual(message.state, "cancelled")
        self.assertFalse(self.stub.state.requests)

    def test_composer_refuses_marketing_to_blacklisted_or_unconsented(self):
        no_consent = self._customer("Gino Senza", "+39 333 800 0001", consent=False)
        with self.assertRaisesRegex(UserError, "marketing consent"):
            self._composer(no_consent, template_id=self.last_call.id).action_send()
        self.env["phone.blacklist"]._add(["+393331234567"])
        with self.assertRaisesRegex(UserError, "opted out"):
            self._composer(self.roberta, template_id=self.last_call.id).action_send()
        # Another number typed by hand is checked the same way.
        self.roberta.mobile = "+39 347 000 1111"
        with self.assertRaisesRegex(UserError, "opted out"):
            self._composer(
                self.roberta, template_id=self.last_call.id, phone_e164="333 1234567"
            ).action_send()
        self._send()
        self.assertFalse(self.stub.state.requests)
        # A utility template is no marketing.
        self._composer(no_consent, template_id=self.welcome.id).action_send()
        self._send()
        self.assertEqual(self.stub.state.sent()[0]["to"], "+393338000001")

    def test_composer_normalises_the_number_typed(self):
        composer = self._composer(
            self.roberta, template_id=self.last_call.id, phone_e164="347 765 4321"
        )
        composer.action_send()
        self._send()
        self.assertEqual([b["to"] for b in self.stub.state.sent()], ["+393477654321"])
        with self.assertRaisesRegex(UserError, "not a valid"):
            self._composer(
                self.roberta, template_id=self.last_call.id, phone_e164="12"
            ).action_send()

    def test_composer_needs_the_win_back_user_group(self):
        seller = new_test_user(
            self.env, "wb_plain_seller", groups="sales_team.group_sale_salesman"
        )
        composer = self._composer(self.roberta, template_id=self.last_call.id)
        with self.assertRaises(AccessError):
            composer.with_user(seller).action_send()
        self._send()
        self.assertFalse(self.stub.state.requests)

    def test_send_test_refuses_an_unconsented_recipient(self):
        tester = self._partner(
            "Marco Rossi",
            mobile="+39 320 555 1234",
            country_id=self.env.ref("base.it").id,
        )
        self.campaign.test_partner_id = tester
        with self.assertRaisesRegex(UserError, "marketing consent"):
            self.campaign.action_send_test()
        self._send()
        self.assertFalse(self.stub.state.requests)


@tagged("post_install", "-at_install")
class TestSentAfterCommit(SendSafetyCase):
    """Item 6: a request Odoo replays after a serialization failure must not
    send twice: the composer and Send test only queue."""

    def _replayed(self, call):
        """``call`` as Odoo runs a request whose transaction fails at commit
        (serialization failure), then retries it."""
        with contextlib.suppress(RuntimeError), self.env.cr.savepoint():
            call()
            self.assertFalse(self.stub.state.requests)  # nothing left yet
            raise RuntimeError("could not serialize access")
        return call()

    def test_composer_replayed_sends_once(self):
        composer = self._composer(self.roberta, template_id=self.last_call.id)
        action = self._replayed(composer.action_send)
        self.assertIn("on its way", action["params"]["message"])
        self.assertFalse(self.stub.state.requests)
        self.assertTrue(
            self.env["ir.cron.trigger"].search(
                [("cron_id", "=",
                  self.env.ref("winback_whatsapp.ir_cron_winback_send").id)]
            )
        )  # fmt: skip
        self._send()
        self.assertEqual(len(self.stub.state.sent()), 1)

    def test_send_test_replayed_sends_once(self):
        tester = self._customer("Marco Rossi", "+39 320 555 1234")
        self.campaign.test_partner_id = tester
        action = self._replayed(self.campaign.action_send_test)
        self.assertIn("on their way", action["params"]["message"])
        self.assertFalse(self.stub.state.requests)
        self._send()
        self.assertEqual(len(self.stub.state.sent()), 2)

    def test_failure_after_queueing_is_shown_in_the_chatter(self):
        self._composer(self.roberta, template_id=self.last_call.id).action_send()
        self.stub.state.fail_next("131026", message="Message undeliverable")
        self._send()
        note = self.roberta.message_ids[0]
        self.assertIn("not sent", note.body)
        self.assertIn("Message undeliverable", note.body)


@tagged("post_install", "-at_install")
class TestCompanyAndTimeZone(SendSafetyCase):
    """Items 10 and 11."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls.env["res.company"].create({"name": "Torrefazione Due"})
        cls.env.user.company_ids |= cls.other
        cls.other_account = cls.env["winback.account"].create(
            {
                "name": "Second shop WhatsApp",
                "company_id": cls.other.id,
                "provider": "meta",
                "api_base_url": cls.stub.base_url,
                "phone_number_id": PHONE_NUMBER_ID,
                "waba_id": WABA_ID,
                "access_token": TOKEN,
                "messages_per_second": 0,
            }
        )
        cls.recall = cls.env["winback.template"].create(
            {
                "name": "winback_recall",
                "language": "it",
                "account_id": cls.other_account.id,
                "status": "approved",
                "body": "Ciao, dal {{1}} non ci vediamo: ti è piaciuto {{2}}?",
                "param_ids": [
                    (0, 0, {"position": 1, "source": "last_order_date"}),
                    (0, 0, {"position": 2, "source": "last_product"}),
                ],
            }
        )

    def test_rendered_in_the_message_company(self):
        grinder = self.env["product.product"].create(
            {"name": "Secret grinder", "type": "consu", "list_price": 300}
        )
        # Roberta bought beans at the second shop 200 days ago and, since,
        # a grinder from the first one.
        self._order(self.roberta, days_ago=150, company=self.other)
        order = self._order(self.roberta, days_ago=0, confirm=False)
        order.order_line.product_id = grinder
        order.action_confirm()
        run_job(self, "winback.segment.recompute", "_cron_recompute")
        message = self.env["winback.message"].create(
            {"direction": "outbound", "partner_id": self.roberta.id,
             "account_id": self.other_account.id, "company_id": self.other.id,
             "template_id": self.recall.id,
             "phone_e164": self.roberta.phone_sanitized, "state": "queued"}
        )  # fmt: skip
        self.assertEqual(self._send(), 1)
        params = self.stub.state.sent()[0]["template"]["components"][0]["parameters"]
        expected = (self._today() - timedelta(days=150)).strftime("%m/%d/%Y")
        self.assertEqual([p["text"] for p in params], [expected, "Espresso beans"])
        self.assertNotIn("grinder", message.body)

    def test_several_zone_country_uses_the_company_time_zone(self):
        self.company.partner_id.tz = "Europe/Moscow"
        self.campaign.write({"window_start": 9, "window_end": 12})
        ivan = self._customer("Ivan Petrov", "+7 912 345 67 89")
        monday_5utc = datetime(2026, 11, 30, 5, 0)  # 08:00 in Moscow
        with freeze_time(monday_5utc):
            enrollments = self._start_and_queue()
        message = enrollments.filtered(lambda e: e.partner_id == ivan).message_ids
        self.assertEqual(message.scheduled_at, datetime(2026, 11, 30, 6, 0))
        self.assertEqual(
            customer_timezone(False, "+79123456789", "Europe/Moscow"), "Europe/Moscow"
        )
        # One clock for the whole country: the number's zone.
        self.assertEqual(
            customer_timezone(False, "+393331234567", "UTC"), "Europe/Rome"
        )
        self.assertEqual(
            customer_timezone("Asia/Vladivostok", "+79123456789", "Europe/Moscow"),
            "Asia/Vladivostok",
        )
