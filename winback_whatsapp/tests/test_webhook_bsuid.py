"""Customers with no visible phone number: Meta's business-scoped user IDs
(BSUID), over real HTTP with signed payloads, as Meta sends them
(https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids)."""

from datetime import datetime, time, timedelta, timezone

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import BaseCase, HttpCase, tagged

from ..tools import webhook_simulator as simulator
from ..tools.webhook_parser import parse_payload
from .cloud_api_stub import PHONE_NUMBER_ID, TOKEN, WABA_ID
from .common import post_webhook, run_job, start_cloud_api_stub

SECRET = "test-app-secret"
PNID = PHONE_NUMBER_ID
BSUID = "IT.1502576394655843"
NEW_BSUID = "IT.9988776655443322"
UNKNOWN_BSUID = "IT.4242424242424242"


@tagged("post_install", "-at_install")
class TestWebhookBsuid(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Meta's Cloud API, played by a local server that checks every send.
        cls.stub = start_cloud_api_stub(cls)
        cls.env.company.partner_id.tz = "UTC"
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Main number",
                "provider": "meta",
                "api_base_url": cls.stub.base_url,
                "phone_number_id": PNID,
                "waba_id": WABA_ID,
                "access_token": TOKEN,
                "app_secret": SECRET,
                "verify_token": "verify-me",
                "messages_per_second": 0,
            }
        )
        cls.partner = cls.env["res.partner"].create(
            {"name": "Mario Rossi", "mobile": "+393331234567"}
        )
        cls.template = cls.env["winback.template"].create(
            {
                "name": "winback_cold_offer",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "category": "marketing",
                "body": "Ci manchi! Torna a trovarci.",
            }
        )
        cls.cold = cls.env.ref("winback_whatsapp.segment_cold")
        cls.campaign = cls.env["winback.campaign"].create(
            {
                "name": "Cold win-back",
                "account_id": cls.account.id,
                "segment_ids": [(6, 0, cls.cold.ids)],
                "holdout_percent": 0,
                "daily_cap": 0,
                "window_start": 0,
                "window_end": 24,
                "window_monday": True,
                "window_tuesday": True,
                "window_wednesday": True,
                "window_thursday": True,
                "window_friday": True,
                "window_saturday": True,
                "window_sunday": True,
                "step_ids": [
                    (0, 0, {"name": "Offer", "template_id": cls.template.id,
                            "lever": "offer", "delay_days": 0}),
                    (0, 0, {"name": "Last call", "template_id": cls.template.id,
                            "lever": "offer", "delay_days": 3}),
                ],
            }
        )  # fmt: skip
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    def setUp(self):
        super().setUp()
        with self.stub.state.lock:
            self.stub.state.requests.clear()

    # helpers ---------------------------------------------------------

    def _post(self, payload):
        """A signed POST, as Meta makes it, then a run of the processing
        cron (in a cursor of its own, as ir.cron runs it)."""
        return post_webhook(self, self.url, payload, SECRET)

    def _value(self, field="messages", **value):
        value.setdefault("metadata", simulator.metadata(PNID, "15550001111"))
        return simulator.envelope(
            simulator.change_value(**value), field=field, waba_id="WABA_ID"
        )

    def _text(
        self, wamid, body, user_id=BSUID, wa_id=None, username=None, ts=1767225600
    ):
        """A text message as Meta sends it since April 2026: ``from_user_id``
        always, ``from`` only when the phone number may be shared."""
        contact = {"profile": {"name": "Mario"}, "user_id": user_id}
        msg = {
            "from_user_id": user_id,
            "id": wamid,
            "timestamp": str(ts),
            "type": "text",
            "text": {"body": body},
        }
        if username:
            contact["profile"]["username"] = username
        if wa_id:
            contact["wa_id"] = wa_id
            msg["from"] = wa_id
        return self._value(contacts=[contact], messages=[msg])

    def _stop_preference(self, user_id, value="stop", wa_id=None, ts=1767225700):
        """Meta's ``user_preferences`` change; a customer who hides their
        number is named by ``user_id`` only."""
        pref = {
            "user_id": user_id,
            "detail": f"User requested to {value} marketing messages",
            "category": "marketing_messages",
            "value": value,
            "timestamp": ts,
        }
        contact = {"profile": {"name": "Mario"}, "user_id": user_id}
        if wa_id:
            pref["wa_id"] = contact["wa_id"] = wa_id
        return self._value(
            field="user_preferences", contacts=[contact], user_preferences=[pref]
        )

    def _bsuid_customer(self, name="Giulia Verdi", bsuid=BSUID, consent=True):
        """A customer known by their WhatsApp user ID only, 200 days after
        their last purchase (Cold segment)."""
        partner = self.env["res.partner"].create(
            {
                "name": name,
                "whatsapp_bsuid": bsuid,
                "winback_consent_date": consent and fields.Datetime.now(),
                "winback_consent_source": consent and "Shop counter",
            }
        )
        product = self.env["product.product"].create(
            {"name": "Espresso beans", "list_price": 25.0, "type": "consu"}
        )
        order = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [(0, 0, {"product_id": product.id})],
            }
        )
        order.action_confirm()
        today = fields.Date.context_today(partner.with_context(tz="UTC"))
        order.date_order = datetime.combine(today - timedelta(days=200), time(12))
        self.env["winback.segment.recompute"]._recompute_partners(partner)
        run_job(self, "winback.segment.recompute", "_cron_recompute")
        return partner

    def _start_and_queue(self):
        self.campaign.action_start()
        self.env["winback.enroller"]._enroll(self.campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        return self.campaign.enrollment_ids

    def _send(self):
        return run_job(self, "winback.sender", "_cron_send")

    def _events(self):
        return self.env["winback.webhook.event"].search([])

    def _message(self, wamid):
        return self.env["winback.message"].search([("wamid", "=", wamid)])

    def _chatter(self, partner, text):
        return partner.message_ids.filtered(lambda m: text in (m.body or ""))

    # tests -----------------------------------------------------------

    def test_bsuid_only_message_is_kept_unmatched(self):
        """Regression: a message without ``from`` became the number "+", the
        event failed and the reply was lost. It waits in Unmatched replies,
        with the BSUID and the username, and linking it records them."""
        self._post(
            self._text(
                "wamid.BS1", "Do you still sell it?", UNKNOWN_BSUID, username="@giulia"
            )
        )
        self.assertEqual(self._events().state, "done")
        message = self._message("wamid.BS1")
        self.assertEqual(len(message), 1, "the reply is kept")
        self.assertFalse(message.partner_id)
        self.assertFalse(message.phone_e164, "no number is made up")
        self.assertEqual(message.whatsapp_bsuid, UNKNOWN_BSUID)
        self.assertEqual(message.whatsapp_username, "@giulia")
        self.assertIn(
            message,
            self.env["winback.message"].search(
                [("direction", "=", "inbound"), ("partner_id", "=", False)]
            ),
        )
        # Linking it to the customer records who they are on WhatsApp: their
        # next message, still without a number, finds them.
        giulia = self.env["res.partner"].create({"name": "Giulia Verdi"})
        message.partner_id = giulia
        message.action_link_partner()
        self.assertEqual(giulia.whatsapp_bsuid, UNKNOWN_BSUID)
        self.assertEqual(giulia.whatsapp_username, "@giulia")
        self.assertTrue(self._chatter(giulia, "Do you still sell it?"))
        self._post(self._text("wamid.BS2", "Red, please", UNKNOWN_BSUID))
        self.assertEqual(self._message("wamid.BS2").partner_id, giulia)
        self.assertTrue(self._chatter(giulia, "Red, please"))

    def test_create_partner_from_bsuid_only_reply(self):
        self._post(self._text("wamid.BS3", "Hello", UNKNOWN_BSUID, username="@luca"))
        message = self._message("wamid.BS3")
        message.action_create_partner()
        partner = message.partner_id
        self.assertEqual(partner.name, "Mario", "the WhatsApp profile name")
        self.assertFalse(partner.mobile)
        self.assertEqual(partner.whatsapp_bsuid, UNKNOWN_BSUID)
        self.assertEqual(partner.whatsapp_username, "@luca")

    def test_number_then_bsuid_only_is_one_customer(self):
        """The first message with a number and a BSUID records the BSUID on
        the customer found by number; a later one without the number still
        reaches them: chatter, campaign replied, to-do for the salesperson."""
        enrollment = self.env["winback.enrollment"].create(
            {
                "partner_id": self.partner.id,
                "campaign_id": self.campaign.id,
                "phone_e164": "+393331234567",
            }
        )
        self._post(
            self._text(
                "wamid.N1", "Ciao", BSUID, wa_id="393331234567", username="@mario"
            )
        )
        self.assertEqual(self._message("wamid.N1").partner_id, self.partner)
        self.assertEqual(self.partner.whatsapp_bsuid, BSUID)
        self.assertEqual(self.partner.whatsapp_username, "@mario")
        enrollment.state = "running"
        self._post(self._text("wamid.N2", "Is the offer still on?", BSUID))
        reply = self._message("wamid.N2")
        self.assertEqual(reply.partner_id, self.partner)
        self.assertEqual(self._events().mapped("state"), ["done", "done"])
        self.assertTrue(self._chatter(self.partner, "Is the offer still on?"))
        self.assertEqual(enrollment.state, "replied")
        self.assertEqual(reply.enrollment_id, enrollment)
        self.assertTrue(
            self.partner.activity_ids.filtered(
                lambda a: a.activity_type_id
                == self.env.ref("winback_whatsapp.mail_activity_type_winback_reply")
            )
        )

    def test_stop_from_bsuid_only_user_opts_out(self):
        """STOP from a customer who hides their number: no number to
        blacklist, but their user ID is opted out; their campaign ends, the
        queued promotion is cancelled, the confirmation goes to their user
        ID, and the send cron refuses any later promotion."""
        giulia = self._bsuid_customer()
        enrollment = self._start_and_queue()
        self.assertEqual(enrollment.partner_id, giulia, "eligible without a number")
        queued = enrollment.message_ids
        self.assertEqual(queued.state, "queued")
        self._post(self._text("wamid.S1", "STOP", BSUID))
        self.assertEqual(self._events().state, "done")
        self.assertEqual(self._message("wamid.S1").partner_id, giulia)
        self.assertEqual(enrollment.state, "opted_out")
        self.assertEqual(queued.state, "cancelled")
        optout = self.env["winback.bsuid.optout"].search([("bsuid", "=", BSUID)])
        self.assertTrue(optout.active)
        self.assertIn("opted out", giulia._winback_marketing_refusal(False) or "")
        confirmation = self.env["winback.message"].search(
            [("partner_id", "=", giulia.id), ("direction", "=", "outbound"),
             ("state", "=", "queued"), ("template_id", "=", False)]
        )  # fmt: skip
        self.assertEqual(confirmation.whatsapp_bsuid, BSUID)
        # A promotion queued anyway (by hand, or before the STOP was read).
        promotion = self.env["winback.message"].create(
            {
                "direction": "outbound",
                "partner_id": giulia.id,
                "account_id": self.account.id,
                "company_id": self.env.company.id,
                "template_id": self.template.id,
                "whatsapp_bsuid": BSUID,
            }
        )
        self._send()
        self.assertEqual(promotion.state, "cancelled")
        self.assertIn("opted out", promotion.error_message)
        sent = self.stub.state.sent()
        self.assertEqual(len(sent), 1, "only the confirmation")
        self.assertEqual(sent[0]["recipient"], BSUID)
        self.assertEqual(sent[0]["type"], "text")
        # Eligibility agrees: not enrolled again.
        counts = self.env["winback.enroller"]._eligibility_counts(self.campaign)
        self.assertEqual(counts.get("blacklisted"), 1)

    def test_stop_from_unknown_bsuid_holds_once_linked(self):
        """A STOP from a user ID no customer has is kept (Unmatched replies)
        and obeyed at once: the customer it is linked to later gets no
        promotion."""
        self._post(self._text("wamid.S2", "stop", UNKNOWN_BSUID))
        self.assertTrue(
            self.env["winback.bsuid.optout"].search([("bsuid", "=", UNKNOWN_BSUID)])
        )
        message = self._message("wamid.S2")
        self.assertFalse(message.partner_id)
        giulia = self.env["res.partner"].create(
            {
                "name": "Giulia",
                "winback_consent_date": fields.Datetime.now(),
                "winback_consent_source": "Web form",
            }
        )
        message.partner_id = giulia
        message.action_link_partner()
        self.assertEqual(giulia.whatsapp_bsuid, UNKNOWN_BSUID)
        self.assertTrue(giulia._winback_marketing_refusal(False))

    def test_user_preferences_stop_and_resume_by_user_id(self):
        giulia = self._bsuid_customer()
        enrollment = self._start_and_queue()
        self._post(self._stop_preference(BSUID))
        self.assertEqual(enrollment.state, "opted_out")
        self.assertTrue(giulia._winback_marketing_refusal(False))
        self.assertTrue(self._chatter(giulia, "stopped marketing messages"))
        # A resume older than the stop is ignored; a later one frees them.
        self._post(self._stop_preference(BSUID, "resume", ts=1767225600))
        self.assertTrue(giulia._winback_marketing_refusal(False))
        self._post(self._stop_preference(BSUID, "resume", ts=1767225800))
        self.assertFalse(giulia._winback_marketing_refusal(False))

    def test_status_with_only_recipient_user_id(self):
        """Statuses of a message sent to a user ID name no number."""
        giulia = self._bsuid_customer()
        enrollment = self._start_and_queue()
        self.assertEqual(self._send(), 1)
        message = enrollment.message_ids
        self.assertEqual(message.state, "sent")
        (body,) = self.stub.state.sent()
        self.assertEqual(body["recipient"], BSUID, "Meta's field for a user ID")
        self.assertNotIn("to", body)
        self.assertEqual(body["template"]["name"], "winback_cold_offer")
        status = {
            "id": message.wamid,
            "status": "delivered",
            "timestamp": "1767225900",
            "recipient_user_id": BSUID,
        }
        self._post(
            self._value(
                contacts=[{"profile": {"name": "Giulia"}, "user_id": BSUID}],
                statuses=[status],
            )
        )
        self.assertEqual(self._events().mapped("state"), ["done"])
        self.assertEqual(message.state, "delivered")
        self.assertEqual(giulia.whatsapp_bsuid, BSUID)

    def test_status_to_a_number_records_the_user_id(self):
        """A status of a message sent to a number names the number and the
        user ID: the customer's user ID is recorded."""
        sent = self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "sent",
                "partner_id": self.partner.id,
                "account_id": self.account.id,
                "company_id": self.env.company.id,
                "phone_e164": "+393331234567",
                "wamid": "wamid.OUT9",
            }
        )
        status = {
            "id": "wamid.OUT9",
            "status": "read",
            "timestamp": "1767225900",
            "recipient_id": "393331234567",
            "recipient_user_id": BSUID,
        }
        self._post(self._value(statuses=[status]))
        self.assertEqual(sent.state, "read")
        self.assertEqual(self.partner.whatsapp_bsuid, BSUID)

    def test_send_prefers_the_number(self):
        """A customer with a number and a user ID gets the message at the
        number (Meta advises it; given both, Meta uses ``to``)."""
        giulia = self._bsuid_customer()
        giulia.mobile = "+393339876543"
        self._start_and_queue()
        self.assertEqual(self._send(), 1)
        (body,) = self.stub.state.sent()
        self.assertEqual(body["to"], "+393339876543")
        self.assertNotIn("recipient", body)

    def test_user_changed_user_id_keeps_one_partner(self):
        """WhatsApp replaces the user ID when the customer changes number,
        and says so: the customer stays one partner under the new ID, with
        their opt-out."""
        giulia = self._bsuid_customer()
        self.env["winback.bsuid.optout"]._winback_add([BSUID], "test STOP")
        notice = {
            "id": "wamid.SYS1",
            "timestamp": "1767225600",
            "type": "system",
            "system": {
                "body": "User Giulia changed their user ID",
                "user_id": NEW_BSUID,
                "previous_user_id": BSUID,
                "type": "user_changed_user_id",
            },
        }
        self._post(self._value(messages=[notice]))
        self.assertEqual(self._events().state, "done")
        self.assertEqual(self._message("wamid.SYS1").partner_id, giulia)
        self.assertEqual(giulia.whatsapp_bsuid, NEW_BSUID)
        self.assertTrue(self._chatter(giulia, NEW_BSUID))
        self.assertTrue(
            self.env["winback.bsuid.optout"]._winback_is_opted_out([NEW_BSUID]),
            "the opt-out follows",
        )
        self._post(self._text("wamid.SYS2", "Ciao again", NEW_BSUID))
        self.assertEqual(self._message("wamid.SYS2").partner_id, giulia)
        # A message from the previous user ID processed late (a retry) does
        # not take the customer back to it.
        self._post(self._text("wamid.SYS0", "Old one", BSUID))
        self.assertEqual(giulia.whatsapp_bsuid, NEW_BSUID)
        self.assertEqual(
            self.env["res.partner"].search_count(
                [("whatsapp_bsuid", "in", [BSUID, NEW_BSUID])]
            ),
            1,
        )

    def test_user_id_update_webhook_keeps_one_partner(self):
        giulia = self._bsuid_customer()
        update = {
            "detail": "User id for Giulia has been updated.",
            "user_id": {"previous": BSUID, "current": NEW_BSUID},
            "timestamp": "1767225600",
        }
        self._post(
            self._value(
                field="user_id_update",
                contacts=[{"profile": {"name": "Giulia"}}],
                user_id_update=[update],
            )
        )
        self.assertEqual(self._events().state, "done")
        self.assertEqual(giulia.whatsapp_bsuid, NEW_BSUID)
        self._post(self._text("wamid.U1", "Still me", NEW_BSUID))
        self.assertEqual(self._message("wamid.U1").partner_id, giulia)

    def test_bsuid_fields_on_forms(self):
        """The partner form shows the WhatsApp username and user ID next to
        the phone, read-only for a salesperson; the unmatched reply too."""
        user = self.env["res.users"].create(
            {
                "name": "Sally Sales",
                "login": "sally_bsuid",
                "groups_id": [
                    (6, 0, [self.env.ref("winback_whatsapp.group_winback_user").id,
                            self.env.ref("base.group_user").id])
                ],
            }
        )  # fmt: skip
        giulia = self._bsuid_customer()
        giulia.whatsapp_username = "@giulia"
        arch = (
            self.env["res.partner"]
            .with_user(user)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertIn('name="whatsapp_bsuid"', arch)
        self.assertRegex(arch, r'<field name="whatsapp_bsuid"[^>]*readonly="1"')
        self.assertEqual(
            giulia.with_user(user).read(["whatsapp_bsuid", "whatsapp_username"])[0][
                "whatsapp_bsuid"
            ],
            BSUID,
        )

    def test_salesperson_answers_bsuid_only_customer(self):
        """The partner form's WhatsApp button answers a customer known by no
        number: the message goes to their user ID."""
        sally = self.env["res.users"].create(
            {
                "name": "Sally Sales",
                "login": "sally_answer",
                "groups_id": [
                    (6, 0, [self.env.ref("winback_whatsapp.group_winback_user").id,
                            self.env.ref("base.group_user").id])
                ],
            }
        )  # fmt: skip
        giulia = self._bsuid_customer()
        now = int(datetime.now(timezone.utc).timestamp())
        self._post(self._text("wamid.C1", "Do you deliver?", BSUID, ts=now))
        self.assertEqual(self._message("wamid.C1").partner_id, giulia)
        composer = (
            self.env["winback.composer"]
            .with_user(sally)
            .create({"partner_id": giulia.id, "body": "Yes, tomorrow!"})
        )
        self.assertTrue(composer.window_open)
        self.assertEqual(composer.whatsapp_bsuid, BSUID)
        composer.action_send()
        self.assertEqual(self._send(), 1)
        (body,) = self.stub.state.sent()
        self.assertEqual(body["recipient"], BSUID)
        self.assertEqual(body["text"]["body"], "Yes, tomorrow!")
        self.assertTrue(self._chatter(giulia, "Yes, tomorrow!"))

    def test_optouts_listed_for_managers(self):
        """Win-back managers see the user IDs that opted out; salespeople do
        not, and nobody edits them by hand."""
        self._post(self._text("wamid.L1", "STOP", UNKNOWN_BSUID))

        def user(login, group):
            return self.env["res.users"].create(
                {
                    "name": login,
                    "login": login,
                    "groups_id": [(6, 0, [self.env.ref(group).id])],
                }
            )

        manager = user("wb_manager_bsuid", "winback_whatsapp.group_winback_manager")
        sales = user("wb_user_bsuid", "winback_whatsapp.group_winback_user")
        Optout = self.env["winback.bsuid.optout"]
        self.assertEqual(
            Optout.with_user(manager).search([]).mapped("bsuid"), [UNKNOWN_BSUID]
        )
        with self.assertRaises(AccessError):
            Optout.with_user(sales).search([])
        with self.assertRaises(AccessError):
            Optout.with_user(manager).search([]).write({"active": False})


@tagged("post_install", "-at_install")
class TestBsuidParser(BaseCase):
    """Meta's BSUID shapes, as its Business-scoped user IDs page shows them."""

    def _change(self, field="messages", **value):
        value = {"messaging_product": "whatsapp", "metadata": {}, **value}
        (change,) = parse_payload(simulator.envelope(value, field=field))
        return change

    def test_message_without_number(self):
        change = self._change(
            contacts=[
                {
                    "profile": {"name": "Sheena Nelson", "username": "@sheena"},
                    "user_id": "US.13491208655302741918",
                    "parent_user_id": "US.ENT.11815799212886844830",
                }
            ],
            messages=[
                {
                    "from_user_id": "US.13491208655302741918",
                    "from_parent_user_id": "US.ENT.11815799212886844830",
                    "id": "wamid.X",
                    "timestamp": "1749416383",
                    "type": "text",
                    "text": {"body": "Does it come in another color?"},
                }
            ],
        )
        (msg,) = change.messages
        self.assertIsNone(msg.wa_id)
        self.assertEqual(msg.user_id, "US.13491208655302741918")
        self.assertEqual(msg.username, "@sheena")
        self.assertEqual(msg.profile_name, "Sheena Nelson")
        self.assertEqual(msg.text, "Does it come in another color?")

    def test_statuses_preferences_and_user_id_changes(self):
        change = self._change(
            statuses=[
                {"id": "wamid.Y", "status": "delivered", "timestamp": "1750030073",
                 "recipient_user_id": "US.1349"}
            ],
            user_preferences=[
                {"user_id": "US.1349", "category": "marketing_messages",
                 "value": "stop", "timestamp": 1731705721}
            ],
            messages=[
                {"id": "wamid.Z", "timestamp": "1750269342", "type": "system",
                 "system": {"body": "changed", "user_id": "US.2", "previous_user_id":
                            "US.1", "type": "user_changed_user_id"}}
            ],
        )  # fmt: skip
        self.assertEqual(change.statuses[0].recipient_user_id, "US.1349")
        self.assertIsNone(change.statuses[0].recipient_id)
        self.assertEqual(change.preferences[0].user_id, "US.1349")
        self.assertIsNone(change.preferences[0].wa_id)
        (notice,) = change.messages
        self.assertEqual(
            (notice.previous_user_id, notice.new_user_id), ("US.1", "US.2")
        )
        update = self._change(
            field="user_id_update",
            user_id_update=[
                {"user_id": {"previous": "US.1", "current": "US.2"},
                 "timestamp": "1750269342"}
            ],
        ).user_id_updates[0]  # fmt: skip
        self.assertEqual((update.previous_user_id, update.user_id), ("US.1", "US.2"))
        self.assertIsNone(update.wa_id)
