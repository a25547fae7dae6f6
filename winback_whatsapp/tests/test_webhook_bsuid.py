"""Customers with no visible phone number: Meta's business-scoped user IDs
(BSUID), over real HTTP with signed payloads, as Meta sends them
(https://developers.facebook.com/documentation/business-messaging/whatsapp/business-scoped-user-ids)."""

import hashlib
import hmac
import json

from odoo.tests import HttpCase, tagged

from ..tools import webhook_simulator as simulator
from .common import run_job

SECRET = "test-app-secret"
PNID = "106540352242922"
BSUID = "IT.1502576394655843"
NEW_BSUID = "IT.9988776655443322"
UNKNOWN_BSUID = "IT.4242424242424242"


@tagged("post_install", "-at_install")
class TestWebhookBsuid(HttpCase):
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
        cls.partner = cls.env["res.partner"].create(
            {"name": "Mario Rossi", "mobile": "+393331234567"}
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {"name": "90 days", "account_id": cls.account.id}
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    # helpers ---------------------------------------------------------

    def _post(self, payload):
        """A signed POST, as Meta makes it, then a run of the processing
        cron (in a cursor of its own, as ir.cron runs it)."""
        body = json.dumps(payload).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        response = self.url_open(
            self.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": "sha256=" + digest,
            },
        )
        self.assertEqual(response.status_code, 200)
        run_job(self, "winback.webhook.event", "_cron_process")
        return response

    def _value(self, field="messages", **value):
        value.setdefault("metadata", simulator.metadata(PNID, "15550001111"))
        return simulator.envelope(
            simulator.change_value(**value), field=field, waba_id="WABA_ID"
        )

    def _text(self, wamid, body, user_id=BSUID, wa_id=None, username=None):
        """A text message as Meta sends it since April 2026: ``from_user_id``
        always, ``from`` only when the phone number may be shared."""
        contact = {"profile": {"name": "Mario"}, "user_id": user_id}
        msg = {
            "from_user_id": user_id,
            "id": wamid,
            "timestamp": "1767225600",
            "type": "text",
            "text": {"body": body},
        }
        if username:
            contact["profile"]["username"] = username
        if wa_id:
            contact["wa_id"] = wa_id
            msg["from"] = wa_id
        return self._value(contacts=[contact], messages=[msg])

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
