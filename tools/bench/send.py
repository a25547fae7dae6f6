"""Benchmark of the sender (winback.sender._cron_send): N queued messages
sent to a local WhatsApp Cloud API server running in its own process, with the
account's per-second limit lifted. The floors are bare requests posting the
same kind of message to the same server: one loop (``floor``), and as many
threads as the sender's pool sharing one session (``floor_pool``)."""

import collections
import cProfile
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import threading
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


def http_floor(base_url, count, threads=1):
    """Messages per second of bare ``requests`` posts: ``threads`` threads
    sharing one session whose connection pool has as many connections."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_maxsize=threads)
    session.mount("http://", adapter)
    url = f"{base_url}/v21.0/{PHONE_NUMBER_ID}/messages"
    shares = [range(t, count, threads) for t in range(threads)]
    workers = [
        threading.Thread(target=post_all, args=(session, url, share))
        for share in shares
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return count / (time.perf_counter() - started)


def post_all(session, url, indexes):
    for index in indexes:
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


def profiled(function):
    """``function`` run under cProfile, its top functions printed to stderr."""

    def run():
        profile = cProfile.Profile()
        try:
            return profile.runcall(function)
        finally:
            stats = pstats.Stats(profile, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)

    return run


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
    args.add_argument(
        "--profile", action="store_true", help="cProfile the send cron (stderr)"
    )
    options = args.parse_args()
    reg = registry(options)
    from odoo.addons.winback_whatsapp.models.winback_sender import SEND_POOL

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
        floor_pool = http_floor(base_url, options.floor, SEND_POOL)
        # One cron run stops starting calls after its time budget and
        # re-triggers itself: run it again, as ir.cron would, until done.
        elapsed = sent = runs = 0
        while sent < options.messages:
            with environment(reg) as env:
                send = env["winback.sender"]._cron_send
                if options.profile:
                    send = profiled(send)
                seconds, count = timed(send)
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
    report(
        "send_floor_pool",
        threads=SEND_POOL,
        floor_pool_msgs_per_s=floor_pool,
        msgs_per_s=sent / elapsed,
        ratio_pool=sent / elapsed / floor_pool,
    )


if __name__ == "__main__":
    main()
