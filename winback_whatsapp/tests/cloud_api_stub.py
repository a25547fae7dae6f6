"""A local HTTP server speaking the documented subset of the WhatsApp Cloud API.

Used by the tests (imported) and by the benchmarks (run as its own process:
``python cloud_api_stub.py --port 8765``). It checks every request against
Meta's documented format, records it, and can be told to fail:

- ``POST /{version}/{phone_number_id}/messages`` (template or text);
- ``GET /{version}/{waba_id}/message_templates`` (paged);
- ``GET /{version}/{phone_number_id}``;
- ``GET /{version}/{media_id}`` (a media's metadata, with its URL) and
  ``GET /media/{media_id}`` (its bytes), both with the bearer token, for the
  media of ``StubState.add_media``.

Failures (``StubState.fail_next``), each for the next request:

- ``error``: Meta refuses with its error body (code, HTTP status);
- ``hang``: Meta accepts the message, then answers too late (read timeout);
- ``drop``: Meta accepts the message, then the connection drops unanswered;
- ``bare``: Meta accepts the message, then a gateway answers an HTTP error
  without Meta's error body (e.g. 502 with an HTML page);
- ``redirect``: the server answers a redirect (status) to ``/leak`` on the same
  host, which records what reaches it in ``StubState.leaks``;
- ``refuse_connections()``: nothing listens on the port (connect failure).

``StubState.gate(n)``: the next ``n`` sends are answered only once all ``n``
are being handled at the same time (``gate_broken`` tells if they never
were, after ``timeout`` seconds).
"""

import argparse
import base64
import contextlib
import hashlib
import itertools
import json
import re
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
# Meta: a country code, a period, up to 128 alphanumerics (ENT. for a parent ID).
BSUID = re.compile(r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$")
BAD_PARAM_TEXT = re.compile(r"[\n\t]| {5,}")
TOKEN = "stub-token"
PHONE_NUMBER_ID = "1000000001"
WABA_ID = "2000000002"


class StubState:
    def __init__(self):
        self.lock = threading.Lock()
        # every (method, path, json body, status): status 200 when Meta
        # accepted the message, whatever the client then received
        self.requests = []
        # queued failures: {"mode", "code", "status", "delay", "message"}
        self.failures = []
        self.templates = []
        self.accepted = []  # (body, wamid) of every message Meta accepted
        self.leaks = []  # (path, Authorization header) of requests to /leak
        self.counter = itertools.count(1)
        self.barrier = None
        self.gate_broken = False
        self.media = {}  # media id -> what add_media was given
        self.media_downloads = []  # (path, Authorization header) of each download

    def add_media(self, media_id, data, mime_type, **overrides):
        """Serve ``data`` as the media ``media_id``; ``overrides``: the
        metadata's ``mime_type``, ``sha256`` (base64 of the SHA-256 by
        default), ``file_size``, ``url`` (the stub's own by default), or the
        download's ``content_type``."""
        with self.lock:
            self.media[str(media_id)] = {
                "data": data,
                "mime_type": mime_type,
                "sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
                "file_size": str(len(data)),
                "content_type": mime_type,
                **overrides,
            }

    def fail_next(
        self, code=None, status=400, message="Injected failure", delay=0, mode="error"
    ):
        """Fail the next request: see the module's docstring for ``mode``."""
        assert mode in ("error", "hang", "drop", "bare", "redirect"), mode
        with self.lock:
            self.failures.append(
                {
                    "mode": mode,
                    "code": code,
                    "status": status,
                    "message": message,
                    "delay": delay,
                }
            )

    def gate(self, n, timeout=10):
        """Hold the next ``n`` sends until ``n`` are in flight together."""
        self.barrier = threading.Barrier(n, timeout=timeout)

    def _pass_gate(self):
        barrier = self.barrier
        if barrier is None:
            return
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            self.gate_broken = True
        self.barrier = None

    def sent(self):
        """Bodies of the accepted sends."""
        with self.lock:
            return [r[2] for r in self.requests if r[3] == 200 and r[0] == "POST"]


def _validate_send(body):
    """``(code, message)`` of the error Meta would report for this
    /messages body, or None."""
    if body.get("messaging_product") != "whatsapp":
        return 100, "messaging_product must be 'whatsapp'"
    # ``to`` (a number) or ``recipient`` (a business-scoped user ID); given
    # both, Meta sends to ``to``.
    if "to" in body or "recipient" not in body:
        if not E164.match(str(body.get("to", ""))):
            return 100, "to must be a phone number in +E.164"
    elif not BSUID.match(str(body.get("recipient", ""))):
        return 100, "recipient must be a business-scoped user ID"
    kind = body.get("type")
    if kind == "text":
        if not (body.get("text") or {}).get("body"):
            return 100, "text.body is required"
        return None
    if kind != "template":
        return 100, f"unsupported type {kind!r}"
    template = body.get("template") or {}
    if not template.get("name") or not (template.get("language") or {}).get("code"):
        return 100, "template.name and template.language.code are required"
    for component in template.get("components", []):
        for parameter in component.get("parameters", []):
            value = parameter.get(parameter.get("type"))
            if not isinstance(value, str) or not value.strip():
                return 131008, "(#131008) Required parameter is missing or empty"
            if parameter.get("type") == "text" and BAD_PARAM_TEXT.search(value):
                return 132018, (
                    "(#132018) Param text cannot have new-line/tab characters "
                    "or more than 4 consecutive spaces"
                )
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set per server

    def setup(self):
        result = super().setup()
        # Answer at once: no Nagle delay between the headers and the body.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return result

    def log_message(self, format, *args):  # noqa: A002 - keep the output quiet
        pass

    def _reply(self, status, data, record=None):
        if record is not None:
            with self.state.lock:
                self.state.requests.append((*record, status))
        raw = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _error(self, status, code, message, record):
        code = int(code) if str(code).isdigit() else code  # Meta's are integers
        error = {"message": message, "type": "OAuthException", "code": code}
        error["error_data"] = {"details": message}
        self._reply(status, {"error": error}, record)

    def _authorized(self, record):
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._error(401, 190, "Invalid OAuth access token", record)
            return False
        return True

    def _refused(self, failure, record):
        """Meta's own refusal (mode ``error``), after its delay, or a
        redirect (mode ``redirect``)."""
        if failure and failure["mode"] == "redirect":
            with self.state.lock:
                self.state.requests.append((*record, failure["status"]))
            self.send_response(failure["status"])
            self.send_header("Location", f"http://{self.headers['Host']}/leak")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return True
        if failure and failure["mode"] == "error":
            if failure["delay"]:
                time.sleep(failure["delay"])
            self._error(failure["status"], failure["code"], failure["message"], record)
            return True
        return False

    def _next_failure(self):
        with self.state.lock:
            return self.state.failures.pop(0) if self.state.failures else None

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        path = urlparse(self.path).path.strip("/").split("/")
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        record = ("POST", self.path, body)
        if path[0] == "leak":
            with self.state.lock:
                self.state.leaks.append((self.path, self.headers.get("Authorization")))
            return self._reply(200, {"messages": [{"id": "wamid.LEAKED"}]})
        if len(path) != 3 or path[2] != "messages" or path[1] != PHONE_NUMBER_ID:
            return self._error(404, 100, "Unknown path", record)
        if not self._authorized(record):
            return
        self.state._pass_gate()
        failure = self._next_failure()
        if self._refused(failure, record):
            return
        problem = _validate_send(body) if isinstance(body, dict) else (100, "bad JSON")
        if problem:
            return self._error(400, problem[0], problem[1], record)
        wamid = f"wamid.STUB{next(self.state.counter):010d}"
        with self.state.lock:
            self.state.accepted.append((body, wamid))
        answer = {
            "messaging_product": "whatsapp",
            "contacts": [
                {"input": body["to"], "wa_id": body["to"].lstrip("+")}
                if "to" in body
                else {"input": body["recipient"], "user_id": body["recipient"]}
            ],
            "messages": [{"id": wamid, "message_status": "accepted"}],
        }
        if failure and failure["mode"] != "error":
            # Meta accepted the message; the client will not learn it.
            with self.state.lock:
                self.state.requests.append((*record, 200))
            return self._fail_after_accept(failure, answer)
        self._reply(200, answer, record)

    def _fail_after_accept(self, failure, answer):
        if failure["mode"] == "hang":
            time.sleep(failure["delay"] or 2)
            with contextlib.suppress(OSError):  # the client gave up
                self._reply(200, answer)
        elif failure["mode"] == "drop":
            self.close_connection = True
            self.request.shutdown(socket.SHUT_RDWR)
        else:  # bare: a gateway's error page, not Meta's error body
            raw = b"<html><body>502 Bad Gateway</body></html>"
            self.send_response(failure["status"])
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    def do_GET(self):  # noqa: N802 - http.server's naming
        url = urlparse(self.path)
        path = url.path.strip("/").split("/")
        record = ("GET", self.path, None)
        if not self._authorized(record) or self._refused(self._next_failure(), record):
            return
        if len(path) == 2 and path[0] == "media" and path[1] in self.state.media:
            return self._serve_media(self.state.media[path[1]], record)
        if len(path) == 2 and path[1] in self.state.media:
            media = self.state.media[path[1]]
            return self._reply(
                200,
                {
                    "messaging_product": "whatsapp",
                    "url": media.get("url")
                    or f"http://{self.headers['Host']}/media/{path[1]}?ext=1",
                    "mime_type": media["mime_type"],
                    "sha256": media["sha256"],
                    "file_size": media["file_size"],
                    "id": path[1],
                },
                record,
            )
        if len(path) == 2 and path[1] == PHONE_NUMBER_ID:
            return self._reply(
                200,
                {"id": PHONE_NUMBER_ID, "display_phone_number": "+39 02 1234 5678"},
                record,
            )
        if len(path) == 3 and path[1] == WABA_ID and path[2] == "message_templates":
            query = parse_qs(url.query)
            limit = int(query.get("limit", ["100"])[0])
            start = int(query.get("after", ["0"])[0])
            page = self.state.templates[start : start + limit]
            data = {"data": page, "paging": {"cursors": {"after": str(start + limit)}}}
            if start + limit < len(self.state.templates):
                data["paging"]["next"] = "next-page"
            return self._reply(200, data, record)
        return self._error(404, 100, "Unknown path", record)

    def _serve_media(self, media, record):
        with self.state.lock:
            self.state.requests.append((*record, 200))
            self.state.media_downloads.append(
                (self.path, self.headers.get("Authorization"))
            )
        self.send_response(200)
        self.send_header("Content-Type", media["content_type"])
        self.send_header("Content-Length", str(len(media["data"])))
        self.end_headers()
        self.wfile.write(media["data"])


class StubServer(ThreadingHTTPServer):
    """A threaded HTTP server with a server's listen backlog: socketserver's
    default of 5 pending connections makes the kernel drop, then reset, some
    of the 128 connections the send pool opens at once, which Meta's
    front-ends never do."""

    daemon_threads = True
    request_queue_size = 1024


class CloudApiStub:
    """Start with ``CloudApiStub().start()``; ``base_url`` is then set."""

    def __init__(self, port=0):
        self.state = StubState()
        self.handler = type("BoundHandler", (Handler,), {"state": self.state})
        self.server = StubServer(("127.0.0.1", port), self.handler)
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    @contextlib.contextmanager
    def refuse_connections(self):
        """Nothing listens on the stub's port meanwhile: every connection is
        refused (the request never leaves the client)."""
        self.stop()
        try:
            yield
        finally:
            self.server = StubServer(("127.0.0.1", self.port), self.handler)
            self.thread = threading.Thread(
                target=self.server.serve_forever, daemon=True
            )
            self.thread.start()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--log", help="write every accepted send's 'to' and opaque data here on exit"
    )
    options = parser.parse_args()
    stub = CloudApiStub(options.port)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        stub.server.serve_forever()
    finally:
        if options.log:
            with open(options.log, "w", encoding="utf-8") as log:
                for body in stub.state.sent():
                    log.write(json.dumps(body) + "\n")


if __name__ == "__main__":
    main()
