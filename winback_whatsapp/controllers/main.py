import hashlib
import hmac
import json
import logging

from odoo import http
from odoo.http import request
from odoo.tools import consteq

from ..tools.webhook_parser import is_status_only

_logger = logging.getLogger(__name__)

# Meta's calls are a few KiB (a batch of statuses a few tens): anything
# larger is refused before it is read.
MAX_BODY = 1024 * 1024


def _same(given, expected):
    """Constant-time comparison of two texts, whatever characters the
    request sent (a non-ASCII text never matches, and never raises)."""
    return consteq(
        (given or "").encode("utf-8", "surrogatepass"),
        (expected or "").encode("utf-8", "surrogatepass"),
    )


class WinbackWebhookController(http.Controller):
    """Meta's webhook: verify, authenticate, persist, answer.

    Meta waits on every call, retries what is not answered 200 in time and
    cannot be asked for past events, so the POST does the least that makes
    the event safe: check the signature and the JSON, store the raw body,
    wake the processing cron. Everything else happens in
    ``winback.webhook.event._cron_process``.
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
            and _same(token, expected)
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
        # Also caps what Odoo itself would parse before calling us (forms).
        max_content_length=MAX_BODY,
    )
    def winback_webhook_receive(self, key, **kwargs):
        credentials = (
            request.env["winback.account"].sudo()._get_webhook_credentials(key)
        )
        signature = request.httprequest.headers.get("X-Hub-Signature-256") or ""
        if not credentials or not credentials[1] or not signature.startswith("sha256="):
            return self._plain("Forbidden", 403)
        account, secret, _token = credentials
        raw = self._read_body()
        if raw is None:
            return self._plain("Payload Too Large", 413)
        digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if not _same(signature[len("sha256=") :], digest):
            _logger.warning(
                "WhatsApp webhook: bad signature for account %s", account.id
            )
            return self._plain("Forbidden", 403)
        try:
            # Meta sends UTF-8; json.loads(bytes) would also take UTF-16/32,
            # which the stored raw body cannot be.
            text = raw.decode("utf-8")
            payload = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            return self._plain("Malformed JSON", 400)
        if not isinstance(payload, dict):
            return self._plain("Malformed JSON", 400)
        Event = request.env["winback.webhook.event"].sudo()
        # Calls with statuses only wait behind replies and preferences.
        Event._store(account, text, status_only=is_status_only(payload))
        # The processing cron runs once the event is committed: the response
        # never waits on it, and what fails stays in the table for retries.
        Event._wake_after_commit()
        return self._plain("OK", 200)

    def _read_body(self):
        """The raw body, or None when it is larger than MAX_BODY: refused on
        its Content-Length before reading, else (chunked, or a length that
        lies) once MAX_BODY + 1 bytes have been read."""
        httprequest = request.httprequest
        if (httprequest.content_length or 0) > MAX_BODY:
            return None
        # Odoo's request wrapper offers get_data() (everything, unbounded)
        # but not werkzeug's stream, which alone can be read in part.
        stream = getattr(httprequest, "_HTTPRequest__wrapped", httprequest).stream
        chunks, size = [], 0
        while size <= MAX_BODY:
            chunk = stream.read(MAX_BODY + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > MAX_BODY:
            return None
        return b"".join(chunks)

    def _plain(self, text, status):
        return request.make_response(
            text, headers=[("Content-Type", "text/plain")], status=status
        )
