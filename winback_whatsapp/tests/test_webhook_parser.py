"""tools/webhook_parser.py, a pure module, on recorded Meta payloads (see
data/meta_webhooks.json) and on the simulator's (tools/webhook_simulator.py)."""

import json
from datetime import datetime
from pathlib import Path

from odoo.tests import BaseCase, tagged

from ..tools import webhook_simulator as simulator
from ..tools.webhook_parser import (
    CALL_PERMISSION,
    CONTACTS,
    DELETED,
    EDIT,
    FLOW,
    INTERACTIVE_ERROR,
    LOCATION,
    ORDER,
    REACTION,
    REACTION_REMOVED,
    SYSTEM,
    TEXT,
    UNSUPPORTED,
    Location,
    MetaError,
    OrderItem,
    PayloadError,
    SharedContact,
    flow_fields,
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


def _raw_message(name):
    """A copy of the one message of a recorded payload, to vary it."""
    payload = json.loads(json.dumps(RECORDED[name]))
    return payload["entry"][0]["changes"][0]["value"]["messages"][0]


def _message_of(msg):
    """A recorded message, changed, parsed in a payload of its own."""
    payload = json.loads(json.dumps(RECORDED["message/text"]))
    payload["entry"][0]["changes"][0]["value"]["messages"] = [msg]
    (change,) = parse_payload(payload)
    return change.messages[0]


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

    def test_media_placeholders_keep_caption_and_filename(self):
        self.assertEqual(_message("message/image").text, "[image]")
        self.assertEqual(_message("message/document").text, "[filename.pdf] caption")
        self.assertEqual(_message("message/video").text, "[video] caption")
        self.assertEqual(_message("message/audio").text, "[audio]")
        self.assertEqual(_message("message/voice").text, "[voice]")
        for name in ("message/image", "message/video", "message/voice"):
            self.assertEqual(_message(name).text_kind, TEXT)

    def test_location_with_name_address_and_map_link(self):
        chosen = _message("message/chosen_location")
        self.assertEqual((chosen.text, chosen.text_kind), ("", LOCATION))
        (place,) = chosen.details
        self.assertEqual(
            place,
            Location(
                latitude="37.4611978",
                longitude="-122.2164385",
                name="Facebook HQ",
                address="1 Hacker Way, Menlo Park, CA 94025",
                url="https://maps.google.com/?cid=2000000000000000000",
            ),
        )
        self.assertEqual(
            place.map_url,
            "https://www.google.com/maps/search/?api=1&query=37.4611978,-122.2164385",
        )
        (current,) = _message("message/current_location").details
        self.assertEqual((current.name, current.address), ("", ""))
        self.assertEqual(
            current.map_url,
            "https://www.google.com/maps/search/?api=1&query=12.25089,43.90539",
        )
        self.assertEqual(Location("", "").map_url, "")

    def test_order_lists_every_item(self):
        order = _message("message/order")
        self.assertEqual(
            (order.type, order.text_kind, order.text), ("order", ORDER, "")
        )
        self.assertEqual(
            order.details,
            (
                OrderItem("HAMBURGER", "3", "30", "ILS"),
                OrderItem("FRENCH_FRIES", "2", "35", "ILS"),
                OrderItem("SODA", "2", "10", "ILS"),
            ),
        )
        # Meta's own example carries the customer's note and a decimal price.
        msg = _raw_message("message/order")
        msg["order"] = {
            "catalog_id": "194836987003835",
            "text": "Love these!",
            "product_items": [
                {
                    "product_retailer_id": "di9ozbzfi4",
                    "quantity": 2,
                    "item_price": 7.99,
                    "currency": "USD",
                }
            ],
        }
        noted = _message_of(msg)
        self.assertEqual(noted.text, "Love these!")
        self.assertEqual(noted.details, (OrderItem("di9ozbzfi4", "2", "7.99", "USD"),))

    def test_contacts_names_and_numbers(self):
        shared = _message("message/contacts")
        self.assertEqual(shared.text_kind, CONTACTS)
        self.assertEqual(
            shared.details,
            (
                SharedContact("Chandler Bing", ("+1 555-555-5555",)),
                SharedContact("Monica", ("+1 666-666-6666",)),
                SharedContact("Rachel Green", ("+1 777-777-7777",)),
            ),
        )
        self.assertEqual(shared.wa_id, "972987654321", "the sender, not the cards")
        # A card with no formatted name, a phone given only as wa_id; the
        # reply to a contact request (no name at all).
        msg = _raw_message("message/contacts")
        msg["contacts"] = [
            {
                "name": {"first_name": "Barbara", "last_name": "Johnson"},
                "phones": [{"wa_id": "14125550829", "type": "MOBILE"}],
            },
            {
                "origin": "contact_request",
                "phones": [{"phone": "+1 650 555 1234", "wa_id": "16505551234"}],
            },
        ]
        self.assertEqual(
            _message_of(msg).details,
            (
                SharedContact("Barbara Johnson", ("14125550829",)),
                SharedContact("", ("+1 650 555 1234",)),
            ),
        )

    def test_flow_reply_fields_without_the_token(self):
        for name in (
            "flow_completion/completion",
            "flow_completion/without_flow_token",
        ):
            reply = _message(name)
            self.assertEqual(
                (reply.type, reply.text_kind, reply.text, reply.subtype),
                ("interactive", FLOW, "Sent", "nfm_reply"),
            )
            self.assertEqual(
                reply.details,
                (
                    ("comment_text", "Comment Text"),
                    ("delivery_rating", "4"),
                    ("purchase_rating", "2"),
                    ("recommend_radio", "0"),
                    ("cs_rating", "0"),
                ),
                name,
            )
            self.assertEqual(reply.context_wamid, "wamid.gvwegfretge==")
        self.assertEqual(
            flow_fields('{"flow_token": "x", "sizes": ["M", "L"], "qty": 2}'),
            (("sizes", "M, L"), ("qty", "2")),
        )
        self.assertEqual(flow_fields("not json"), (("response_json", "not json"),))
        self.assertEqual(flow_fields(None), ())
        self.assertEqual(flow_fields("[1]"), (("response_json", "[1]"),))

    def test_call_permission_reply(self):
        for answer in ("accept", "reject"):
            reply = _message(f"call_permission_update/{answer}")
            self.assertEqual((reply.text_kind, reply.text), (CALL_PERMISSION, answer))

    def test_interactive_error(self):
        broken = _message("message/interactive_message_with_err")
        self.assertEqual(broken.text_kind, INTERACTIVE_ERROR)
        self.assertEqual(
            broken.text, "Something went wrong: Unsupported webhook payload"
        )
        # A kind of interactive reply Meta adds later is named, not lost.
        msg = _raw_message("flow_completion/completion")
        msg["interactive"] = {"type": "product_reply", "product_reply": {}}
        later = _message_of(msg)
        self.assertEqual(
            (later.text_kind, later.text), (UNSUPPORTED, "interactive product_reply")
        )

    def test_reaction_is_worded_by_the_caller(self):
        message = _message("message/reaction")
        self.assertEqual((message.text, message.text_kind), ("\U0001f62e", REACTION))
        self.assertEqual(
            message.context_wamid, "wamid.yzxyzx=", "the message reacted to"
        )
        # An empty emoji, or none at all: the reaction was taken back.
        for name in ("message/unreaction_empty", "message/unreaction_no_emoji"):
            removed = _message(name)
            self.assertEqual((removed.text, removed.text_kind), ("", REACTION_REMOVED))
            self.assertEqual(removed.context_wamid, "wamid.yzxyzx=")

    def test_unsupported_types(self):
        message = _message("message/unsupported")
        self.assertEqual(
            (message.text, message.text_kind), ("unsupported", UNSUPPORTED)
        )
        typed = _message("message/unsupported_with_type")
        self.assertEqual((typed.text, typed.text_kind), ("pool", UNSUPPORTED))
        # A type Meta adds later: named, never an error.
        msg = _raw_message("message/text")
        msg["type"] = "poll_creation"
        msg["poll_creation"] = {"question": "?"}
        self.assertEqual(
            (_message_of(msg).text, _message_of(msg).text_kind),
            ("poll_creation", UNSUPPORTED),
        )

    def test_system_notices(self):
        system = _message("system/phone_number_change")
        self.assertEqual(
            (system.text_kind, system.subtype, system.new_wa_id),
            (SYSTEM, "user_changed_number", "972912345678"),
        )
        self.assertEqual(
            system.text, "User A changed from 972987654321 to 972912345678"
        )
        self.assertEqual(system.wa_id, "972987654321", "the old number")
        self.assertIsNone(system.profile_name, "no contacts in a system message")
        # Older payloads name the new number new_wa_id.
        msg = _raw_message("system/phone_number_change")
        msg["system"] = {
            "body": "User A changed from 972987654321 to 972912345678",
            "new_wa_id": "972912345678",
            "type": "user_changed_number",
        }
        self.assertEqual(_message_of(msg).new_wa_id, "972912345678")
        identity = _message("system/identity_change")
        self.assertEqual(
            (identity.text_kind, identity.subtype, identity.new_wa_id),
            (SYSTEM, "customer_identity_changed", None),
        )
        self.assertEqual(identity.text, "User identity changed")
        # A BSUID change carries no number (Meta's changelog, Aug 2026).
        msg["system"] = {
            "body": "User A changed their user ID",
            "user_id": "US.2",
            "previous_user_id": "US.1",
            "type": "user_changed_user_id",
        }
        changed_id = _message_of(msg)
        self.assertEqual(
            (changed_id.text_kind, changed_id.subtype, changed_id.new_wa_id),
            (SYSTEM, "user_changed_user_id", None),
        )

    def test_edits_and_deletions(self):
        edit = _message("edited_message/image")
        self.assertEqual(
            (edit.type, edit.text_kind, edit.text),
            ("edit", EDIT, "[image] Updated image caption"),
        )
        self.assertEqual(
            edit.original_wamid,
            "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=",
        )
        msg = _raw_message("edited_message/image")
        msg["edit"]["message"] = {"type": "text", "text": {"body": "2 pairs, not 3"}}
        self.assertEqual(_message_of(msg).text, "2 pairs, not 3")
        # Cloud API today: an edit arrives as an unsupported message,
        # without the new text nor the original (Meta's example).
        msg = _raw_message("message/unsupported_with_type")
        msg["unsupported"] = {"type": "edit"}
        unsupported_edit = _message_of(msg)
        self.assertEqual(
            (unsupported_edit.text_kind, unsupported_edit.text), (EDIT, "")
        )
        self.assertIsNone(unsupported_edit.original_wamid)
        revoke = _message("deleted_message/revoke")
        self.assertEqual((revoke.type, revoke.text_kind), ("revoke", DELETED))
        self.assertEqual(revoke.original_wamid, "<ORIGINAL_WHATSAPP_MESSAGE_ID>")

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
        self.assertEqual(change.messages[0].text_kind, INTERACTIVE_ERROR)

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
