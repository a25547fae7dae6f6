"""The webhook as an attacker, a replayed event or an odd number sees it.

Over real HTTP with real HMAC signatures (test_webhook's helpers), each
call followed by a run of the processing cron it wakes."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged

from ..tools import webhook_simulator as simulator
from ..tools.wa_number import is_valid_e164, number_variants, wa_id_to_e164
from . import test_webhook as base
from .common import run_job

MAIN_NUMBER = "+393331234567"


@tagged("post_install", "-at_install")
class TestWebhookSecurity(HttpCase):
    # test_webhook's helpers, not a copy (its tests are not run twice here).
    _post = base.TestWebhook._post
    _value = base.TestWebhook._value
    _inbound = base.TestWebhook._inbound
    _status = base.TestWebhook._status
    _chatter = base.TestWebhook._chatter
    _blacklisted = base.TestWebhook._blacklisted

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Main number",
                "phone_number_id": base.PNID,
                "app_secret": base.SECRET,
                "verify_token": "verify-me",
            }
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"
        cls.campaign = cls.env["winback.campaign"].create(
            {"name": "90 days", "account_id": cls.account.id}
        )
        cls.partner = cls._customer("Mario Rossi", MAIN_NUMBER, cls.campaign)
        cls.enrollment = cls.partner.winback_enrollment_ids
        # Another shop, with its own WhatsApp number and customers.
        cls.company_b = cls.env["res.company"].create({"name": "Shop B"})
        cls.account_b = cls.env["winback.account"].create(
            {
                "name": "Shop B number",
                "company_id": cls.company_b.id,
                "phone_number_id": "999000111",
                "app_secret": "secret-of-b",
            }
        )
        cls.campaign_b = cls.env["winback.campaign"].create(
            {
                "name": "B campaign",
                "account_id": cls.account_b.id,
                "company_id": cls.company_b.id,
            }
        )
        cls.bea = cls._customer(
            "Bea B", "+34612345678", cls.campaign_b, company_id=cls.company_b.id
        )
        cls.sent_b = cls.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "sent",
                "enrollment_id": cls.bea.winback_enrollment_ids.id,
                "partner_id": cls.bea.id,
                "account_id": cls.account_b.id,
                "company_id": cls.company_b.id,
                "phone_e164": "+34612345678",
                "wamid": "wamid.B1",
            }
        )

    @classmethod
    def _customer(cls, name, mobile, campaign, **vals):
        """A consenting customer enrolled in ``campaign``, with a step queued."""
        partner = cls.env["res.partner"].create(
            {
                "name": name,
                "mobile": mobile,
                "winback_consent_date": fields.Datetime.now(),
                "winback_consent_source": "Shop counter",
                **vals,
            }
        )
        enrollment = cls.env["winback.enrollment"].create(
            {
                "partner_id": partner.id,
                "campaign_id": campaign.id,
                "phone_e164": partner.phone_sanitized,
            }
        )
        cls.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "queued",
                "enrollment_id": enrollment.id,
                "partner_id": partner.id,
                "account_id": campaign.account_id.id,
                "company_id": campaign.company_id.id,
                "phone_e164": partner.phone_sanitized,
            }
        )
        return partner

    # helpers ---------------------------------------------------------

    def _queued(self, partner):
        return partner.winback_enrollment_ids.message_ids.filtered(
            lambda m: m.direction == "outbound" and m.enrollment_id
        )

    @staticmethod
    def _at(payload, ts):
        """The payload with every message and preference dated ``ts``."""
        for entry in payload["entry"]:
            for change in entry["changes"]:
                value = change["value"]
                for item in value.get("messages", []) + value.get(
                    "user_preferences", []
                ):
                    item["timestamp"] = str(int(ts))
        return payload

    def _preference(self, wa_id, value, ts=None):
        return simulator.preference_change(
            base.PNID, wa_id, value, ts or time.time(), waba_id="WABA_ID"
        )

    def _events(self):
        return self.env["winback.webhook.event"].search([])

    # 8. STOP honoured whoever and wherever it comes from ---------------

    def test_stop_from_unknown_number_is_blacklisted(self):
        """A STOP from a number no contact has still opts it out, and waits
        in Unmatched replies like any other unknown message."""
        payload = self._inbound("text", {"body": "STOP"}, "wamid.UNK1", "4915112345678")
        self.assertEqual(self._post(payload).status_code, 200)
        self.assertEqual(self._events().state, "done")
        unmatched = self.env["winback.message"].search(
            [("direction", "=", "inbound"), ("wamid", "=", "wamid.UNK1")]
        )
        self.assertEqual(unmatched.phone_e164, "+4915112345678")
        self.assertFalse(unmatched.partner_id, "still in Unmatched replies")
        self.assertTrue(self._blacklisted("+4915112345678"))
        # The customer found later (Unmatched replies > Create partner) is
        # never messaged: the send path finds the number blacklisted.
        unmatched.action_create_partner()
        self.assertTrue(self._blacklisted(unmatched.partner_id.phone_sanitized))

    def test_mexican_wa_id_is_the_customers_e164_number(self):
        """Meta writes a Mexican mobile 521 + 10 digits; the customer's
        number is +52 + 10 digits. The reply reaches the customer and a
        stop opts that number out (the event used to fail 8 times)."""
        lupita = self._customer(
            "Lupita",
            "+52 55 1234 5678",
            self.campaign,
            country_id=self.env.ref("base.mx").id,
        )
        self.assertEqual(lupita.phone_sanitized, "+525512345678")
        self._post(
            self._inbound("text", {"body": "Hola"}, "wamid.MX1", "5215512345678")
        )
        reply = self.env["winback.message"].search([("wamid", "=", "wamid.MX1")])
        self.assertEqual(reply.phone_e164, "+525512345678")
        self.assertEqual(reply.partner_id, lupita)
        self.assertTrue(self._chatter(lupita, "Hola"))
        self.assertEqual(self._post(self._preference("5215512345678", "stop")).ok, True)
        self.assertEqual(set(self._events().mapped("state")), {"done"})
        self.assertTrue(self._blacklisted("+525512345678"))
        self.assertEqual(
            lupita.winback_enrollment_ids.state, "replied", "ended by the reply"
        )

    def test_mexican_stop_from_unmatched_wa_id(self):
        self._post(self._preference("5215512345678", "stop"))
        event = self._events()
        self.assertEqual(event.state, "done", event.error)
        self.assertTrue(self._blacklisted("+525512345678"))

    def test_argentine_wa_id_matches_the_number_without_9(self):
        """Meta writes an Argentine mobile 549 + 10 digits; shops often
        keep it without the 9. Both forms are the customer's."""
        sofia = self._customer(
            "Sofia",
            "+54 11 2345-6789",
            self.campaign,
            country_id=self.env.ref("base.ar").id,
        )
        self.assertEqual(sofia.phone_sanitized, "+541123456789")
        self._post(
            self._inbound("text", {"body": "BASTA"}, "wamid.AR1", "5491123456789")
        )
        self.assertTrue(self._chatter(sofia, "BASTA"))
        self.assertEqual(sofia.winback_enrollment_ids.state, "opted_out")
        self.assertTrue(self._blacklisted("+541123456789"))
        self.assertTrue(self._blacklisted("+5491123456789"))
        self.assertEqual(self._queued(sofia).state, "cancelled")

    def test_brazilian_wa_id_without_the_ninth_digit_finds_the_customer(self):
        """Meta may write a Brazilian mobile of Sao Paulo (area 11) without
        the 9 the shop saved: the reply still reaches the customer, and a
        STOP opts out the number the shop sends to."""
        joao = self._customer(
            "Joao",
            "+55 11 98765-4321",
            self.campaign,
            country_id=self.env.ref("base.br").id,
        )
        self.assertEqual(joao.phone_sanitized, "+5511987654321")
        self._post(
            self._inbound(
                "text", {"body": "Oi, tudo bem?"}, "wamid.BR1", "551187654321"
            )
        )
        reply = self.env["winback.message"].search([("wamid", "=", "wamid.BR1")])
        self.assertEqual(reply.partner_id, joao, "not left in Unmatched replies")
        self.assertTrue(self._chatter(joao, "Oi, tudo bem?"))
        self.assertEqual(joao.winback_enrollment_ids.state, "replied")
        self.assertEqual(self._post(self._preference("551187654321", "stop")).ok, True)
        self.assertEqual(set(self._events().mapped("state")), {"done"})
        self.assertTrue(self._blacklisted("+5511987654321"))

    def test_brazilian_wa_id_of_another_area_gets_its_ninth_digit(self):
        """Outside areas 11 to 28 Meta may also drop the 9 (Manaus, 92): the
        customer saved with it is found, and their STOP holds."""
        ana = self._customer(
            "Ana",
            "+55 92 98172-3241",
            self.campaign,
            country_id=self.env.ref("base.br").id,
        )
        self._post(
            self._inbound("text", {"body": "PARAR"}, "wamid.BR2", "559281723241")
        )
        reply = self.env["winback.message"].search([("wamid", "=", "wamid.BR2")])
        self.assertEqual(reply.phone_e164, "+5592981723241")
        self.assertEqual(reply.partner_id, ana)
        self.assertTrue(self._chatter(ana, "PARAR"))
        self.assertEqual(ana.winback_enrollment_ids.state, "opted_out")
        self.assertTrue(self._blacklisted("+5592981723241"))
        self.assertEqual(self._queued(ana).state, "cancelled")

    def test_number_phonenumbers_rejects_is_still_opted_out(self):
        """An opt-out is never lost, whatever the number looks like: the
        STOP is kept, the event succeeds and the number is never sent to."""
        odd = "15550009999"  # phonenumbers: not a valid number
        self._post(self._inbound("text", {"body": "stop"}, "wamid.ODD1", odd))
        self._post(self._preference(odd, "stop"))
        events = self._events()
        self.assertEqual(set(events.mapped("state")), {"done"}, events.mapped("error"))
        self.assertTrue(self._blacklisted("+" + odd))
        # Later this number becomes a consenting, enrolled customer: the
        # sender never messages it.
        self.campaign.state = "running"
        newcomer = self._customer("Newcomer", "+" + odd, self.campaign)
        message = self._queued(newcomer)
        message.phone_e164 = "+" + odd
        run_job(self, "winback.sender", "_cron_send")
        self.assertIn(message.state, ("cancelled", "failed"))
        self.assertFalse(message.sent_at)

    # 9. An account only speaks for its own phone number ----------------

    def test_event_for_another_accounts_number_is_flagged(self):
        """Signed with account A's secret, posted to A's URL, but naming
        account B's phone number: kept and flagged, never processed."""
        forged = self._value(
            metadata={"display_phone_number": "34900", "phone_number_id": "999000111"},
            contacts=[{"profile": {"name": "Bea"}, "wa_id": "34612345678"}],
            messages=[
                {
                    "from": "34612345678",
                    "id": "wamid.FORGED",
                    "timestamp": str(int(time.time())),
                    "type": "text",
                    "text": {"body": "STOP"},
                }
            ],
            statuses=[
                {"id": "wamid.B1", "status": "read", "timestamp": str(int(time.time()))}
            ],
        )
        self.assertEqual(self._post(forged).status_code, 200)
        event = self._events()
        self.assertEqual(event.state, "refused")
        self.assertIn("999000111", event.error)
        self.assertFalse(
            self.env["winback.message"].search([("wamid", "=", "wamid.FORGED")])
        )
        self.assertEqual(self.sent_b.state, "sent")
        self.assertFalse(self._chatter(self.bea, "STOP"))
        self.assertFalse(self._blacklisted("+34612345678"))
        self.assertEqual(self.bea.winback_enrollment_ids.state, "running")
        # Not retried: the cron leaves it where it is.
        event.next_attempt_at = "2000-01-01 00:00:00"
        run_job(self, "winback.webhook.event", "_cron_process")
        self.assertEqual((event.state, event.attempts), ("refused", 1))
        # The same call for the account's own number is processed.
        self._post(self._inbound("text", {"body": "ciao"}, "wamid.OWN1"))
        self.assertTrue(self._chatter(self.partner, "ciao"))

    # 10. Company walls and replays --------------------------------------

    def test_webhook_events_walled_by_company(self):
        self._post(self._inbound("text", {"body": "hello A"}, "wamid.WA1"))
        Event = self.env["winback.webhook.event"]
        Event._store(self.account_b, json.dumps(self._value(statuses=[])))
        manager_b = new_test_user(
            self.env,
            login="manager_b",
            groups="winback_whatsapp.group_winback_manager",
            company_id=self.company_b.id,
            company_ids=[(6, 0, self.company_b.ids)],
        )
        seen = Event.with_user(manager_b).search([])
        self.assertEqual(seen.account_id, self.account_b)
        self.assertEqual(len(seen), 1)

    def test_retry_never_undoes_a_later_opt_out(self):
        """A resume the cron has not processed yet (or that failed) is
        replayed after a later STOP: the STOP wins."""
        manager = new_test_user(
            self.env,
            login="winback_admin_only",
            groups="winback_whatsapp.group_winback_manager",
        )
        now = time.time()
        Event = self.env["winback.webhook.event"]
        stop = self._inbound("text", {"body": "STOP"}, "wamid.LATESTOP")
        self._post(self._at(stop, now - 60))
        self.assertTrue(self._blacklisted(MAIN_NUMBER))
        # Sent an hour before the STOP, stored but not processed (yet).
        old_resume = Event._store(
            self.account,
            json.dumps(self._preference("393331234567", "resume", now - 3600)),
        )
        old_resume.with_user(manager).action_retry()
        self.assertEqual(old_resume.state, "done")
        self.assertTrue(self._blacklisted(MAIN_NUMBER), "the later STOP stands")
        # A resume after the STOP does resume.
        self._post(self._preference("393331234567", "resume", now))
        self.assertFalse(self._blacklisted(MAIN_NUMBER))

    def test_late_start_never_undoes_a_later_stop(self):
        now = time.time()
        Event = self.env["winback.webhook.event"]
        self._post(
            self._at(self._inbound("text", {"body": "STOP"}, "wamid.S0"), now - 7200)
        )
        self._post(
            self._at(self._inbound("text", {"body": "stop"}, "wamid.S2"), now - 60)
        )
        # Sent between the two, processed after the second.
        late_start = Event._store(
            self.account,
            json.dumps(
                self._at(
                    self._inbound("text", {"body": "START"}, "wamid.S1"), now - 3600
                )
            ),
        )
        run_job(self, "winback.webhook.event", "_cron_process")
        self.assertEqual(late_start.state, "done")
        self.assertTrue(self._blacklisted(MAIN_NUMBER), "START older than the STOP")

    def test_retry_is_for_winback_administrators(self):
        self._post({"entry": "not-a-list-of-entries"})
        failed = self._events()
        self.assertEqual(failed.state, "failed")
        for groups in ("winback_whatsapp.group_winback_user", "base.group_user"):
            user = new_test_user(self.env, login=f"retry_{groups}", groups=groups)
            with self.assertRaises(AccessError):
                failed.with_user(user).action_retry()
        self.assertEqual(failed.attempts, 1)

    # 11. Hostile requests and data lifetime -----------------------------

    def test_non_ascii_verify_token_is_forbidden(self):
        res = self.url_open(
            self.url
            + "?hub.mode=subscribe&hub.verify_token=v%C3%A9rify&hub.challenge=1"
        )
        self.assertEqual(res.status_code, 403)

    def test_non_ascii_signature_is_forbidden(self):
        payload = self._inbound("text", {"body": "hello"}, "wamid.NA1")
        res = self._post(payload, signature="sha256=" + "\u00e9" * 64)
        self.assertEqual(res.status_code, 403)
        self.assertFalse(self._events())

    def test_oversized_body_is_refused(self):
        payload = self._inbound("text", {"body": "x" * (2 * 1024 * 1024)}, "wamid.BIG")
        res = self._post(payload)
        self.assertEqual(res.status_code, 413)
        self.assertFalse(self._events())
        # Without a Content-Length (chunked), the body read is capped too.
        body = json.dumps(payload).encode()
        signature = hmac.new(base.SECRET.encode(), body, hashlib.sha256).hexdigest()
        chunks = (body[i : i + 65536] for i in range(0, len(body), 65536))
        res = self.url_open(
            self.url,
            data=chunks,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": "sha256=" + signature,
            },
        )
        self.assertEqual(res.status_code, 413)
        self.assertFalse(self._events())
        # Meta's own calls are a few KiB: far under the cap.
        self.assertEqual(
            self._post(self._inbound("text", {"body": "x"}, "wamid.S")).ok, True
        )

    def test_non_utf8_body_is_a_bad_request(self):
        payload = self._inbound("text", {"body": "hello"}, "wamid.U16")
        res = self._post(None, raw=json.dumps(payload).encode("utf-16"))
        self.assertEqual(res.status_code, 400)
        self.assertFalse(self._events())

    def test_processed_events_are_purged(self):
        Event = self.env["winback.webhook.event"]
        self._post(self._inbound("text", {"body": "old"}, "wamid.OLD"))
        self._post({"entry": "not-a-list-of-entries"})
        old, failed = (
            Event.search([("state", "=", "done")]),
            Event.search([("state", "=", "failed")]),
        )
        self._post(self._inbound("text", {"body": "new"}, "wamid.NEW"))
        recent = Event.search([("state", "=", "done")]) - old
        self.env.flush_all()
        self.env.cr.execute(
            """UPDATE winback_webhook_event
                  SET create_date = now() - interval '40 days',
                      processed_at = now() - interval '40 days'
                WHERE id IN %s""",
            [tuple((old | failed).ids)],
        )
        self.env.invalidate_all()
        self.assertTrue(getattr(Event._gc_processed_events, "_autovacuum", False))
        Event._gc_processed_events()
        self.assertFalse(old.exists(), "processed 40 days ago: purged (default 30)")
        self.assertTrue(recent.exists())
        self.assertTrue(failed.exists(), "a failure is kept for the administrator")
        # The administrator sets the lifetime in the Win-back settings.
        settings = self.env["res.config.settings"].create(
            {"winback_webhook_event_retention_days": 1}
        )
        settings.execute()
        self.assertEqual(
            self.env["ir.config_parameter"].get_param(
                "winback_whatsapp.webhook_event_retention_days"
            ),
            "1",
        )
        self.env.cr.execute(
            "UPDATE winback_webhook_event SET processed_at = now() - interval '2 days'"
        )
        self.env.invalidate_all()
        Event._gc_processed_events()
        self.assertFalse(recent.exists())

    def test_message_personal_data_expires(self):
        Message = self.env["winback.message"]
        fresh = self._queued(self.partner)
        self._post(self._inbound("text", {"body": "my address is ..."}, "wamid.PD1"))
        inbound = Message.search([("wamid", "=", "wamid.PD1")])
        old_out = Message.create(
            {
                "direction": "outbound",
                "state": "read",
                "enrollment_id": self.enrollment.id,
                "partner_id": self.partner.id,
                "account_id": self.account.id,
                "phone_e164": MAIN_NUMBER,
                "body": "Ciao Mario, 15% off",
                "render_params": json.dumps(["Mario"]),
                "wamid": "wamid.PDOUT",
                "sent_at": fields.Datetime.now() - timedelta(days=400),
                "delivered_at": fields.Datetime.now() - timedelta(days=400),
                "read_at": fields.Datetime.now() - timedelta(days=400),
            }
        )
        report = self.env["winback.report"]
        self.env.flush_all()
        before = report.search_read(
            [("enrollment_id", "=", self.enrollment.id)],
            ["sent", "delivered", "read_count"],
        )
        self.env.cr.execute(
            "UPDATE winback_message SET create_date = now() - interval '400 days' "
            "WHERE id IN %s",
            [(inbound.id, old_out.id)],
        )
        self.env.invalidate_all()
        self.assertTrue(getattr(Message._gc_personal_data, "_autovacuum", False))
        Message._gc_personal_data()
        for message in inbound | old_out:
            self.assertFalse(message.body)
            self.assertFalse(message.phone_e164)
            self.assertFalse(message.profile_name)
            self.assertFalse(message.render_params)
        self.assertEqual(old_out.state, "read")
        self.assertEqual(fresh.phone_e164, MAIN_NUMBER, "recent data untouched")
        self.env.invalidate_all()
        after = report.search_read(
            [("enrollment_id", "=", self.enrollment.id)],
            ["sent", "delivered", "read_count"],
        )
        self.assertEqual(after, before, "the results keep their counts")


@tagged("post_install", "-at_install")
class TestWaNumber(BaseCase):
    """Meta's wa_id to E.164 (tools/wa_number.py), a pure function."""

    def test_wa_id_to_e164(self):
        cases = {
            # Mexico: the former mobile 1 goes.
            "5215512345678": "+525512345678",
            "5213312345678": "+523312345678",
            "525512345678": "+525512345678",
            # Argentina: 549 is the international mobile form already.
            "5491123456789": "+5491123456789",
            # Brazil: an 8-digit mobile outside areas 11-28 gets its 9...
            "559281723241": "+5592981723241",
            # ... a mobile that has it, or a landline, stays as it is.
            "5521987654321": "+5521987654321",
            "552132654321": "+552132654321",
            # Everyone else: "+" and the digits.
            "393331234567": "+393331234567",
            "+39 333 123 4567": "+393331234567",
            # Not valid for phonenumbers: kept, digits only, never dropped.
            "15550009999": "+15550009999",
            "": "",
            None: "",
            "abc": "",
        }
        for wa_id, e164 in cases.items():
            self.assertEqual(wa_id_to_e164(wa_id), e164, wa_id)
        for e164 in cases.values():
            if e164 and e164 != "+15550009999":
                self.assertTrue(is_valid_e164(e164), e164)
        self.assertFalse(is_valid_e164("+5215512345678"))

    def test_number_variants(self):
        self.assertEqual(number_variants("+525512345678"), ["+5215512345678"])
        self.assertEqual(number_variants("+5491123456789"), ["+541123456789"])
        self.assertEqual(number_variants("+541123456789"), ["+5491123456789"])
        self.assertEqual(number_variants("+5592981723241"), ["+559281723241"])
        self.assertEqual(number_variants("+393331234567"), [])
        self.assertEqual(number_variants(""), [])
