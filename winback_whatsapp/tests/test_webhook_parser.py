"""tools/webhook_parser.py, a pure module, on recorded Meta payloads (see
data/meta_webhooks.json) and on the simulator's (tools/webhook_simulator.py)."""

import json
from datetime import datetime
from pathlib import Path

from odoo.tests import BaseCase, tagged

from ..tools import webhook_simulator as simulator
from ..tools.webhook_parser import (
    REACTION,
    TEXT,
    UNSUPPORTED,
    MetaError,
    PayloadError,
    parse_payload,
    parse_timestamp,
)

RECORDED = json.loads(
    (Path(__file__).parent / "data" / "meta_webhooks.json").read_text("utf-8")
)
PNID = "1122334455667"


def _change(name):
    (change,) = parse_payload(RECORDED[name])
    return change


def _message(name):
    change = _change(name)
    (message,) = change.messages
    return message


@tagged("post_install", "-at_install")
class TestWebhookParser(BaseCase):
    def test_timestamp(self):
        self.assertEqual(
            parse_timestamp("1697043223"), datetime(2023, 10, 11, 16, 53, 43)
        )
        self.assertEqual(parse_timestamp(1731705721), datetime(2024, 11, 15, 21, 22, 1))
        for unreadable in (None, "", "soon", "1.5", [], True, 10**20):
            self.assertIsNone(parse_timestamp(unreadable), unreadable)

    def test_text_message(self):
        change = _change("message/text")
        self.assertEqual(change.field, "messages")
        self.assertEqual(change.phone_number_id, PNID)
        self.assertEqual(
            (change.statuses, change.preferences, change.errors), ((), (), ())
        )
        message = change.messages[0]
        self.assertEqual(message.wamid, "wamid.xyzxyz")
        self.assertEqual(message.wa_id, "972987654321")
        self.assertEqual(message.profile_name, "Test Name")
        self.assertEqual(message.type, "text")
        self.assertEqual((message.text, message.text_kind), ("Body Text", TEXT))
        self.assertIsNone(message.payload)
        self.assertIsNone(message.context_wamid)
        self.assertEqual(message.timestamp, datetime(2023, 10, 11, 16, 53, 43))

    def test_reply_names_the_message_it_answers(self):
        message = _message("message/reply")
        self.assertEqual(message.text, "replied text")
        self.assertEqual(message.context_wamid, "wamid.xyzxyz==")
        # A forwarded message has a context, but answers nothing.
        self.assertIsNone(_message("message/document").context_wamid)

    def test_media_and_location(self):
        self.assertEqual(_message("message/image").text, "[image]")
        self.assertEqual(_message("message/document").text, "[filename.pdf] caption")
        self.assertEqual(
            _message("message/current_location").text, "[location]  12.25089 43.90539"
        )

    def test_reaction_is_worded_by_the_caller(self):
        message = _message("message/reaction")
        self.assertEqual((message.text, message.text_kind), ("\U0001f62e", REACTION))
        self.assertEqual(
            message.context_wamid, "wamid.yzxyzx=", "the message reacted to"
        )
        removed = _message("message/unreaction_empty")
        self.assertEqual((removed.text, removed.text_kind), ("", REACTION))

    def test_unsupported_types(self):
        for name in ("message/unsupported", "message/unsupported_with_type"):
            message = _message(name)
            self.assertEqual(
                (message.text, message.text_kind), ("unsupported", UNSUPPORTED)
            )
        system = _message("system/phone_number_change")
        self.assertEqual((system.text, system.text_kind), ("system", UNSUPPORTED))
        self.assertIsNone(system.profile_name, "no contacts in a system message")

    def test_buttons_and_interactive_replies(self):
        tap = _message("callback_button/quick_reply")
        self.assertEqual(
            (tap.type, tap.text, tap.payload), ("button", "title", "callback_data")
        )
        self.assertEqual(tap.context_wamid, "wamid.xyzxyz==")
        self.assertIsNone(
            _message("callback_button/quick_reply_without_context").context_wamid
        )
        for name in ("callback_button/button", "callback_selection/callback"):
            reply = _message(name)
            self.assertEqual(reply.type, "interactive")
            self.assertEqual((reply.text, reply.payload), ("title", "callback_data"))

    def test_value_errors(self):
        change = _change("message/interactive_message_with_err")
        self.assertEqual(
            change.errors,
            (
                MetaError(
                    "131000", "Something went wrong", "Unsupported webhook payload"
                ),
            ),
        )
        self.assertEqual(change.messages[0].text, "")

    def test_statuses(self):
        for state in ("sent", "delivered", "read"):
            change = _change(f"message_status/{state}")
            (status,) = change.statuses
            self.assertEqual((status.wamid, status.status), ("wamid.xyzxyz", state))
            self.assertEqual(status.recipient_id, "972987654321")
            self.assertIsNone(status.biz_opaque_callback_data)
            self.assertIsNone(status.error)
            self.assertFalse(change.messages, "the contacts of a status are no message")
        (sent,) = _change("message_status/sent").statuses
        self.assertEqual(sent.timestamp, datetime(2023, 10, 25, 20, 49, 5))
        (tracked,) = _change("message_status/with_tracker").statuses
        self.assertEqual(tracked.biz_opaque_callback_data, "some data")

    def test_failed_status_error(self):
        (status,) = _change("message_status/failed").statuses
        self.assertEqual(status.status, "failed")
        self.assertEqual(status.error.code, "130472")
        self.assertEqual(status.error.title, "User's number is part of an experiment")
        self.assertEqual(
            status.error.text,
            "User's number is part of an experiment: Failed to send message because "
            "this user's phone number is part of an experiment",
        )
        self.assertEqual(MetaError("1", "", "only details").text, "only details")
        self.assertEqual(MetaError("1", "only title").text, "only title")

    def test_user_preferences(self):
        change = _change("user_marketing_preferences/resume")
        self.assertEqual(change.field, "user_preferences")
        self.assertEqual(change.phone_number_id, "106540352242922")
        (pref,) = change.preferences
        self.assertEqual(
            (pref.wa_id, pref.category, pref.value),
            ("16505551234", "marketing_messages", "resume"),
        )
        self.assertEqual(pref.timestamp, datetime(2024, 11, 15, 21, 22, 1))
        (signup,) = _change("user_marketing_preferences/signup").preferences
        self.assertEqual(signup.value, "signup")

    def test_other_fields_carry_no_event(self):
        for name in (
            "account_update/account_deleted",
            "template_status_update/approved",
        ):
            change = _change(name)
            self.assertIsNone(change.phone_number_id)
            self.assertEqual(
                (change.messages, change.statuses, change.preferences, change.errors),
                ((), (), (), ()),
            )

    def test_every_change_of_every_entry(self):
        first, second = RECORDED["message/text"], RECORDED["message_status/read"]
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {"id": "1", "changes": first["entry"][0]["changes"] * 2},
                second["entry"][0],
            ],
        }
        changes = parse_payload(payload)
        self.assertEqual([len(c.messages) for c in changes], [1, 1, 0])
        self.assertEqual([len(c.statuses) for c in changes], [0, 0, 1])
        self.assertEqual(parse_payload({"object": "whatsapp_business_account"}), [])

    def test_malformed_payloads_raise(self):
        for payload in (
            [],
            {"entry": "not-a-list-of-entries"},
            {"entry": ["not an object"]},
            {"entry": [{"changes": {"value": {}}}]},
            {"entry": [{"changes": [{"value": {"messages": "hello"}}]}]},
            {
                "entry": [
                    {
                        "changes": [
                            {"value": {"messages": [{"type": "text", "text": "x"}]}}
                        ]
                    }
                ]
            },
        ):
            with self.assertRaises(PayloadError, msg=payload):
                parse_payload(payload)

    def test_simulator_payloads_read_back(self):
        """What *Simulate reply* and the tests build parses like Meta's."""
        reply = simulator.text_reply(
            PNID,
            "393331234567",
            "wamid.SIM1",
            "Hello",
            1767225600,
            profile_name="Mario",
            context_wamid="wamid.OUT1",
        )
        (change,) = parse_payload(reply)
        (message,) = change.messages
        self.assertEqual(change.phone_number_id, PNID)
        self.assertEqual(
            (message.wamid, message.wa_id, message.profile_name, message.text),
            ("wamid.SIM1", "393331234567", "Mario", "Hello"),
        )
        self.assertEqual(message.context_wamid, "wamid.OUT1")
        self.assertEqual(message.timestamp, datetime(2026, 1, 1))
        self.assertEqual(
            set(reply["entry"][0]["changes"][0]["value"]),
            set(RECORDED["message/reply"]["entry"][0]["changes"][0]["value"]),
            "the same keys as Meta's",
        )
        tap = simulator.button_tap(
            PNID, "393331234567", "wamid.SIM2", "Stop", "WINBACK_X", 1767225600
        )
        (message,) = parse_payload(tap)[0].messages
        self.assertEqual(
            (message.type, message.text, message.payload),
            ("button", "Stop", "WINBACK_X"),
        )
        self.assertIsNone(message.context_wamid)
        status = simulator.status_update(
            PNID,
            "wamid.OUT1",
            "failed",
            1767225600,
            "393331234567",
            errors=[{"code": 131050, "title": "Stopped"}],
        )
        (event,) = parse_payload(status)[0].statuses
        self.assertEqual(
            (event.status, event.error.code, event.error.text),
            ("failed", "131050", "Stopped"),
        )
        stop = simulator.preference_change(PNID, "393331234567", "stop", 1767225600)
        (change,) = parse_payload(stop)
        self.assertEqual(change.field, "user_preferences")
        self.assertEqual(change.preferences[0].value, "stop")
        self.assertEqual(change.preferences[0].timestamp, datetime(2026, 1, 1))
