"""Load benchmark of the WhatsApp webhook: `make bench-webhook`.

Starts an Odoo server (prefork, --workers 4, one cron worker, a fixed
--database as a single-database server is deployed) on a free loopback port
against a scratch database copied from an installed one. It first loads
Odoo's bare /web/health route the same way, as the floor of any Odoo route,
then posts N signed webhook calls from C concurrent clients (10% replays of
earlier calls) while the cron processes them, and checks the database:
every unique inbound message stored once, one chatter message each, every
event processed.

Prints:
  bench webhook events=.. ok=.. rps=.. p50_ms=.. p99_ms=.. lost=.. duplicates=..
  bench webhook_floor route=/web/health ... webhook_p50_ratio=..
  bench webhook_processing ... drain_after_load_s=..
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time

TEMPLATE_DB = "winback_bench_webhook_tpl"
DB = "winback_bench_webhook"
SECRET = "bench-secret"
PNID = "1000000001"

SETUP = """
env['ir.config_parameter'].set_param('web.base.url', 'http://127.0.0.1')
account = env['winback.account'].create({{'name': 'Bench', 'phone_number_id': '{pnid}',
    'app_secret': '{secret}', 'verify_token': 'v'}})
seq = env['winback.campaign'].create({{'name': 'Bench', 'account_id': account.id}})
partners = env['res.partner'].create([
    {{'name': 'Bench %d' % i, 'mobile': '+3933%08d' % i}} for i in range({partners})])
enrolls = env['winback.enrollment'].create([
    {{'partner_id': p.id, 'campaign_id': seq.id, 'phone_e164': p.mobile}}
    for p in partners])
env['winback.message'].create([
    {{'direction': 'outbound', 'state': 'sent', 'enrollment_id': e.id,
      'partner_id': e.partner_id.id, 'account_id': account.id,
      'phone_e164': e.phone_e164, 'wamid': 'wamid.OUT%d' % i}}
    for i, e in enumerate(enrolls)])
env.cr.commit()
print('KEY=' + account.sudo().webhook_key)
"""

RETRY = """
env['winback.webhook.event'].search([('state', '!=', 'done')]).write(
    {'next_attempt_at': '2000-01-01 00:00:00', 'state': 'failed'})
env['winback.webhook.event']._cron_process(batch_size=100000)
env.cr.commit()
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def psql(db, sql):
    out = run(["psql", "-X", "-A", "-t", "-d", db, "-c", sql], capture_output=True)
    return out.stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def odoo_shell(args, db, script):
    cmd = [
        args.python,
        os.path.join(args.odoo_src, "odoo-bin"),
        "shell",
        "-c",
        args.conf,
        "-d",
        db,
        "--no-http",
        "--log-level=warn",
    ]
    out = run(cmd, input=script, capture_output=True)
    if "Traceback" in out.stderr:
        sys.exit("odoo shell failed:\n" + out.stderr)
    return out.stdout


def payload(i, n_partners):
    p = random.randrange(n_partners)
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000000", "phone_number_id": PNID},
    }
    if i % 10 < 7:
        number = "3933%08d" % p
        value["contacts"] = [{"profile": {"name": "Bench"}, "wa_id": number}]
        value["messages"] = [
            {
                "from": number,
                "id": "wamid.IN%d" % i,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "bench reply %d" % i},
                "context": {"from": "15550000000", "id": "wamid.OUT%d" % p},
            }
        ]
    else:
        value["statuses"] = [
            {
                "id": "wamid.OUT%d" % p,
                "status": random.choice(["delivered", "read"]),
                "timestamp": str(int(time.time())),
                "recipient_id": "3933%08d" % p,
            }
        ]
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def load(port, calls, clients):
    """Send ``calls`` ((method, path, body, headers) tuples) from ``clients``
    concurrent keep-alive connections; return (latencies_ms, statuses, s)."""
    lat, codes, lock = [], [], threading.Lock()
    queue = list(calls)

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    return
                method, path, body, headers = queue.pop()
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status = 0
            dt = (time.perf_counter() - t0) * 1000
            with lock:
                lat.append(dt)
                codes.append(status)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lat.sort()
    return lat, codes, time.perf_counter() - t0


def pct(lat, q):
    return lat[min(len(lat) - 1, int(len(lat) * q))]


def signed(path, body):
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": sig}
    return ("POST", path, body, headers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--odoo-src", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--partners", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cron-threads", type=int, default=1)
    ap.add_argument(
        "--dbfilter",
        action="store_true",
        help="serve through --db-filter instead of a fixed --database: Odoo"
        " then lists the databases, on a new PostgreSQL connection, for every"
        " request without a session cookie (every webhook call)",
    )
    args = ap.parse_args()
    random.seed(42)
    odoo = [args.python, os.path.join(args.odoo_src, "odoo-bin"), "-c", args.conf]
    for db in (DB, TEMPLATE_DB):
        run(["dropdb", "--if-exists", "--force", db])
    server = None
    try:
        run(
            odoo
            + [
                "-d",
                TEMPLATE_DB,
                "-i",
                "winback_whatsapp",
                "--stop-after-init",
                "--no-http",
                "--log-level=warn",
                "--without-demo=all",
            ],
            stdout=subprocess.DEVNULL,
        )
        run(["createdb", "-T", TEMPLATE_DB, DB])
        out = odoo_shell(
            args, DB, SETUP.format(pnid=PNID, secret=SECRET, partners=args.partners)
        )
        key = [line for line in out.splitlines() if line.startswith("KEY=")][0][4:]
        port = free_port()
        server = subprocess.Popen(
            odoo
            + [
                "-d",
                DB,
            ]
            + (["--db-filter", f"^{DB}$"] if args.dbfilter else [])
            + [
                "--http-interface",
                "127.0.0.1",
                "--http-port",
                str(port),
                "--workers",
                str(args.workers),
                "--max-cron-threads",
                str(args.cron_threads),
                "--log-level=warn",
                "--limit-time-real",
                "600",
                "--db_maxconn",
                "64",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        path = "/winback_whatsapp/webhook/" + key
        for _ in range(120):
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                c.request(
                    "GET",
                    path + "?hub.mode=subscribe&hub.verify_token=v&hub.challenge=1",
                )
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(1)
        n_unique = args.events - args.events // 10
        bodies = [payload(i, args.partners) for i in range(n_unique)]
        calls = bodies + [random.choice(bodies) for _ in range(args.events - n_unique)]
        random.shuffle(calls)
        # Baseline in the same run: Odoo's own bare route (/web/health,
        # auth="none", no query of its own) under the same load.
        floor_lat, _codes, floor_s = load(
            port, [("GET", "/web/health", None, {})] * args.events, args.clients
        )
        lat, codes, elapsed = load(
            port, [signed(path, body) for body in calls], args.clients
        )
        # The cron (woken by each call) processes the stored events.
        t1 = time.perf_counter()
        while args.cron_threads and time.perf_counter() - t1 < 900:
            left = int(
                psql(
                    DB,
                    "SELECT count(*) FROM winback_webhook_event"
                    " WHERE state = 'pending'",
                )
            )
            if not left:
                break
            time.sleep(1)
        processing = time.perf_counter() - t1
        server.terminate()
        server.wait(30)
        server = None
        failed_first = int(
            psql(DB, "SELECT count(*) FROM winback_webhook_event WHERE state != 'done'")
        )
        odoo_shell(args, DB, RETRY)
        ok = sum(1 for c in codes if c == 200)
        inbound_ids = {
            json.loads(b)["entry"][0]["changes"][0]["value"]
            .get("messages", [{}])[0]
            .get("id")
            for b in bodies
        } - {None}
        stored = int(
            psql(
                DB,
                "SELECT count(DISTINCT wamid) FROM winback_message"
                " WHERE direction='inbound' AND wamid LIKE 'wamid.IN%'",
            )
        )
        not_done = int(
            psql(DB, "SELECT count(*) FROM winback_webhook_event WHERE state != 'done'")
        )
        lost = (len(inbound_ids) - stored) + not_done + (args.events - ok)
        duplicates = int(
            psql(
                DB,
                """
            SELECT coalesce(sum(c - 1), 0) FROM (
              SELECT count(*) c FROM mail_message WHERE model = 'res.partner'
                 AND body LIKE '%bench reply %'
               GROUP BY res_id, body HAVING count(*) > 1) d""",
            )
        )
        dup_rows = int(
            psql(
                DB,
                "SELECT count(*) - count(DISTINCT wamid) FROM winback_message"
                " WHERE wamid LIKE 'wamid.IN%'",
            )
        )
        print(
            "bench webhook events=%d ok=%d rps=%.0f p50_ms=%.1f p99_ms=%.1f"
            " lost=%d duplicates=%d"
            % (
                args.events,
                ok,
                args.events / elapsed,
                pct(lat, 0.5),
                pct(lat, 0.99),
                lost,
                duplicates + dup_rows,
            )
        )
        print(
            "bench webhook_floor route=/web/health requests=%d rps=%.0f"
            " p50_ms=%.1f p99_ms=%.1f webhook_p50_ratio=%.2f"
            % (
                args.events,
                args.events / floor_s,
                pct(floor_lat, 0.5),
                pct(floor_lat, 0.99),
                pct(lat, 0.5) / pct(floor_lat, 0.5),
            )
        )
        print(
            "bench webhook_processing failed_first_pass=%d retried_left=%d"
            " drain_after_load_s=%.1f clients=%d workers=%d cron_threads=%d"
            " dbfilter=%d"
            % (
                failed_first,
                not_done,
                processing,
                args.clients,
                args.workers,
                args.cron_threads,
                args.dbfilter,
            )
        )
    finally:
        if server:
            server.kill()
        for db in (DB, TEMPLATE_DB):
            subprocess.run(["dropdb", "--if-exists", "--force", db], check=False)


if __name__ == "__main__":
    main()
