"""WhatsApp Cloud API client: every HTTP call to the provider goes through here.

One plain class, like ``sms/tools/sms_api.py``: the models never build URLs or
parse Graph errors themselves. The access token is sent in a header and never
logged.
"""

import contextlib
import json
import logging
import re
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProxyError,
    ReadTimeoutError,
)
from urllib3.util import Timeout

from . import media
from .api_host import allowed_media_url

_logger = logging.getLogger(__name__)

# What the sender does after each error of a call (winback.message's
# ``_apply_error`` dispatches on it):
RETRY = "retry"  # certainly not sent: sent again later, with backoff
WAIT = "wait"  # certainly not sent, and not before a day (marketing limit)
FAIL = "fail"  # the message fails, with the reason
OPT_OUT = "opt_out"  # the customer stopped marketing messages: opt out, fail
PAUSE_CAMPAIGN = "pause_campaign"  # a template error: the message waits
PAUSE_ACCOUNT = "pause_account"  # the account needs an administrator
UNKNOWN = "unknown"  # maybe sent: never resent, a status webhook settles it

# Errors after which the message was certainly NOT sent, so sending it again
# later cannot make a duplicate: Meta documents these codes as "message failed
# to send" (developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes:
# 130429 rate limit hit, 131000 something went wrong, 131016 service
# unavailable, 131056 pair rate limit hit), and "connection": the connection
# was never opened (refused, connect timeout, unknown host). A read timeout, a
# connection lost after the request left, or an HTTP error without Meta's
# error body are "outcome unknown" (``WhatsAppError.outcome_unknown``): Meta
# may have accepted the message, so it is never resent.
ERROR_POLICY = {
    "130429": RETRY,
    "131000": RETRY,
    "131016": RETRY,
    "131056": RETRY,
    "connection": RETRY,
    "131049": WAIT,  # marketing message limit for this user: try in 24 h
    "131050": OPT_OUT,  # the user stopped marketing messages
    "190": PAUSE_ACCOUNT,  # access token expired or invalid
    "131042": PAUSE_ACCOUNT,  # business eligibility: payment issue
    "368": PAUSE_ACCOUNT,  # temporarily blocked for policy violations
    "131031": PAUSE_ACCOUNT,  # business account locked
    "invalid_token": PAUSE_ACCOUNT,  # the token cannot go in a header
}
RETRYABLE_CODES = frozenset(c for c, p in ERROR_POLICY.items() if p == RETRY)


def error_policy(code):
    """What to do after the error ``code`` of a call whose request certainly
    did not lead to a send: one of the constants above; template errors
    (132xxx) pause the campaign, any other code fails the message."""
    code = str(code)
    if code in ERROR_POLICY:
        return ERROR_POLICY[code]
    return PAUSE_CAMPAIGN if code.startswith("132") else FAIL


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
    def policy(self):
        """What the sender does about this error (see ``ERROR_POLICY``)."""
        return UNKNOWN if self.outcome_unknown else error_policy(self.code)


# A download refused for good: too large, of a type WhatsApp does not send
# for its kind, bytes that are not what their type says, or a media id or URL
# the token must not go to. Never retried.
MEDIA_REFUSED = "media_refused"
MEDIA_ID = re.compile(r"[0-9A-Za-z_-]{1,128}")


def _too_large(size, max_bytes):
    return WhatsAppError(
        MEDIA_REFUSED,
        f"The file is larger ({size / 1048576:.1f} MB) than the "
        f"{max_bytes / 1048576:.0f} MB allowed",
    )


def _type_refused(kind, declared, found=None):
    details = f"declared {declared or 'nothing'}"
    if found:
        details += f", the bytes are {found}"
    return WhatsAppError(
        MEDIA_REFUSED,
        f"The file is not a type WhatsApp sends as {kind}, or its bytes are "
        "not what its type says",
        details,
    )


def _never_connected(error):
    """Whether a ``requests`` or urllib3 exception happened before a
    connection existed (so before any byte of the request left)."""
    if isinstance(error, requests.ConnectTimeout | ConnectTimeoutError):
        return True
    if isinstance(error, ClosedPoolError):  # refused before connecting
        # urllib3's NewConnectionError is a ConnectTimeoutError.
        return True
    if isinstance(error, ProxyError):
        # The proxy itself could not be reached.
        return isinstance(error.original_error, ConnectTimeoutError)
    reason = getattr(error.args[0] if error.args else None, "reason", None)
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


# The headers ``requests`` adds to a call (a call's own headers win).
HEADERS = {
    "User-Agent": requests.utils.default_user_agent(),
    "Accept-Encoding": "gzip, deflate",
    "Accept": "*/*",
    "Connection": "keep-alive",
}


class _Answer:
    """What ``_parse`` reads of a urllib3 answer, as ``requests.Response``
    names it."""

    __slots__ = ("status_code", "reason", "headers", "content")

    def __init__(self, answer):
        self.status_code = answer.status
        self.reason = answer.reason
        self.headers = answer.headers
        self.content = answer.data

    def json(self):
        return json.loads(self.content)


def no_environment_session():
    """A ``requests`` session that does not read the environment on every
    call: the client passes the proxies and CA bundle it read once
    (``WhatsAppApi._environment``), and no ``~/.netrc`` entry can replace
    the bearer token with other credentials."""
    session = requests.Session()
    session.trust_env = False
    return session


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
        self.session = session or no_environment_session()
        self._environments = {}
        self._targets = {}
        self._timeout = Timeout(connect=self.TIMEOUT[0], read=self.TIMEOUT[1])

    # ------------------------------------------------------------
    # HTTP
    # ------------------------------------------------------------

    def _request(self, method, path, payload=None, params=None):
        url = f"{self.base_url}/{self.version}/{path}"
        return self._parse(self._call(method, url, payload, params))

    def _call(self, method, url, payload=None, params=None, stream=False):
        """Send one request with the token, never following a redirect;
        returns the response (its body unread when ``stream``).

        A call whose answer is read at once (every call but a media
        download) goes straight to urllib3's connection pool of the
        session's adapter, with the proxies and CA bundle the adapter would
        use: ``requests`` would cost as much CPU as the rest of a send."""
        # Up to the pool's ``urlopen`` nothing has left: an error is "not
        # sent".
        auth = {"Authorization": f"Bearer {self._token}"}
        if not TOKEN_CHARS.fullmatch(self._token):
            raise WhatsAppError(
                "invalid_token",
                "The access token is empty, or has characters a token cannot "
                "have (a space, a line break or an invisible character pasted "
                "with it): paste it again",
            )
        try:
            if stream:
                prepared = self.session.prepare_request(
                    requests.Request(method, url, params=params, headers=auth)
                )
                settings = self._environment(prepared.url)
            else:
                pool, target = self._target(method, url, params)
                body = None
                if payload is not None:
                    body = json.dumps(payload, allow_nan=False).encode()
        except (requests.RequestException, ValueError) as error:
            raise WhatsAppError(
                "invalid_request", "The request could not be built", str(error)
            ) from error
        try:
            if not stream:
                return self._urlopen(pool, method, target, body, auth)
            # Never follow a redirect: the token goes to the configured host
            # only.
            settings["stream"] = True
            return self.session.send(
                prepared, timeout=self.TIMEOUT, allow_redirects=False, **settings
            )
        except (requests.RequestException, HTTPError) as error:
            if isinstance(error, ClosedPoolError):
                # Refused by the pool before any connection: fetch it again.
                self._targets.clear()
            if _never_connected(error):
                raise WhatsAppError(
                    "connection",
                    "The WhatsApp API could not be reached",
                    str(error),
                ) from error
            timeout = isinstance(error, requests.Timeout | ReadTimeoutError)
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

    def _target(self, method, url, params=None):
        """``(pool, target)``: the urllib3 pool of the session's adapter
        for ``url``'s host, with the proxies and CA bundle ``requests``
        would use, and what to ask it for (the path, or the whole URL
        through a plain HTTP proxy). Worked out once per URL and client when
        there are no parameters: a send always calls the same URL."""
        key = (method, url) if not params else None
        if key in self._targets:
            return self._targets[key]
        prepared = requests.Request(method, url, params=params).prepare()
        settings = self._environment(prepared.url)
        adapter = self.session.get_adapter(prepared.url)
        proxies, verify = settings["proxies"], settings["verify"]
        if hasattr(adapter, "get_connection_with_tls_context"):  # requests 2.32
            pool = adapter.get_connection_with_tls_context(
                prepared, verify, proxies, None
            )
        else:
            pool = adapter.get_connection(prepared.url, proxies)
            adapter.cert_verify(pool, prepared.url, verify, None)
        found = pool, adapter.request_url(prepared, proxies)
        if key:
            self._targets[key] = found
        return found

    def _urlopen(self, pool, method, target, body, auth):
        """One call on ``pool``: never retried, never redirected, its answer
        read whole."""
        headers = {**HEADERS, **auth}
        if body is not None:
            headers["Content-Type"] = "application/json"
        answer = pool.urlopen(
            method=method,
            url=target,
            body=body,
            headers=headers,
            redirect=False,
            assert_same_host=False,
            preload_content=True,
            decode_content=True,
            retries=False,
            timeout=self._timeout,
        )
        return _Answer(answer)

    def _environment(self, url):
        """The proxies and CA bundle the environment gives for ``url``'s
        host (``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``...),
        read once per host and client: the session does not read them
        again on every call (``no_environment_session``)."""
        host = urlsplit(url).netloc
        if host not in self._environments:
            with requests.Session() as reader:
                self._environments[host] = reader.merge_environment_settings(
                    url, {}, None, None, None
                )
        return dict(self._environments[host])

    @staticmethod
    def _parse(response, body=None):
        """The answer's JSON, or the ``WhatsAppError`` it stands for;
        ``body``: the part of a streamed answer already read."""
        try:
            data = response.json() if body is None else json.loads(body)
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
        self,
        to,
        name,
        language,
        body_params=(),
        buttons=(),
        opaque=None,
        recipient=None,
    ):
        """Send an approved template; returns the message's wamid.

        ``to``: the number; without one, ``recipient``: the customer's
        WhatsApp user ID (BSUID), Meta's field for customers known by no
        number.

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
        return self._send(
            {"type": "template", "template": template}, to, opaque, recipient
        )

    def send_text(self, to, body, opaque=None, recipient=None):
        """Send free text (only inside the 24-hour customer service window)."""
        return self._send(
            {"type": "text", "text": {"body": body}}, to, opaque, recipient
        )

    def _send(self, message, to, opaque, recipient=None):
        # Meta takes the number (``to``) or the BSUID (``recipient``); given
        # both, the number wins, and Meta advises it when known.
        target = {"to": to} if to or not recipient else {"recipient": recipient}
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **target,
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

    # ------------------------------------------------------------
    # Media a customer sent
    # ------------------------------------------------------------

    def get_media(self, media_id):
        """A media's metadata: ``{url, mime_type, sha256, file_size, id}``.
        The URL is valid for 5 minutes; the media id for 7 days."""
        media_id = str(media_id or "")
        if not MEDIA_ID.fullmatch(media_id):
            raise WhatsAppError(
                MEDIA_REFUSED, "The media id is not one WhatsApp gives", media_id
            )
        return self._request(
            "GET", media_id, params={"phone_number_id": self.phone_number_id}
        )

    def download_media_url(self, url, max_bytes):
        """The bytes at a media URL of ``get_media`` and their Content-Type,
        fetched with the token (Meta refuses the download without it) from
        Meta's media host or the configured API host only, and never more
        than ``max_bytes``."""
        if not allowed_media_url(url, self.base_url):
            raise WhatsAppError(
                MEDIA_REFUSED,
                "The media URL is not on Meta's media host: the token is not "
                "sent there",
            )
        response = self._call("GET", url, stream=True)
        with contextlib.closing(response):
            try:
                return self._read_media(response, max_bytes)
            except requests.RequestException as error:
                raise WhatsAppError(
                    "connection_lost", "The media download broke off", str(error)
                ) from error

    def _read_media(self, response, max_bytes):
        if response.status_code >= 300:
            # Meta's error body: small, and read no further than that.
            self._parse(response, next(response.iter_content(64 * 1024), b""))
        length = response.headers.get("Content-Length") or ""
        if length.isdigit() and int(length) > max_bytes:
            raise _too_large(int(length), max_bytes)
        data = bytearray()
        for chunk in response.iter_content(64 * 1024):
            data += chunk
            if len(data) > max_bytes:
                raise _too_large(len(data), max_bytes)
        return bytes(data), response.headers.get("Content-Type", "")

    def download_media(self, media_id, kind, max_bytes, mime_type="", sha256=""):
        """``(bytes, mimetype)`` of a media a customer sent (``kind``: image,
        audio, voice, video, document, sticker): its metadata, then its
        bytes, refused (``MEDIA_REFUSED``, never retried) when larger than
        ``max_bytes`` or when a declared type is not one WhatsApp sends for
        ``kind`` or does not agree with the bytes' signature
        (``tools/media.py``); a checksum that does not match is retried."""
        if mime_type and not media.is_allowed(kind, mime_type):
            raise _type_refused(kind, mime_type)
        info = self.get_media(media_id)
        declared = info.get("mime_type") or ""
        if declared and not media.is_allowed(kind, declared):
            raise _type_refused(kind, declared)
        size = str(info.get("file_size") or "")
        if size.isdigit() and int(size) > max_bytes:
            raise _too_large(int(size), max_bytes)
        if not info.get("url"):
            raise WhatsAppError("bad_response", "WhatsApp gave no URL for the media")
        data, content_type = self.download_media_url(info["url"], max_bytes)
        for expected in (info.get("sha256"), sha256):
            if not media.sha256_matches(data, expected):
                raise WhatsAppError(
                    "media_checksum",
                    "The downloaded media does not match its checksum",
                )
        kept = media.check_content(kind, data, mime_type, declared, content_type)
        if not kept:
            raise _type_refused(
                kind, media.base_type(declared or mime_type), media.sniff(data)
            )
        return data, kept


class SimulatorApi:
    """The built-in provider for demos and offline use: nothing leaves Odoo,
    every message is accepted at once."""

    def __init__(self, account, session=None):
        self.account = account

    def send_template(self, to, name, language, body_params=(), **kwargs):
        return f"wamid.SIM.{uuid.uuid4().hex}"

    def send_text(self, to, body, opaque=None, recipient=None):
        return f"wamid.SIM.{uuid.uuid4().hex}"

    def list_templates(self):
        return iter(())

    def check_connection(self):
        return {"id": "simulator", "display_phone_number": "Simulator"}

    def download_media(self, media_id, kind, max_bytes, mime_type="", sha256=""):
        raise WhatsAppError(
            MEDIA_REFUSED, "The simulator keeps no media: there is nothing to download"
        )


class RateLimiter:
    """At most ``rate`` calls per second, whatever the number of threads
    sharing it: each call reserves the next free slot (1/rate apart), then
    waits for it outside the lock. A rate of 0 is no limit."""

    def __init__(self, rate, clock=time.monotonic, sleep=time.sleep):
        self.interval = 1.0 / rate if rate and rate > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next = None

    def wait(self):
        """Wait for this call's slot; returns the slot (on ``clock``)."""
        if not self.interval:
            return self._clock()
        with self._lock:
            now = self._clock()
            slot = now if self._next is None else max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            self._sleep(slot - now)
        return slot


class SendPool:
    """Provider calls on a bounded pool of threads: only the HTTP calls run
    there; the caller keeps every database write in its own thread.

    ``submit(key, call, rate)`` runs ``call()`` in a thread, at most ``rate``
    calls per second per ``key`` (a sender account); ``collect()`` returns
    ``(key, tag, result, error)`` of the finished calls. One HTTP session,
    with a connection pool as large as the thread pool, is shared by the
    calls (``session``)."""

    def __init__(self, size):
        self.size = size
        self.session = no_environment_session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4, pool_maxsize=size, max_retries=0
        )
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="winback_send")
        self._limiters = {}
        self._running = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._executor.shutdown(wait=True)
        self.session.close()

    @property
    def free(self):
        """How many more calls can start now."""
        return self.size - len(self._running)

    @property
    def running(self):
        return len(self._running)

    def submit(self, key, tag, call, rate=0):
        limiter = self._limiters.get(key)
        if limiter is None:
            limiter = self._limiters[key] = RateLimiter(rate)
        future = self._executor.submit(self._run, limiter, call)
        self._running[future] = (key, tag)

    @staticmethod
    def _run(limiter, call):
        limiter.wait()
        try:
            return call(), None
        except Exception as error:  # noqa: BLE001 - handed to the caller
            return None, error

    def collect(self, at_least=0):
        """The finished calls: at least ``at_least`` of them (or all the
        running ones, if fewer), waiting for them if need be."""
        at_least = min(at_least, len(self._running))
        finished = []
        while True:
            done, _pending = wait(
                list(self._running),
                timeout=None if len(finished) < at_least else 0,
                return_when=FIRST_COMPLETED,
            )
            finished += [(*self._running.pop(f), *f.result()) for f in done]
            if len(finished) >= at_least:
                return finished
