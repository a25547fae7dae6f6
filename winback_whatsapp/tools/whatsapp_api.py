"""WhatsApp Cloud API client: every HTTP call to the provider goes through here.

One plain class, like ``sms/tools/sms_api.py``: the models never build URLs or
parse Graph errors themselves. The access token is sent in a header and never
logged.
"""

import logging
import re
import uuid

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

_logger = logging.getLogger(__name__)

# Errors after which the message was certainly NOT sent, so sending it again
# later cannot make a duplicate: Meta documents these codes as "message failed
# to send" (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes:
# 130429 rate limit hit, 131000 something went wrong, 131016 service
# unavailable, 131056 pair rate limit hit), and "connection": the connection
# was never opened (refused, connect timeout, unknown host). A read timeout, a
# connection lost after the request left, or an HTTP error without Meta's
# error body are "outcome unknown" (``WhatsAppError.outcome_unknown``): Meta
# may have accepted the message, so it is never resent.
RETRYABLE_CODES = {"130429", "131000", "131016", "131056", "connection"}

# An access token is visible ASCII: anything else was pasted with it (a space,
# a line break, a zero-width space) and cannot go in an HTTP header.
TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")


class WhatsAppError(Exception):
    """An error of the Cloud API, with Meta's code as a string.

    ``outcome_unknown``: the request may have reached Meta and been accepted
    (no answer, or an answer that is not Meta's): the message must not be sent
    again; a status webhook will tell."""

    def __init__(
        self, code, message, details="", http_status=None, outcome_unknown=False
    ):
        super().__init__(f"({code}) {message}")
        self.code = str(code)
        self.message = message
        self.details = details
        self.http_status = http_status
        self.outcome_unknown = outcome_unknown

    @property
    def text(self):
        return f"{self.message}: {self.details}" if self.details else self.message

    @property
    def retryable(self):
        """Not sent, and worth sending again later."""
        return not self.outcome_unknown and self.code in RETRYABLE_CODES


def _never_connected(error):
    """Whether a ``requests`` exception happened before a connection existed
    (so before any byte of the request left)."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


class WhatsAppApi:
    """Client of one sender phone number (a ``winback.account`` record)."""

    TIMEOUT = (5, 20)  # connect, read

    def __init__(self, account, session=None):
        account = account.sudo()
        # Checked against Meta's host and the allowlist (raises UserError).
        self.base_url = account._get_api_base_url()
        self.version = account.api_version
        self.phone_number_id = account.phone_number_id
        self.waba_id = account.waba_id
        self._token = account.access_token or ""
        self.session = session or requests.Session()

    # ------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------

    def _request(self, method, path, payload=None, params=None):
        url = f"{self.base_url}/{self.version}/{path}"
        # Up to ``session.send`` nothing has left: an error is "not sent".
        if not TOKEN_CHARS.fullmatch(self._token):
            raise WhatsAppError(
                "invalid_token",
                "The access token is empty, or has characters a token cannot "
                "have (a space, a line break or an invisible character pasted "
                "with it): paste it again",
            )
        request = requests.Request(
            method,
            url,
            json=payload,
            params=params,
            headers={"Authorization": f"Bearer {self._token}"},
        )
        try:
            prepared = self.session.prepare_request(request)
            settings = self.session.merge_environment_settings(
                prepared.url, {}, None, None, None
            )
        except (requests.RequestException, ValueError) as error:
            raise WhatsAppError(
                "invalid_request", "The request could not be built", str(error)
            ) from error
        try:
            # Never follow a redirect: the token goes to the configured host
            # only.
            response = self.session.send(
                prepared, timeout=self.TIMEOUT, allow_redirects=False, **settings
            )
        except requests.RequestException as error:
            if _never_connected(error):
                raise WhatsAppError(
                    "connection",
                    "The WhatsApp API could not be reached",
                    str(error),
                ) from error
            timeout = isinstance(error, requests.Timeout)
            raise WhatsAppError(
                "timeout" if timeout else "connection_lost",
                "The WhatsApp API did not answer in time"
                if timeout
                else "The connection to the WhatsApp API was lost",
                str(error),
                outcome_unknown=True,
            ) from error
        except Exception as error:
            raise WhatsAppError(
                "connection_lost",
                "The call to the WhatsApp API broke off",
                repr(error),
                outcome_unknown=True,
            ) from error
        return self._parse(response)

    @staticmethod
    def _parse(response):
        """The answer's JSON, or the ``WhatsAppError`` it stands for."""
        try:
            data = response.json()
        except ValueError:
            data = None
        error = data.get("error") if isinstance(data, dict) else None
        meta_error = isinstance(error, dict) and str(error.get("code")).isdigit()
        status = response.status_code
        if meta_error:
            code = str(error["code"])
            raise WhatsAppError(
                code,
                error.get("message") or response.reason or "HTTP error",
                (error.get("error_data") or {}).get("details", ""),
                http_status=status,
                # A server error Meta does not document as "not sent" may
                # still have sent the message.
                outcome_unknown=status >= 500 and code not in RETRYABLE_CODES,
            )
        if 300 <= status < 400:
            raise WhatsAppError(
                f"http_{status}",
                "The WhatsApp API answered with a redirect, which is never followed",
                response.headers.get("Location", ""),
                http_status=status,
            )
        if status >= 400:
            # A gateway's answer, not Meta's: after a 5xx nobody knows whether
            # Meta got the message.
            raise WhatsAppError(
                f"http_{status}",
                response.reason or "HTTP error",
                http_status=status,
                outcome_unknown=status >= 500,
            )
        if not isinstance(data, dict):
            raise WhatsAppError(
                "bad_response",
                "The WhatsApp API answered with something that is not JSON",
                http_status=status,
                outcome_unknown=True,
            )
        return data

    # ------------------------------------------------------------
    # API
    # ------------------------------------------------------------

    def send_template(
        self, to, name, language, body_params=(), buttons=(), opaque=None
    ):
        """Send an approved template; returns the message's wamid.

        ``buttons``: ``(index, payload)`` of each quick-reply button, index
        being the button's position in the template: one component each, so
        that a tap returns the payload of the very button tapped."""
        components = []
        if body_params:
            components.append(
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in body_params],
                }
            )
        components += [
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": str(index),
                "parameters": [{"type": "payload", "payload": payload}],
            }
            for index, payload in buttons
        ]
        template = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return self._send({"type": "template", "template": template}, to, opaque)

    def send_text(self, to, body, opaque=None):
        """Send free text (only inside the 24-hour customer service window)."""
        return self._send({"type": "text", "text": {"body": body}}, to, opaque)

    def _send(self, message, to, opaque):
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": to,
            **message,
        }
        if opaque:
            payload["biz_opaque_callback_data"] = opaque
        data = self._request("POST", f"{self.phone_number_id}/messages", payload)
        try:
            return data["messages"][0]["id"]
        except (KeyError, IndexError, TypeError) as error:
            # Accepted (2xx) but unreadable: it may well have been sent.
            raise WhatsAppError(
                "bad_response",
                "The WhatsApp API answered without a message id",
                outcome_unknown=True,
            ) from error

    def list_templates(self):
        """Yield every message template of the business account, page by page."""
        params = {"limit": 100}
        while True:
            data = self._request(
                "GET", f"{self.waba_id}/message_templates", params=params
            )
            yield from data.get("data", [])
            after = ((data.get("paging") or {}).get("cursors") or {}).get("after")
            if not after or not (data.get("paging") or {}).get("next"):
                return
            params = {"limit": 100, "after": after}

    def check_connection(self):
        """Read the phone number: proves the token and the IDs."""
        return self._request("GET", self.phone_number_id)


class SimulatorApi:
    """The built-in provider for demos and offline use: nothing leaves Odoo,
    every message is accepted at once."""

    def __init__(self, account, session=None):
        self.account = account

    def send_template(self, to, name, language, body_params=(), **kwargs):
        return f"wamid.SIM.{uuid.uuid4().hex}"

    def send_text(self, to, body, opaque=None):
        return f"wamid.SIM.{uuid.uuid4().hex}"

    def list_templates(self):
        return iter(())

    def check_connection(self):
        return {"id": "simulator", "display_phone_number": "Simulator"}
