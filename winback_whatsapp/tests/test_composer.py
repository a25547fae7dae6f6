from datetime import datetime, timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import Form, freeze_time, new_test_user, tagged

from .test_send import WinbackSendCase


@tagged("post_install", "-at_install")
class TestComposer(WinbackSendCase):
    """Sales staff answer from the partner form: free text while the
    customer's last inbound message is under 24 hours old, else a template."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = new_test_user(
            cls.env, "wb_sales", groups="winback_whatsapp.group_winback_user"
        )

    def _inbound(self, when):
        return self.env["winback.message"].create(
            {
                "direction": "inbound",
                "partner_id": self.roberta.id,
                "account_id": self.account.id,
                "phone_e164": self.roberta.phone_sanitized,
                "body": "Until when is it valid?",
                "state": "received",
                "received_at": when,
            }
        )

    def _composer(self):
        return Form(
            self.env["winback.composer"]
            .with_user(self.salesman)
            .with_context(default_partner_id=self.roberta.id)
        )

    def test_free_text_inside_the_24_hour_window(self):
        self._inbound(fields.Datetime.now() - timedelta(hours=23))
        form = self._composer()
        self.assertTrue(form.window_open)
        form.body = "Until the end of the month, Roberta!"
        form.save().action_send()
        self.assertFalse(self.stub.state.sent())  # queued, sent after commit
        self._send()
        self.assertEqual(
            self.stub.state.sent(),
            [
                {
                    "messaging_product": "whatsapp",
                    "recipient_type": "individual",
                    "to": "+393331234567",
                    "type": "text",
                    "text": {"body": "Until the end of the month, Roberta!"},
                    "biz_opaque_callback_data": self.stub.state.sent()[0][
                        "biz_opaque_callback_data"
                    ],
                }
            ],
        )
        note = self.roberta.message_ids[0]
        self.assertIn("Until the end of the month, Roberta!", note.body)
        self.assertEqual(note.author_id, self.salesman.partner_id)

    def test_outside_the_window_only_templates(self):
        self._inbound(fields.Datetime.now() - timedelta(hours=25))
        form = self._composer()
        self.assertFalse(form.window_open)
        composer = self.env["winback.composer"].with_user(self.salesman).create(
            {"partner_id": self.roberta.id, "account_id": self.account.id,
             "body": "Free text"}
        )  # fmt: skip
        with self.assertRaisesRegex(UserError, "approved template"):
            composer.action_send()
        self.assertFalse(self.stub.state.sent())
        composer.template_id = self.last_call
        composer.action_send()
        self._send()
        sent = self.stub.state.sent()
        self.assertEqual(sent[0]["type"], "template")
        self.assertEqual(sent[0]["template"]["name"], "winback_last_call")
        self.assertIn("ultima chiamata", self.roberta.message_ids[0].body)

    def test_our_own_messages_do_not_open_the_window(self):
        """OCA's gateway counts outbound messages here; WhatsApp does not."""
        self.env["winback.message"].create(
            {"direction": "outbound", "partner_id": self.roberta.id,
             "account_id": self.account.id, "state": "sent",
             "sent_at": fields.Datetime.now(), "phone_e164": "+393331234567"}
        )  # fmt: skip
        self.assertFalse(self._composer().window_open)

    def test_window_closes_after_24_hours(self):
        self._inbound(datetime(2026, 11, 20, 10, 0))
        with freeze_time("2026-11-21 09:59:00"):
            self.assertTrue(self._composer().window_open)
        with freeze_time("2026-11-21 10:01:00"):
            self.assertFalse(self._composer().window_open)
