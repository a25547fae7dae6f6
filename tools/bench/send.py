"""Benchmark of the sender (winback.message._cron_send): N queued messages
sent to a local WhatsApp Cloud API server running in its own process, with the
account's per-second limit lifted. The floor is a bare requests loop posting
the same kind of message to the same server."""

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import requests
from benchlib import environment, parser, registry, report, timed, whatsapp_audience

HERE = os.path.dirname(os.path.abspath(__file__))
STUB = os.path.join(HERE, "..", "..", "winback_whatsapp", "tests", "cloud_api_stub.py")
sys.path.insert(0, os.path.dirname(STUB))
from cloud_api_stub import PHONE_NUMBER_ID, TOKEN  # noqa: E402


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stub(log_path):
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, STUB, "--port", str(port), "--log", log_path]
    )
    base_url = f"http://127.0.0.1:{port}"
    for _attempt in range(100):
        try:
            requests.get(base_url, timeout=0.2)
            break
        except requests.RequestException:
            time.sleep(0.05)
    return process, base_url


def stop_stub(process, log_path):
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    with open(log_path, encoding="utf-8") as log:
        return [json.loads(line) for line in log]


def http_floor(base_url, count):
    session = requests.Session()
    url = f"{base_url}/v21.0/{PHONE_NUMBER_ID}/messages"
    started = time.perf_counter()
    for index in range(count):
        session.post(
            url,
            json={
                "messaging_product": "whatsapp",
                "to": f"+39399{index:07d}",
                "type": "template",
                "biz_opaque_callback_data": f"floor:{index}",
                "template": {
                    "name": "winback_bench",
                    "language": {"code": "it"},
                    "components": [
                        {
                            "type": "body",
                            "parameters": [{"type": "text", "text": "Bench"}],
                        }
                    ],
                },
            },
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        ).raise_for_status()
    return count / (time.perf_counter() - started)


def duplicates_in(bodies):
    counts = collections.Counter(
        b.get("biz_opaque_callback_data")
        for b in bodies
        if str(b.get("biz_opaque_callback_data", "")).startswith("winback:")
    )
    return counts, sum(c - 1 for c in counts.values() if c > 1)


def main():
    args = parser(__doc__)
    args.add_argument("--messages", type=int, default=10_000)
    args.add_argument("--floor", type=int, default=2_000)
    options = args.parse_args()
    reg = registry(options)
    log_path = tempfile.mktemp(prefix="winback_stub_", suffix=".jsonl")
    stub, base_url = start_stub(log_path)
    try:
        with environment(reg) as env:
            campaign = whatsapp_audience(
                env, options.messages, base_url, TOKEN, PHONE_NUMBER_ID
            )
            env["winback.enroller"]._enroll(campaign)
            while env["winback.enrollment"]._queue_due_messages():
                pass  # one batch per call, as the cron's calls
        floor = http_floor(base_url, options.floor)
        # One cron run stops starting calls after its time budget and
        # re-triggers itself: run it again, as ir.cron would, until done.
        elapsed = sent = runs = 0
        while sent < options.messages:
            with environment(reg) as env:
                seconds, count = timed(env["winback.message"]._cron_send)
            elapsed, sent, runs = elapsed + seconds, sent + count, runs + 1
            if not count:
                break
    finally:
        bodies = stop_stub(stub, log_path)
        os.unlink(log_path)
    counts, duplicates = duplicates_in(bodies)
    report(
        "send",
        messages=options.messages,
        sent=sent,
        received=len(counts),
        msgs_per_s=sent / elapsed,
        floor_msgs_per_s=floor,
        ratio=sent / elapsed / floor,
        cron_runs=runs,
        duplicates=duplicates,
    )


if __name__ == "__main__":
    main()
