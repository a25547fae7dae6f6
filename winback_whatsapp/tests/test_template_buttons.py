from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, HttpCase, new_test_user, tagged
from odoo.tools import mute_logger

from . import test_webhook
from .cloud_api_stub import PHONE_NUMBER_ID
from .test_send import WinbackSendCase

NUMBER = "+393331234567"


def meta_template(name, buttons, body="Ciao {{1}}, abbiamo novità per te."):
    """A template as Meta's message_templates listing returns it."""
    return {
        "id": f"9{len(name)}{len(buttons)}",
        "name": name,
        "language": "it",
        "status": "APPROVED",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": body},
            {"type": "BUTTONS", "buttons": buttons},
        ],
    }


def quick_reply(text):
    return {"type": "QUICK_REPLY", "text": text}


@tagged("post_install", "-at_install")
class TestTemplateButtons(WinbackSendCase, HttpCase):
    """A template with ["Tell me more", "Stop"] synced from Meta, sent to a
    customer through the Cloud API stub, then tapped over the signed webhook."""

    # The webhook tests' helpers: signed POSTs and Meta-shaped payloads.
    _post = test_webhook.TestWebhook._post
    _inbound = test_webhook.TestWebhook._inbound

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account.app_secret = test_webhook.SECRET
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"
        cls.admin_user = new_test_user(
            cls.env, "wb_buttons_admin", groups="winback_whatsapp.group_winback_manager"
        )
        cls.sales_user = new_test_user(
            cls.env, "wb_buttons_user", groups="winback_whatsapp.group_winback_user"
        )

    def _value(self, **value):
        value.setdefault(
            "metadata",
            {
                "display_phone_number": "390212345678",
                "phone_number_id": PHONE_NUMBER_ID,
            },
        )
        return test_webhook.TestWebhook._value(self, **value)

    def _sync(self, *remote):
        self.stub.state.templates = list(remote)
        self.account.with_user(self.admin_user).action_sync_templates()
        return self.env["winback.template"].search(
            [("name", "in", [r["name"] for r in remote])]
        )

    def _send_template(self, template):
        """The campaign's first step uses ``template``: enroll Roberta and send.
        Returns the enrollment, its sent message and the request body."""
        self.campaign.step_ids.filtered(
            lambda s: s.name == "Offer"
        ).template_id = template
        enrollment = self._start_and_queue()
        self.assertEqual(self._send(), 1)
        sent = self.stub.state.sent()
        self.assertEqual(len(sent), 1)
        return enrollment, enrollment.message_ids, sent[0]

    def _button_payloads(self, body):
        """{index: payload} of the quick-reply components of a send request."""
        payloads = {}
        for component in body["template"].get("components", []):
            if component["type"] != "button":
                continue
            self.assertEqual(component["sub_type"], "quick_reply")
            self.assertEqual(len(component["parameters"]), 1)
            self.assertEqual(component["parameters"][0]["type"], "payload")
            self.assertNotIn(component["index"], payloads, "one component per index")
            payloads[component["index"]] = component["parameters"][0]["payload"]
        return payloads

    def _tap(self, message, text, payload, wamid):
        response = self._post(
            self._inbound(
                "button",
                {"payload": payload, "text": text},
                wamid,
                context=message.wamid,
            )
        )
        self.assertEqual(response.status_code, 200)

    def _blacklisted(self):
        return bool(self.env["phone.blacklist"].search_count([("number", "=", NUMBER)]))

    def _confirmations(self):
        return self.env["winback.message"].search(
            [
                ("partner_id", "=", self.roberta.id),
                ("direction", "=", "outbound"),
                ("template_id", "=", False),
            ]
        )

    def _reply_activities(self):
        activity_type = self.env.ref(
            "winback_whatsapp.mail_activity_type_winback_reply"
        )
        return self.roberta.activity_ids.filtered(
            lambda a: a.activity_type_id == activity_type
        )

    # regression: issue 11 item 2 --------------------------------------

    def test_each_quick_reply_carries_its_own_payload(self):
        template = self._sync(
            meta_template(
                "winback_tell_more", [quick_reply("Tell me more"), quick_reply("Stop")]
            )
        )
        _enrollment, _message, body = self._send_template(template)
        payloads = self._button_payloads(body)
        self.assertEqual(sorted(payloads), ["0", "1"], "a component per button")
        self.assertNotEqual(payloads["0"], payloads["1"])
        # Stored one by one, in Meta's order; only "Stop" opts out.
        buttons = template.button_ids.sorted("index")
        self.assertEqual(buttons.mapped("text"), ["Tell me more", "Stop"])
        self.assertEqual(buttons.mapped("index"), [0, 1])
        self.assertEqual(buttons.mapped("is_stop"), [False, True])
        self.assertEqual(buttons.mapped("payload"), [payloads["0"], payloads["1"]])

    def test_tell_me_more_is_a_reply_not_a_stop(self):
        template = self._sync(
            meta_template(
                "winback_tell_more", [quick_reply("Tell me more"), quick_reply("Stop")]
            )
        )
        enrollment, message, body = self._send_template(template)
        payloads = self._button_payloads(body)
        self.assertIn("0", payloads, "the 'Tell me more' button has a payload")
        self._tap(message, "Tell me more", payloads["0"], "wamid.TAP.MORE")
        self.assertFalse(self._blacklisted(), "a positive answer is no STOP")
        self.assertFalse(self._confirmations(), "no opt-out confirmation queued")
        self.assertEqual(enrollment.state, "replied")
        activity = self._reply_activities()
        self.assertEqual(len(activity), 1)
        self.assertIn("Tell me more", activity.note)

    def test_stop_button_opts_out(self):
        template = self._sync(
            meta_template(
                "winback_tell_more", [quick_reply("Tell me more"), quick_reply("Stop")]
            )
        )
        enrollment, message, body = self._send_template(template)
        payloads = self._button_payloads(body)
        self.assertIn("1", payloads, "the 'Stop' button has a payload")
        self._tap(message, "Stop", payloads["1"], "wamid.TAP.STOP")
        self.assertTrue(self._blacklisted())
        self.assertEqual(enrollment.state, "opted_out")
        self.assertEqual(len(self._confirmations()), 1, "one confirmation queued")
        self.assertFalse(self._reply_activities(), "STOP is no sales lead")

    # buttons: sync, marking, access ------------------------------------

    def test_sync_keeps_meta_positions_and_payloads(self):
        url = {"type": "URL", "text": "Shop", "url": "https://example.com"}
        remote = meta_template(
            "winback_mixed", [url, quick_reply("Yes please"), quick_reply("Stop")]
        )
        template = self._sync(remote)
        buttons = template.button_ids.sorted("index")
        self.assertEqual(buttons.mapped("index"), [1, 2], "Meta counts every button")
        self.assertEqual(buttons.mapped("text"), ["Yes please", "Stop"])
        payloads = buttons.mapped("payload")
        self.assertTrue(all(p.startswith("WINBACK_") for p in payloads))
        self.assertNotIn("winback_mixed", "".join(payloads), "nothing leaks")
        # A second sync changes nothing; a renamed button is a new button.
        self._sync(remote)
        self.assertEqual(
            template.button_ids.sorted("index").mapped("payload"), payloads
        )
        remote["components"][1]["buttons"] = [quick_reply("Tell me more"), url]
        self._sync(remote)
        self.assertEqual(template.button_ids.mapped("index"), [0])
        self.assertEqual(template.button_ids.text, "Tell me more")
        self.assertFalse(template.button_ids.is_stop)
        self.assertNotIn(template.button_ids.payload, payloads)

    def test_administrator_marks_a_stop_button(self):
        template = self._sync(
            meta_template(
                "winback_no_more", [quick_reply("Yes please"), quick_reply("No more")]
            )
        )
        self.assertFalse(any(template.button_ids.mapped("is_stop")))
        with Form(template.with_user(self.admin_user)) as form:
            with form.button_ids.edit(1) as line:
                self.assertEqual(line.text, "No more")
                line.intent = "stop"
        enrollment, message, body = self._send_template(template)
        payloads = self._button_payloads(body)
        self._tap(message, "No more", payloads["1"], "wamid.TAP.NOMORE")
        self.assertTrue(self._blacklisted())
        self.assertEqual(enrollment.state, "opted_out")

    def test_button_reply_without_known_payload_matches_its_text(self):
        template = self._sync(
            meta_template(
                "winback_no_more", [quick_reply("Yes please"), quick_reply("No more")]
            )
        )
        template.button_ids.filtered(lambda b: b.text == "No more").is_stop = True
        enrollment, message, _body = self._send_template(template)
        # Meta returns the button's text as payload when none was sent.
        self._tap(message, "Yes please", "Yes please", "wamid.TAP.YES")
        self.assertFalse(self._blacklisted())
        self.assertEqual(enrollment.state, "replied")
        self._tap(message, "No more", "No more", "wamid.TAP.NO")
        self.assertTrue(self._blacklisted())

    def test_stop_keyword_button_is_always_stop(self):
        template = self._sync(
            meta_template("winback_stop_only", [quick_reply("Stop")])
        ).with_user(self.admin_user)
        with self.assertRaises(ValidationError), mute_logger("odoo.models"):
            template.button_ids.is_stop = False

    def test_users_read_buttons_administrators_edit_them(self):
        template = self._sync(
            meta_template(
                "winback_tell_more", [quick_reply("Tell me more"), quick_reply("Stop")]
            )
        )
        button = template.button_ids.sorted("index")[0]
        as_user = button.with_user(self.sales_user)
        self.assertEqual(as_user.read(["text", "is_stop"])[0]["text"], "Tell me more")
        with self.assertRaises(AccessError):
            as_user.write({"is_stop": True})
        with self.assertRaises(AccessError):
            as_user.unlink()
        button.with_user(self.admin_user).write({"is_stop": True})
        self.assertTrue(button.is_stop)
