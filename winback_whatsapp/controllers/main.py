import hashlib
import hmac
import json
import logging

from odoo import http
from odoo.http import request
from odoo.tools import consteq

_logger = logging.getLogger(__name__)


class WinbackWebhookController(http.Controller):
    def _get_account(self, key):
        if not key:
            return None
        account = (
            request.env["winback.account"]
            .sudo()
            .search([("webhook_key", "=", key)], limit=1)
        )
        return account or None

    @http.route(
        "/winback_whatsapp/webhook/<string:key>",
        type="http",
        auth="public",
        methods=["GET"],
        csrf=False,
        save_session=False,
    )
    def winback_webhook_verify(self, key, **kwargs):
        account = self._get_account(key)
        mode = kwargs.get("hub.mode")
        token = kwargs.get("hub.verify_token") or ""
        challenge = kwargs.get("hub.challenge") or ""
        expected = account and account.verify_token or ""
        if account and mode == "subscribe" and expected and consteq(token, expected):
            return request.make_response(
                challenge, headers=[("Content-Type", "text/plain")]
            )
        return request.make_response(
            "Forbidden", headers=[("Content-Type", "text/plain")], status=403
        )

    @http.route(
        "/winback_whatsapp/webhook/<string:key>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def winback_webhook_receive(self, key, **kwargs):
        account = self._get_account(key)
        raw = request.httprequest.get_data(cache=True)
        secret = account and account.app_secret or ""
        signature = request.httprequest.headers.get("X-Hub-Signature-256") or ""
        if not account or not secret or not signature.startswith("sha256="):
            return self._plain("Forbidden", 403)
        digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not consteq(signature[len("sha256=") :], digest):
            _logger.warning(
                "WhatsApp webhook: bad signature for account %s", account.id
            )
            return self._plain("Forbidden", 403)
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self._plain("Malformed JSON", 400)
        if not isinstance(payload, dict):
            return self._plain("Malformed JSON", 400)
        event = request.env["winback.webhook.event"].sudo()._store(account, raw)
        # Process once the event is safely committed; the cron retries what
        # fails, so the response never waits on (or loses) processing.
        event._process_after_commit()
        return self._plain("OK", 200)

    def _plain(self, text, status):
        return request.make_response(
            text, headers=[("Content-Type", "text/plain")], status=status
        )
