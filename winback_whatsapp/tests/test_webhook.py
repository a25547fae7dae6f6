import hashlib
import hmac
import json
from pathlib import Path

from odoo.tests import HttpCase, tagged

from ..tools import webhook_simulator as simulator
from ..tools.stop_keywords import is_start, is_stop
from .common import run_job

SECRET = "test-app-secret"
PNID = "106540352242922"
RECORDED = json.loads(
    (Path(__file__).parent / "data" / "meta_webhooks.json").read_text("utf-8")
)


@tagged("post_install", "-at_install")
class TestWebhook(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Main number",
                "phone_number_id": PNID,
                "app_secret": SECRET,
                "verify_token": "verify-me",
            }
        )
        cls.salesman = cls.env["res.users"].create(
            {"name": "Sally Sales", "login": "sally_wb", "email": "sally@example.com"}
        )
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Mario Rossi",
                "mobile": "+393331234567",
                "user_id": cls.salesman.id,
            }
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {"name": "90 days", "account_id": cls.account.id}
        )
        cls.enrollment = cls.env["winback.enrollment"].create(
            {
                "partner_id": cls.partner.id,
                "campaign_id": cls.campaign.id,
                "phone_e164": "+393331234567",
            }
        )
        cls.template = cls.env["winback.template"].create(
            {
                "name": "winback_90",
                "account_id": cls.account.id,
                "body": "We miss you",
                "button_ids": [
                    (
                        0,
                        0,
                        {
                            "index": 0,
                            "text": "No more offers",
                            "payload": "WINBACK_STOP",
                            "is_stop": True,
                        },
                    )
                ],
            }
        )
        cls.sent = cls.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "sent",
                "enrollment_id": cls.enrollment.id,
                "partner_id": cls.partner.id,
                "account_id": cls.account.id,
                "template_id": cls.template.id,
                "phone_e164": "+393331234567",
                "wamid": "wamid.OUT1",
            }
        )
        cls.queued = cls.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "queued",
                "enrollment_id": cls.enrollment.id,
                "partner_id": cls.partner.id,
                "account_id": cls.account.id,
                "phone_e164": "+393331234567",
            }
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    # helpers ---------------------------------------------------------

    def _post(self, payload, secret=SECRET, signature=None, raw=None):
        """A signed POST, as Meta makes it, then a run of the processing cron
        the webhook wakes (as ir.cron runs it: in a cursor of its own)."""
        body = raw if raw is not None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if signature is None and secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            signature = "sha256=" + digest
        if signature:
            headers["X-Hub-Signature-256"] = signature
        response = self.url_open(self.url, data=body, headers=headers)
        run_job(self, "winback.webhook.event", "_cron_process")
        return response

    def _value(self, field="messages", **value):
        value.setdefault("metadata", simulator.metadata(PNID, "15550001111"))
        return simulator.envelope(
            simulator.change_value(**value), field=field, waba_id="WABA_ID"
        )

    def _inbound(self, msg_type, content, wamid, sender="393331234567", context=None):
        msg = simulator.message(
            sender,
            wamid,
            msg_type,
            content,
            1767225600,
            context=context and ("15550001111", context),
        )
        return self._value(
            contacts=[simulator.contact(sender, "Mario")], messages=[msg]
        )

    def _recorded(self, name, wamid, sender="393331234567", **changes):
        """A recorded Meta payload (data/meta_webhooks.json) as it would
        reach this account: its phone number ID, from this sender, with
        this wamid; ``changes``: keys of the message replaced."""
        payload = json.loads(json.dumps(RECORDED[name]))
        value = payload["entry"][0]["changes"][0]["value"]
        value["metadata"]["phone_number_id"] = PNID
        for contact in value.get("contacts", []):
            contact["wa_id"] = sender
        (msg,) = value["messages"]
        msg.update({"from": sender, "id": wamid, **changes})
        return payload

    def _inbound_message(self, wamid):
        return self.env["winback.message"].search([("wamid", "=", wamid)])

    def _reply_activities(self):
        return self.partner.activity_ids.filtered(
            lambda a: a.activity_type_id
            == self.env.ref("winback_whatsapp.mail_activity_type_winback_reply")
        )

    def _status(self, wamid, status, ts="1767225600", **extra):
        return self._value(
            statuses=[simulator.status(wamid, status, ts, "393331234567", **extra)]
        )

    def _notifications(self):
        """What the salesperson was notified of (inbox or e-mail)."""
        return self.env["mail.notification"].search(
            [("res_partner_id", "=", self.salesman.partner_id.id)]
        )

    def _chatter(self, partner, text):
        return partner.message_ids.filtered(lambda m: text in (m.body or ""))

    def _blacklisted(self, number):
        return bool(self.env["phone.blacklist"].search_count([("number", "=", number)]))

    # verification ----------------------------------------------------

    def test_get_verification(self):
        ok = self.url_open(
            self.url
            + "?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        )
        self.assertEqual(ok.status_code, 200)
        self.assertEqual(ok.text, "1158201444")
        self.assertTrue(ok.headers["Content-Type"].startswith("text/plain"))
        bad = self.url_open(
            self.url + "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1"
        )
        self.assertEqual(bad.status_code, 403)
        self.assertNotIn("1158", bad.text)
        unknown = self.url_open(
            "/winback_whatsapp/webhook/nope?hub.mode=subscribe"
            "&hub.verify_token=verify-me&hub.challenge=1"
        )
        self.assertEqual(unknown.status_code, 403)

    # signatures ------------------------------------------------------

    def test_signatures(self):
        Event = self.env["winback.webhook.event"]
        payload = self._inbound("text", {"body": "hello"}, "wamid.SIG1")
        self.assertEqual(self._post(payload, secret="not-the-secret").status_code, 403)
        self.assertEqual(self._post(payload, secret=None).status_code, 403)
        self.assertEqual(
            self._post(payload, signature="sha256=" + "0" * 64).status_code, 403
        )
        self.assertFalse(Event.search([]), "rejected calls store nothing")
        self.assertFalse(self._chatter(self.partner, "hello"))
        self.assertEqual(self._post(payload).status_code, 200)
        event = Event.search([])
        self.assertEqual(len(event), 1)
        self.assertEqual(event.state, "done")
        self.assertEqual(json.loads(event.raw_body), payload)

    def test_malformed_json(self):
        res = self._post(None, raw=b'{"entry": [')
        self.assertEqual(res.status_code, 400)
        self.assertFalse(self.env["winback.webhook.event"].search([]))

    def test_archived_account_refuses_everything(self):
        self.account.active = False
        verify = self.url_open(
            self.url + "?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1"
        )
        self.assertEqual(verify.status_code, 403)
        payload = self._inbound("text", {"body": "hello"}, "wamid.ARCH1")
        self.assertEqual(self._post(payload).status_code, 403)
        self.assertFalse(self.env["winback.webhook.event"].search([]))

    def test_raw_body_kept_byte_for_byte(self):
        raw = (
            b'{ "object":"whatsapp_business_account",\n  "entry": [],'
            b' "note": "caf\xc3\xa9 \\u00e9" }'
        )
        self.assertEqual(self._post(None, raw=raw).status_code, 200)
        event = self.env["winback.webhook.event"].search([])
        self.assertEqual(event.raw_body, raw.decode())
        self.assertEqual(event.account_id, self.account)
        self.assertEqual(event.company_id, self.account.company_id)
        self.assertEqual(event.state, "done")

    # processing cron -------------------------------------------------

    def test_burst_wakes_the_cron_once(self):
        Event = self.env["winback.webhook.event"]
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_webhook_process")
        Trigger = self.env["ir.cron.trigger"].sudo()
        Trigger.search([("cron_id", "=", cron.id)]).unlink()
        for _call in range(3):
            Event._wake_processing_cron()
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        self.assertEqual(len(triggers), 1, "one due trigger serves the whole burst")
        self.assertLessEqual(triggers.call_at, self.env.cr.now())
        # Once the cron has run (ir.cron deletes the triggers it served),
        # the next call wakes it again.
        triggers.unlink()
        Event._wake_processing_cron()
        self.assertEqual(Trigger.search_count([("cron_id", "=", cron.id)]), 1)

    def test_cron_works_off_a_backlog_in_batches(self):
        Event = self.env["winback.webhook.event"]
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_webhook_process")
        events = Event.browse()
        for index in range(3):
            payload = self._inbound(
                "text", {"body": f"backlog {index}"}, f"wamid.BACK{index}"
            )
            events |= Event._store(self.account, json.dumps(payload))
        self.assertEqual(set(events.mapped("state")), {"pending"})
        # Run as ir.cron runs it, with the progress record it reads back.
        _cron, progress = cron._add_progress()
        self.env = self.env(
            context=dict(self.env.context, ir_cron_progress_id=progress.id)
        )
        run_job(self, "winback.webhook.event", "_cron_process", batch_size=2)
        self.assertEqual(events.mapped("state"), ["done", "done", "pending"])
        self.assertEqual(
            (progress.done, progress.remaining),
            (2, 1),
            "the cron asks to run again while events remain",
        )
        run_job(self, "winback.webhook.event", "_cron_process", batch_size=2)
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual((progress.done, progress.remaining), (1, 0))
        for index in range(3):
            self.assertEqual(len(self._chatter(self.partner, f"backlog {index}")), 1)

    def test_ir_cron_runs_the_cron_again_while_events_remain(self):
        """ir.cron's own loop: a run that reports events remaining is run
        again at once, until none remains."""
        Event = self.env["winback.webhook.event"]
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_webhook_process")
        cron.code = "model._cron_process(batch_size=2)"
        events = Event.browse()
        for index in range(5):
            payload = self._inbound(
                "text", {"body": f"burst {index}"}, f"wamid.B{index}"
            )
            events |= Event._store(self.account, json.dumps(payload))
        self.env.flush_all()
        job = {
            **cron.read(load=None)[0],
            "done": 0,
            "remaining": 0,
            "timed_out_counter": 0,
        }
        with self.registry.cursor() as cron_cr:
            self.registry["ir.cron"]._process_job(self.registry.db_name, cron_cr, job)
        self.env.invalidate_all()
        self.assertEqual(set(events.mapped("state")), {"done"})
        runs = self.env["ir.cron.progress"].search(
            [("cron_id", "=", cron.id)], order="id"
        )
        self.assertEqual(
            [(run.done, run.remaining) for run in runs], [(2, 3), (2, 1), (1, 0)]
        )

    # inbound ---------------------------------------------------------

    def test_text_reply_replays_and_effects(self):
        payload = self._inbound(
            "text",
            {"body": "Yes, send me the offer"},
            "wamid.IN1",
            context="wamid.OUT1",
        )
        for _i in range(3):
            self.assertEqual(self._post(payload).status_code, 200)
        posted = self._chatter(self.partner, "Yes, send me the offer")
        self.assertEqual(len(posted), 1, "three deliveries, one chatter message")
        self.assertEqual(posted.author_id, self.partner)
        inbound = self.env["winback.message"].search([("wamid", "=", "wamid.IN1")])
        self.assertEqual(len(inbound), 1)
        self.assertEqual(inbound.enrollment_id, self.enrollment)
        self.assertEqual(inbound.context_wamid, "wamid.OUT1")
        self.assertEqual(self.enrollment.state, "replied")
        self.assertTrue(self.enrollment.outcome_date)
        self.assertEqual(self.queued.state, "cancelled")
        activity = self.partner.activity_ids.filtered(
            lambda a: a.activity_type_id
            == self.env.ref("winback_whatsapp.mail_activity_type_winback_reply")
        )
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.salesman)
        # A second message adds to the chatter, not to the salesperson's
        # to-do list: the one activity shows the latest message.
        self._post(self._inbound("text", {"body": "Is it still valid?"}, "wamid.IN2"))
        self.assertEqual(len(self._chatter(self.partner, "Is it still valid?")), 1)
        self.assertEqual(len(self.partner.activity_ids), 1)
        self.assertIn("Is it still valid?", str(activity.note))

    def test_reply_does_not_make_the_customer_a_follower(self):
        """A reply is filed by the system on the customer's record: it does
        not subscribe the customer to their own contact, which would send
        them by e-mail what the sales team writes there next."""
        self.assertNotIn(self.partner, self.partner.message_partner_ids)
        self._post(self._inbound("text", {"body": "ciao"}, "wamid.IN8"))
        self.assertEqual(len(self._chatter(self.partner, "ciao")), 1)
        self.assertNotIn(self.partner, self.partner.message_partner_ids)

    def test_salesperson_is_notified_of_each_reply_in_the_customers_words(self):
        """The salesperson hears of a reply once, through the reply itself
        (its text, its author), not through a second message saying an
        activity was assigned; a second reply notifies them again, to the
        same one activity."""

        before = self._notifications()
        self._post(self._inbound("text", {"body": "Call me back"}, "wamid.IN20"))
        reply = self._chatter(self.partner, "Call me back")
        self.assertEqual((self._notifications() - before).mail_message_id, reply)
        self.assertEqual(reply.author_id, self.partner)
        self.assertEqual(len(self.partner.activity_ids), 1)
        self.assertEqual(self.partner.activity_ids.user_id, self.salesman)
        self.assertIn(self.salesman.partner_id, self.partner.message_partner_ids)
        self._post(self._inbound("text", {"body": "Tomorrow?"}, "wamid.IN21"))
        second = self._chatter(self.partner, "Tomorrow?")
        self.assertEqual(
            (self._notifications() - before).mail_message_id, reply | second
        )
        self.assertEqual(len(self.partner.activity_ids), 1)

    def test_a_reaction_or_a_stop_notifies_nobody(self):
        before = self._notifications()
        self._post(
            self._inbound(
                "reaction", {"message_id": "wamid.OUT1", "emoji": "👍"}, "wamid.IN22"
            )
        )
        self._post(self._inbound("text", {"body": "STOP"}, "wamid.IN23"))
        self.assertFalse(self._notifications() - before)

    def test_activity_falls_back_to_campaign_responsible(self):
        self.partner.user_id = False
        responsible = self.env["res.users"].create(
            {"name": "Rita Resp", "login": "rita_wb"}
        )
        self.campaign.user_id = responsible
        self._post(self._inbound("text", {"body": "ciao"}, "wamid.IN9", "393331234567"))
        self.assertEqual(self.partner.activity_ids.user_id, responsible)

    def test_every_message_type(self):
        cases = [
            (
                "button",
                {"payload": "MORE_INFO", "text": "Tell me more"},
                "Tell me more",
            ),
            (
                "interactive",
                {
                    "type": "button_reply",
                    "button_reply": {"id": "b1", "title": "Book now"},
                },
                "Book now",
            ),
            (
                "interactive",
                {
                    "type": "list_reply",
                    "list_reply": {"id": "l1", "title": "Shoes", "description": "x"},
                },
                "Shoes",
            ),
            (
                "image",
                {"caption": "Is this in stock?", "mime_type": "image/jpeg", "id": "M1"},
                "Is this in stock?",
            ),
            (
                "document",
                {"caption": "my invoice", "filename": "inv.pdf", "id": "M2"},
                "inv.pdf",
            ),
            (
                "reaction",
                {"message_id": "wamid.OUT1", "emoji": "\U0001f44d"},
                "\U0001f44d",
            ),
        ]
        for i, (mtype, content, expected) in enumerate(cases):
            self._post(self._inbound(mtype, content, f"wamid.T{i}"))
            self.assertEqual(len(self._chatter(self.partner, expected)), 1, mtype)
        unsupported = self._value(
            messages=[
                {
                    "from": "393331234567",
                    "id": "wamid.U1",
                    "timestamp": "1767225600",
                    "type": "unsupported",
                    "errors": [{"code": 131051, "title": "Message type unknown"}],
                }
            ]
        )
        self._post(unsupported)
        self.assertTrue(self._chatter(self.partner, "Unsupported message type"))
        self.assertFalse(self._blacklisted("+393331234567"))

    def test_reaction_is_shown_but_is_no_reply(self):
        self._post(
            self._inbound(
                "reaction",
                {"message_id": "wamid.OUT1", "emoji": "\U0001f44d"},
                "wamid.R1",
            )
        )
        self.assertEqual(len(self._chatter(self.partner, "\U0001f44d")), 1)
        self.assertEqual(self.enrollment.state, "running")
        self.assertFalse(self.partner.activity_ids)
        # A text that merely starts like a reaction is a reply.
        self._post(self._inbound("text", {"body": "Reaction: love it"}, "wamid.R2"))
        self.assertEqual(self.enrollment.state, "replied")
        self.assertTrue(self.partner.activity_ids)

    def test_html_payload_is_inert(self):
        evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        self._post(self._inbound("text", {"body": evil}, "wamid.XSS"))
        msg = self._chatter(self.partner, "alert")
        self.assertEqual(len(msg), 1)
        self.assertNotIn("<script", msg.body)
        self.assertNotIn("<img", msg.body)
        self.assertIn("&lt;script&gt;", msg.body)

    def test_unknown_number_kept_and_linked(self):
        self._post(
            self._inbound("text", {"body": "who is this?"}, "wamid.UNK", "447700900123")
        )
        unmatched = self.env["winback.message"].search(
            [("direction", "=", "inbound"), ("partner_id", "=", False)]
        )
        self.assertEqual(unmatched.phone_e164, "+447700900123")
        self.assertEqual(unmatched.body, "who is this?")
        self.assertEqual(unmatched.profile_name, "Mario")
        unmatched.action_create_partner()
        self.assertEqual(unmatched.partner_id.mobile, "+447700900123")
        self.assertTrue(self._chatter(unmatched.partner_id, "who is this?"))

    def test_shared_number_prefers_enrolled_then_recent_customer(self):
        number = "+393339999999"
        older = self.env["res.partner"].create({"name": "A", "mobile": number})
        recent = self.env["res.partner"].create({"name": "B", "phone": number})
        enrolled = self.env["res.partner"].create({"name": "C", "mobile": number})
        product = self.env["product.product"].create({"name": "Thing", "list_price": 5})
        for partner, date in ((older, "2025-01-01"), (recent, "2025-06-01")):
            order = self.env["sale.order"].create(
                {
                    "partner_id": partner.id,
                    "order_line": [(0, 0, {"product_id": product.id})],
                }
            )
            order.action_confirm()
            order.date_order = date
        Partner = self.env["res.partner"]
        self.assertEqual(Partner._winback_find_by_number(number), recent)
        self.env["winback.enrollment"].create(
            {"partner_id": enrolled.id, "campaign_id": self.campaign.id}
        )
        self.assertEqual(Partner._winback_find_by_number(number), enrolled)
        self._post(
            self._inbound("text", {"body": "shared"}, "wamid.SH", "393339999999")
        )
        self.assertTrue(self._chatter(enrolled, "shared"))
        self.assertFalse(self._chatter(recent, "shared"))

    def test_number_written_in_any_format_is_matched(self):
        # The landline field holds the WhatsApp number, written with spaces;
        # the mobile field (hence the sanitized number) is another one.
        shop = self.env["res.partner"].create(
            {
                "name": "Bottega",
                "mobile": "+39 02 1234 5678",
                "phone": "+39 333 555 1212",
            }
        )
        abroad = self.env["res.partner"].create(
            {"name": "Zurich", "mobile": "0041 79 123 45 67"}
        )
        Partner = self.env["res.partner"]
        self.assertEqual(Partner._winback_find_by_number("+393335551212"), shop)
        self.assertEqual(Partner._winback_find_by_number("+41791234567"), abroad)
        self.assertFalse(Partner._winback_find_by_number("+393335551213"))
        self._post(
            self._inbound("text", {"body": "still open?"}, "wamid.FMT", "393335551212")
        )
        self.assertTrue(self._chatter(shop, "still open?"))

    # opt-out ---------------------------------------------------------

    def test_stop_keywords(self):
        for word in (
            "STOP",
            "stop",
            "Stop!",
            "STOPP",
            "ARRET",
            "Arrêt",
            "basta",
            "CANCELLA",
            "Disiscrivimi",
            "BAJA",
            "parar",
            "Unsubscribe",
            " stop. ",
        ):
            self.assertTrue(is_stop(word), word)
        for text in ("please stop calling", "stopper", "I want the offer", ""):
            self.assertFalse(is_stop(text), text)
        self.assertTrue(is_start("START"))
        self.assertTrue(is_start("start!"))

    def _assert_opted_out(self):
        self.assertTrue(self._blacklisted("+393331234567"))
        self.assertEqual(self.enrollment.state, "opted_out")
        self.assertEqual(self.queued.state, "cancelled")
        confirmations = self.env["winback.message"].search(
            [
                ("partner_id", "=", self.partner.id),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
                ("template_id", "=", False),
            ]
        )
        self.assertEqual(len(confirmations), 1, "one confirmation queued")

    def test_stop_text_and_start(self):
        for i, word in enumerate(("ARRÊT", "stop", "Basta!")):
            self._post(self._inbound("text", {"body": word}, f"wamid.S{i}"))
        self._assert_opted_out()
        self.assertFalse(self.partner.activity_ids, "STOP is no sales lead")
        self._post(self._inbound("text", {"body": "Start"}, "wamid.START"))
        self.assertFalse(self._blacklisted("+393331234567"))
        self._post(self._inbound("text", {"body": "ok thanks"}, "wamid.AFTER"))
        self.assertFalse(self._blacklisted("+393331234567"))

    def test_stop_button_payload(self):
        self._post(
            self._inbound(
                "button",
                {"payload": "WINBACK_STOP", "text": "No more offers"},
                "wamid.BTN",
                context="wamid.OUT1",
            )
        )
        self._assert_opted_out()

    def test_user_preferences_stop_resume(self):
        def pref(value, wamid):
            return simulator.preference_change(
                PNID, "393331234567", value, 1767225600, waba_id="WABA_ID"
            )

        self._post(pref("stop", 1))
        self.assertTrue(self._blacklisted("+393331234567"))
        self.assertEqual(self.enrollment.state, "opted_out")
        self._post(pref("resume", 2))
        self.assertFalse(self._blacklisted("+393331234567"))

    # statuses --------------------------------------------------------

    def test_statuses_out_of_order(self):
        msg = self.sent
        self._post(self._status("wamid.OUT1", "read", ts="1767225900"))
        self.assertEqual(msg.state, "read")
        self.assertTrue(msg.delivered_at, "read implies delivered")
        self.assertTrue(msg.read_at)
        self._post(self._status("wamid.OUT1", "delivered", ts="1767225800"))
        self._post(self._status("wamid.OUT1", "sent", ts="1767225700"))
        self.assertEqual(msg.state, "read", "never goes backwards")
        self._post(self._status("wamid.NOPE", "delivered"))  # unknown: logged
        events = self.env["winback.webhook.event"].search([])
        self.assertEqual(set(events.mapped("state")), {"done"})

    def test_status_by_opaque_data_reconciles_sending(self):
        stuck = self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "sending",
                "partner_id": self.partner.id,
                "account_id": self.account.id,
                "phone_e164": "+393331234567",
            }
        )
        self._post(
            self._status(
                "wamid.LATE",
                "delivered",
                biz_opaque_callback_data=f"winback:{stuck.id}",
            )
        )
        self.assertEqual(stuck.state, "delivered")
        self.assertEqual(stuck.wamid, "wamid.LATE")
        # Another business number's status cannot touch this account's
        # messages, whatever callback data it carries.
        other = self.env["winback.account"].create(
            {"name": "Other", "phone_number_id": "999", "app_secret": "s2"}
        )
        foreign = self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "sending",
                "partner_id": self.partner.id,
                "account_id": other.id,
                "phone_e164": "+393331234567",
            }
        )
        self._post(
            self._status(
                "wamid.ELSE", "read", biz_opaque_callback_data=f"winback:{foreign.id}"
            )
        )
        self.assertEqual(foreign.state, "sending")
        self.assertFalse(foreign.wamid)

    def test_failed_status_131050_blacklists(self):
        failed = self._status(
            "wamid.OUT1",
            "failed",
            errors=[
                {
                    "code": 131050,
                    "title": "Unable to deliver the message. This recipient has "
                    "chosen to stop receiving marketing messages on WhatsApp "
                    "from your business.",
                }
            ],
        )
        self._post(failed)
        self.assertEqual(self.sent.state, "failed")
        self.assertEqual(self.sent.error_code, "131050")
        self.assertTrue(self._blacklisted("+393331234567"))
        self._post(self._status("wamid.OUT1", "delivered"))
        self.assertEqual(self.sent.state, "failed", "failed is final")

    def test_value_errors_and_failures_are_kept(self):
        payload = self._value(
            errors=[{"code": 131000, "title": "Something went wrong"}]
        )
        self._post(payload)
        event = self.env["winback.webhook.event"].search([])
        self.assertEqual(event.state, "done")
        self.assertIn("131000", event.error)
        # A payload our code cannot digest stays failed, visible and retried.
        broken = self._post({"entry": "not-a-list-of-entries"})
        self.assertEqual(broken.status_code, 200)
        bad = self.env["winback.webhook.event"].search([("state", "=", "failed")])
        self.assertEqual(len(bad), 1)
        self.assertEqual(bad.attempts, 1)
        self.assertTrue(bad.error)
        bad.next_attempt_at = "2000-01-01 00:00:00"
        run_job(self, "winback.webhook.event", "_cron_process")
        self.assertEqual(bad.attempts, 2)
        self.assertEqual(bad.state, "failed")

    def test_simulate_reply(self):
        self.enrollment.action_simulate_reply("Sounds good")
        self.assertEqual(self.enrollment.state, "replied")
        self.assertEqual(len(self._chatter(self.partner, "Sounds good")), 1)

    # every message type, as a person reads it --------------------------

    def test_order_is_a_reply_listing_every_item(self):
        self._post(self._recorded("message/order", "wamid.ORD1"))
        (post,) = self._chatter(self.partner, "Order:")
        for line in (
            "3 × HAMBURGER at 30 ILS",
            "2 × FRENCH_FRIES at 35 ILS",
            "2 × SODA at 10 ILS",
        ):
            self.assertIn(line, post.body)
        self.assertEqual(post.author_id, self.partner)
        self.assertEqual(self.enrollment.state, "replied")
        self.assertEqual(len(self._reply_activities()), 1)
        self.assertIn("HAMBURGER", str(self._reply_activities().note))

    def test_contacts_location_flow_and_call_answers_read_plainly(self):
        cases = [
            (
                "message/contacts",
                [
                    "Shared contacts:",
                    "Chandler Bing: +1 555-555-5555",
                    "Monica: +1 666-666-6666",
                    "Rachel Green: +1 777-777-7777",
                ],
            ),
            (
                "message/chosen_location",
                [
                    "Location:",
                    "Facebook HQ",
                    "1 Hacker Way, Menlo Park, CA 94025",
                    "https://www.google.com/maps/search/?api=1&amp;"
                    "query=37.4611978,-122.2164385",
                    "Latitude 37.4611978, longitude -122.2164385",
                ],
            ),
            (
                "flow_completion/completion",
                [
                    "Form submitted:",
                    "comment_text: Comment Text",
                    "delivery_rating: 4",
                    "cs_rating: 0",
                ],
            ),
            (
                "call_permission_update/accept",
                ["The customer accepts WhatsApp calls."],
            ),
            (
                "message/interactive_message_with_err",
                [
                    "Interactive reply WhatsApp could not deliver: Something went "
                    "wrong: Unsupported webhook payload"
                ],
            ),
        ]
        for index, (name, lines) in enumerate(cases):
            self._post(self._recorded(name, f"wamid.KIND{index}"))
            posts = self._chatter(self.partner, lines[0])
            self.assertEqual(len(posts), 1, name)
            for line in lines:
                self.assertIn(line, posts.body, name)
        flow = self._chatter(self.partner, "Form submitted:")
        self.assertNotIn("flow_token", flow.body)
        self.assertNotIn("AQAAAAACS5FpgQ", flow.body)
        self.assertEqual(self.enrollment.state, "replied", "each of them is a reply")
        self.assertEqual(len(self._reply_activities()), 1)
        events = self.env["winback.webhook.event"].search([])
        self.assertEqual(set(events.mapped("state")), {"done"})

    def test_unknown_type_is_stored_with_a_readable_fallback(self):
        payload = self._recorded("message/text", "wamid.POLL1", type="poll_creation")
        msg = payload["entry"][0]["changes"][0]["value"]["messages"][0]
        del msg["text"]
        msg["poll_creation"] = {"question": "Which colour?", "options": ["Red"]}
        self._post(payload)
        event = self.env["winback.webhook.event"].search([])
        self.assertEqual(event.state, "done")
        stored = self._inbound_message("wamid.POLL1")
        self.assertEqual(stored.body, "[Unsupported message type: poll_creation]")
        self.assertEqual(stored.inbound_type, "poll_creation")
        self.assertTrue(self._chatter(self.partner, "poll_creation"))

    def test_number_change_is_no_reply_and_updates_the_partner(self):
        system = self._recorded("system/phone_number_change", "wamid.SYS1")
        system["entry"][0]["changes"][0]["value"]["messages"][0]["system"].update(
            {
                "body": "User Mario changed from 393331234567 to 393339876543",
                "wa_id": "393339876543",
            }
        )
        self._post(system)
        self.assertEqual(self.enrollment.state, "running", "a notice is no reply")
        self.assertFalse(self._reply_activities())
        self.assertEqual(self.partner.phone_sanitized, "+393339876543")
        self.assertTrue(
            self._chatter(
                self.partner, "changed their WhatsApp number to +393339876543"
            )
        )
        self.assertTrue(self._chatter(self.partner, "WhatsApp number changed"))
        self.assertEqual(self.enrollment.phone_e164, "+393339876543")
        self.assertEqual(self.queued.phone_e164, "+393339876543")
        notice = self._inbound_message("wamid.SYS1")
        self.assertEqual(notice.new_phone_e164, "+393339876543")
        self.assertEqual(notice.partner_id, self.partner)
        # The next message, from the new number, still finds the customer.
        self._post(
            self._inbound("text", {"body": "new phone!"}, "wamid.SYS2", "393339876543")
        )
        self.assertTrue(self._chatter(self.partner, "new phone!"))
        self.assertEqual(self.enrollment.state, "replied")
        # An identity change is shown, and is no reply either.
        self._post(
            self._recorded(
                "system/identity_change", "wamid.SYS3", sender="393339876543"
            )
        )
        self.assertTrue(self._chatter(self.partner, "User identity changed"))
        self.assertEqual(len(self._reply_activities()), 1)

    def test_number_change_keeps_an_opt_out(self):
        self._post(self._inbound("text", {"body": "STOP"}, "wamid.OPT1"))
        self.assertTrue(self._blacklisted("+393331234567"))
        system = self._recorded("system/phone_number_change", "wamid.OPT2")
        system["entry"][0]["changes"][0]["value"]["messages"][0]["system"].update(
            {"wa_id": "393339876543"}
        )
        self._post(system)
        self.assertEqual(self.partner.phone_sanitized, "+393339876543")
        self.assertTrue(self._blacklisted("+393339876543"))

    def test_number_change_of_an_unknown_number_waits_unmatched(self):
        system = self._recorded(
            "system/phone_number_change", "wamid.SYSU", sender="447700900123"
        )
        system["entry"][0]["changes"][0]["value"]["messages"][0]["system"].update(
            {"wa_id": "393335550000"}
        )
        self._post(system)
        notice = self._inbound_message("wamid.SYSU")
        self.assertFalse(notice.partner_id)
        self.assertEqual(notice.phone_e164, "+447700900123")
        self.assertEqual(notice.new_phone_e164, "+393335550000")
        self.assertIn("+393335550000", notice.body)
        unmatched = self.env["winback.message"].search(
            [("direction", "=", "inbound"), ("partner_id", "=", False)]
        )
        self.assertIn(notice, unmatched)
        customer = self.env["res.partner"].create(
            {"name": "Olivia", "mobile": "+44 7700 900123"}
        )
        notice.partner_id = customer
        notice.action_link_partner()
        self.assertEqual(customer.phone_sanitized, "+393335550000")
        self.assertFalse(customer.activity_ids)

    def test_removed_reaction_marks_the_reaction(self):
        self._post(
            self._inbound(
                "reaction",
                {"message_id": "wamid.OUT1", "emoji": "\U0001f44d"},
                "wamid.RX1",
            )
        )
        removal = self._recorded("message/unreaction_no_emoji", "wamid.RX2")
        removal["entry"][0]["changes"][0]["value"]["messages"][0]["reaction"] = {
            "message_id": "wamid.OUT1"
        }
        self._post(removal)
        reaction = self._inbound_message("wamid.RX1")
        self.assertEqual(reaction.customer_change, "reaction_removed")
        self.assertEqual(reaction.body, "Reaction: \U0001f44d", "never erased")
        self.assertEqual(len(self._chatter(self.partner, "Reaction:")), 1)
        self.assertTrue(self._chatter(self.partner, "removed their reaction"))
        self.assertEqual(self.enrollment.state, "running")
        self.assertFalse(self._reply_activities())

    def test_deletion_marks_the_original_and_keeps_it(self):
        self._post(self._inbound("text", {"body": "I want 3 pairs"}, "wamid.DEL0"))
        revoke = self._recorded("deleted_message/revoke", "wamid.DEL1")
        revoke["entry"][0]["changes"][0]["value"]["messages"][0]["revoke"] = {
            "original_message_id": "wamid.DEL0"
        }
        # The same deletion from another number changes nothing.
        other = json.loads(json.dumps(revoke))
        other["entry"][0]["changes"][0]["value"]["messages"][0].update(
            {"from": "447700900123", "id": "wamid.DELX"}
        )
        self._post(other)
        self.assertFalse(self._inbound_message("wamid.DEL0").customer_change)
        self.assertFalse(self._inbound_message("wamid.DELX").partner_id)
        self._post(revoke)
        original = self._inbound_message("wamid.DEL0")
        self.assertEqual(original.customer_change, "deleted")
        self.assertEqual(original.body, "I want 3 pairs", "never erased")
        deletion = self._inbound_message("wamid.DEL1")
        self.assertEqual(deletion.context_wamid, "wamid.DEL0")
        self.assertTrue(
            self._chatter(self.partner, "The customer deleted their message: I want")
        )
        # No reply: the salesperson's to-do still shows the message itself.
        self.assertEqual(len(self._reply_activities()), 1)
        self.assertIn("I want 3 pairs", str(self._reply_activities().note))
        self.assertNotIn("deleted", str(self._reply_activities().note))

    def test_edit_shows_the_new_text_linked_to_the_original(self):
        self._post(self._inbound("text", {"body": "3 pairs please"}, "wamid.ED0"))
        edit = self._recorded("edited_message/image", "wamid.ED1")
        edit["entry"][0]["changes"][0]["value"]["messages"][0]["edit"] = {
            "original_message_id": "wamid.ED0",
            "message": {"type": "text", "text": {"body": "2 pairs, not 3"}},
        }
        self._post(edit)
        self.assertTrue(self._chatter(self.partner, "Edited message: 2 pairs, not 3"))
        self.assertEqual(self._inbound_message("wamid.ED0").customer_change, "edited")
        self.assertEqual(self._inbound_message("wamid.ED1").context_wamid, "wamid.ED0")
        # Cloud API today: an edit is an unsupported message with no text.
        unsupported = self._recorded(
            "message/unsupported_with_type",
            "wamid.ED2",
            unsupported={"type": "edit"},
        )
        self._post(unsupported)
        self.assertTrue(self._chatter(self.partner, "The customer edited a message."))
        self.assertEqual(len(self._reply_activities()), 1)
