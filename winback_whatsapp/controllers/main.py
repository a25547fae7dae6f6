import hashlib
import hmac
import json
import logging

from odoo import http
from odoo.http import request
from odoo.tools import consteq

_logger = logging.getLogger(__name__)


class WinbackWebhookController(http.Controller):
    """Meta's webhook: verify, authenticate, persist, answer.

    Meta waits on every call, retries what is not answered 200 in time and
    cannot be asked for past events, so the POST does the least that makes
    the event safe: check the signature and the JSON, store the raw body,
    wake the processing cron. Everything else happens in
    ``winback.webhook.event._process``.
    """

    @http.route(
        "/winback_whatsapp/webhook/<string:key>",
        type="http",
        auth="public",
        methods=["GET"],
        csrf=False,
        save_session=False,
    )
    def winback_webhook_verify(self, key, **kwargs):
        credentials = (
            request.env["winback.account"].sudo()._get_webhook_credentials(key)
        )
        expected = credentials and credentials[2]
        token = kwargs.get("hub.verify_token") or ""
        if (
            expected
            and kwargs.get("hub.mode") == "subscribe"
            and consteq(token, expected)
        ):
            return self._plain(kwargs.get("hub.challenge") or "", 200)
        return self._plain("Forbidden", 403)

    @http.route(
        "/winback_whatsapp/webhook/<string:key>",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def winback_webhook_receive(self, key, **kwargs):
        credentials = (
            request.env["winback.account"].sudo()._get_webhook_credentials(key)
        )
        signature = request.httprequest.headers.get("X-Hub-Signature-256") or ""
        if not credentials or not credentials[1] or not signature.startswith("sha256="):
            return self._plain("Forbidden", 403)
        account, secret, _token = credentials
        raw = request.httprequest.get_data(cache=True)
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
        # Processing runs once the event is committed: the response never
        # waits on it, and what fails stays in the table for the retries.
        event._process_after_commit()
        return self._plain("OK", 200)

    def _plain(self, text, status):
        return request.make_response(
            text, headers=[("Content-Type", "text/plain")], status=status
        )
