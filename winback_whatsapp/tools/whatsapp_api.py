"""WhatsApp Cloud API client: every HTTP call to the provider goes through here.

One plain class, like ``sms/tools/sms_api.py``: the models never build URLs or
parse Graph errors themselves. The access token is sent in a header and never
logged.
"""

import logging
import uuid

import requests

_logger = logging.getLogger(__name__)

# Errors worth retrying later: throughput, pair rate, timeouts, server side.
RETRYABLE_CODES = {"130429", "131056", "timeout", "connection"}


class WhatsAppError(Exception):
    """An error of the Cloud API, with Meta's code as a string."""

    def __init__(self, code, message, details="", http_status=None):
        super().__init__(f"({code}) {message}")
        self.code = str(code)
        self.message = message
        self.details = details
        self.http_status = http_status

    @property
    def text(self):
        return f"{self.message}: {self.details}" if self.details else self.message

    @property
    def retryable(self):
        return self.code in RETRYABLE_CODES or (self.http_status or 0) >= 500


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
        try:
            response = self.session.request(
                method,
                url,
                json=payload,
                params=params,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self.TIMEOUT,
            )
        except requests.Timeout as error:
            raise WhatsAppError("timeout", "The WhatsApp API did not answer") from error
        except requests.RequestException as error:
            raise WhatsAppError(
                "connection", "The WhatsApp API could not be reached", str(error)
            ) from error
        try:
            data = response.json()
        except ValueError:
            data = {}
        if response.status_code >= 400 or "error" in data:
            error = data.get("error") or {}
            raise WhatsAppError(
                error.get("code") or f"http_{response.status_code}",
                error.get("message") or response.reason or "HTTP error",
                (error.get("error_data") or {}).get("details", ""),
                http_status=response.status_code,
            )
        return data

    # ------------------------------------------------------------
    # API
    # ------------------------------------------------------------

    def send_template(
        self, to, name, language, body_params=(), stop_payload=None, opaque=None
    ):
        """Send an approved template; returns the message's wamid."""
        components = []
        if body_params:
            components.append(
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": p} for p in body_params],
                }
            )
        if stop_payload:
            components.append(
                {
                    "type": "button",
                    "sub_type": "quick_reply",
                    "index": "0",
                    "parameters": [{"type": "payload", "payload": stop_payload}],
                }
            )
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
            raise WhatsAppError(
                "bad_response", "The WhatsApp API answered without a message id"
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
