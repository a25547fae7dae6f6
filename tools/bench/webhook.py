"""Load benchmark of the WhatsApp webhook: `make bench-webhook`.

Starts an Odoo server (prefork, --workers 4, one cron worker, a fixed
--database as a single-database server is deployed) on a free loopback port
against a scratch database copied from an installed one. It first loads
Odoo's bare /web/health route the same way, as the floor of any Odoo route,
then posts N signed webhook calls from C concurrent clients (10% replays of
earlier calls) while the cron processes them, and checks the database:
every unique inbound message stored once, one chatter message each, every
event processed.

Then, on the same server and its one cron worker, at campaign volume:
queues --statuses status-only events (one sent/delivered/read status each,
over --status-messages outbound messages) and times the cron working them
off, against the floor of one bare SQL UPDATE ... FROM (VALUES ...) of the
same statuses; queues --replies replies and times them (chatter posts and
activities included), against the floor of Odoo's own chatter post and to-do
for each of them (REPLY_FLOOR: replies_ratio is the share of that speed the
webhook keeps); then queues the statuses again and, while the cron
works them off, posts --late-replies signed replies and times each from its
200 answer to its chatter post.

Prints:
  bench webhook events=.. ok=.. rps=.. p50_ms=.. p99_ms=.. lost=.. duplicates=..
  bench webhook_floor route=/web/health ... webhook_p50_ratio=..
  bench webhook_processing ... drain_after_load_s=..
  bench webhook_drain statuses=.. statuses_per_s=.. floor_statuses_per_s=..
      replies=.. replies_per_s=.. floor_replies_per_s=.. replies_ratio=..
      queued_statuses=.. late_replies=..
      reply_p50_s=.. reply_p99_s=.. statuses_left_after_replies=..
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

import psycopg2
from psycopg2.extras import execute_values

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
env.cr.execute('''
    INSERT INTO winback_message (direction, state, account_id, company_id, partner_id,
                                 phone_e164, wamid, sent_at, create_date, write_date)
    SELECT 'outbound', 'sent', %s, %s, %s, '+393300000000', 'wamid.ST' || i,
           now() at time zone 'UTC', now() at time zone 'UTC', now() at time zone 'UTC'
      FROM generate_series(0, %s - 1) i''',
    [account.id, account.company_id.id, partners[0].id, {status_messages}])
env.cr.commit()
print('KEY=' + account.sudo().webhook_key)
print('ACCOUNT=%d' % account.id)
print('CRON=%d' % env.ref('winback_whatsapp.ir_cron_winback_webhook_process').id)
"""

# The floor of a reply: what Odoo itself does for one, timed in the same run
# on the same database: the customer's words posted in their chatter,
# notifying whoever answers (by e-mail, queued), and their to-do updated
# (made when there is none). No webhook event, no parsing, no matching.
REPLY_FLOOR = """
import time
from markupsafe import Markup
partners = env['res.partner'].search([('name', '=like', 'Bench %')], order='id')
user = env.ref('base.user_admin')
atype = env.ref('winback_whatsapp.mail_activity_type_winback_reply')
Partner = env['res.partner'].with_context(
    mail_create_nosubscribe=True, mail_notify_force_send=False,
    mail_activity_quick_update=True)
env.cr.commit()
t0 = time.perf_counter()
for i in range({replies}):
    partner = Partner.browse(partners[i % len(partners)].id)
    body = Markup('<b>WhatsApp</b>: <p>bench FL reply %d</p>') % i
    partner.message_post(body=body, author_id=partner.id, message_type='comment',
                         subtype_xmlid='mail.mt_note', partner_ids=user.partner_id.ids)
    todo = env['mail.activity'].search([('res_model', '=', 'res.partner'),
        ('res_id', '=', partner.id), ('activity_type_id', '=', atype.id)], limit=1)
    if todo:
        todo.write({{'note': body, 'summary': 'Answer the WhatsApp reply'}})
    else:
        partner.activity_schedule(activity_type_id=atype.id, note=body,
                                  summary='Answer the WhatsApp reply', user_id=user.id)
    if i % 50 == 49:
        env.cr.commit()
env.cr.commit()
print('FLOOR_S=%f' % (time.perf_counter() - t0))
"""

RETRY = """
env['winback.webhook.event'].search([('state', '!=', 'done')]).write(
    {'next_attempt_at': '2000-01-01 00:00:00', 'state': 'failed'})
env['winback.webhook.event']._cron_process(batch_size=100000)
env.cr.commit()
"""


def value(field="messages", **parts):
    parts.setdefault(
        "metadata", {"display_phone_number": "15550000000", "phone_number_id": PNID}
    )
    return json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": "WABA",
                    "changes": [
                        {
                            "field": field,
                            "value": {"messaging_product": "whatsapp", **parts},
                        }
                    ],
                }
            ],
        }
    )


def status_bodies(n_statuses, n_messages):
    """Statuses as a campaign brings them: sent, delivered and read of each
    message, a few out of order, one per call."""
    now = int(time.time())
    bodies = []
    for i in range(n_statuses):
        message, step = i % n_messages, (i // n_messages) % 3
        status = ["sent", "delivered", "read"][step]
        if i % 50 == 7:  # late: arrives after the one that follows it
            status = "sent"
        bodies.append(
            (
                "wamid.ST%d" % message,
                status,
                value(
                    statuses=[
                        {
                            "id": "wamid.ST%d" % message,
                            "status": status,
                            "timestamp": str(now + step),
                            "recipient_id": "393300000000",
                            "biz_opaque_callback_data": "winback:0",
                        }
                    ]
                ),
            )
        )
    return bodies


def reply_body(tag, i, n_partners):
    p = i % n_partners
    number = "3933%08d" % p
    return value(
        contacts=[{"profile": {"name": "Bench"}, "wa_id": number}],
        messages=[
            {
                "from": number,
                "id": "wamid.%s%d" % (tag, i),
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": "bench %s reply %d" % (tag, i)},
                "context": {"from": "15550000000", "id": "wamid.OUT%d" % p},
            }
        ],
    )


def queue(db, account, bodies, status_only):
    """Store pending events as the webhook does, all at once."""
    with psycopg2.connect(dbname=db) as conn, conn.cursor() as cr:
        execute_values(
            cr,
            f"""
            INSERT INTO winback_webhook_event
                   (account_id, company_id, raw_body, state, attempts, status_only,
                    create_date, write_date)
            SELECT a.id, a.company_id, v.body, 'pending', 0, {bool(status_only)},
                   now() at time zone 'UTC', now() at time zone 'UTC'
              FROM (VALUES %s) v (body)
              JOIN winback_account a ON a.id = {int(account)}
            """,
            [(body,) for body in bodies],
            page_size=5000,
        )
    conn.close()


def wake(db, cron):
    """What ir.cron._trigger does: a due trigger, then a notification."""
    psql(
        db,
        "INSERT INTO ir_cron_trigger (cron_id, call_at) VALUES"
        " (%d, now() at time zone 'UTC')" % int(cron),
    )
    psql("postgres", f"SELECT pg_notify('cron_trigger', '{db}')")


def pending(db):
    return int(
        psql(
            db,
            "SELECT count(*) FROM winback_webhook_event WHERE state = 'pending'",
        )
    )


def drain(db, timeout=900, poll=0.2):
    """Seconds until no event is pending."""
    t0 = time.perf_counter()
    while pending(db) and time.perf_counter() - t0 < timeout:
        time.sleep(poll)
    return time.perf_counter() - t0


def status_floor(db, account, statuses):
    """One bare UPDATE ... FROM (VALUES ...) of the same statuses: no rank,
    no parsing, no event to mark."""
    conn = psycopg2.connect(dbname=db)
    try:
        with conn.cursor() as cr:
            t0 = time.perf_counter()
            execute_values(
                cr,
                """
                UPDATE winback_message m
                   SET state = v.status,
                       delivered_at = now() at time zone 'UTC',
                       write_date = now() at time zone 'UTC'
                  FROM (VALUES %%s) v (wamid, status)
                 WHERE m.account_id = %d AND m.wamid = v.wamid
                """
                % int(account),
                [(wamid, status) for wamid, status, _body in statuses],
                page_size=len(statuses),
            )
            conn.commit()
            return time.perf_counter() - t0
    finally:
        conn.close()


def campaign_drain(args, port, path, account, cron):
    """The figures of issue 13 section 4, on the running server. Returns
    their line, to print given the seconds of the reply floor (timed once
    the server is stopped)."""
    statuses = status_bodies(args.statuses, args.status_messages)
    # Statuses: queued at once, worked off by the one cron worker.
    queue(DB, account, [body for _w, _s, body in statuses], True)
    wake(DB, cron)
    statuses_s = drain(DB)
    psql(
        DB,
        "UPDATE winback_message SET state = 'sent', delivered_at = NULL,"
        " read_at = NULL WHERE wamid LIKE 'wamid.ST%'",
    )
    floor_s = status_floor(DB, account, statuses)
    # Replies: chatter posts and activities.
    queue(
        DB,
        account,
        [reply_body("QR", i, args.partners) for i in range(args.replies)],
        False,
    )
    wake(DB, cron)
    replies_s = drain(DB)
    # A reply while the statuses of a campaign are queued.
    psql(
        DB,
        "UPDATE winback_message SET state = 'sent', delivered_at = NULL,"
        " read_at = NULL WHERE wamid LIKE 'wamid.ST%'",
    )
    queue(DB, account, [body for _w, _s, body in statuses], True)
    wake(DB, cron)
    answered, seen, lock = {}, {}, threading.Lock()
    stop = threading.Event()

    def watch():
        conn = psycopg2.connect(dbname=DB)
        conn.autocommit = True
        with conn.cursor() as cr:
            while not stop.is_set():
                cr.execute(
                    "SELECT substring(body from 'bench LR reply ([0-9]+)')"
                    "  FROM mail_message WHERE model = 'res.partner'"
                    "   AND body LIKE '%%bench LR reply %%'"
                )
                now = time.perf_counter()
                with lock:
                    for (i,) in cr.fetchall():
                        seen.setdefault(int(i), now)
                time.sleep(0.02)
        conn.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(args.late_replies):
        _m, p, b, h = signed(path, reply_body("LR", i, args.partners).encode())
        conn.request("POST", p, body=b, headers=h)
        resp = conn.getresponse()
        resp.read()
        with lock:
            answered[i] = time.perf_counter()
        time.sleep(args.late_reply_gap)
    left = pending(DB)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 120:
        with lock:
            if len(seen) >= len(answered):
                break
        time.sleep(0.1)
    stop.set()
    watcher.join()
    drain(DB)
    waits = sorted(max(0.0, seen.get(i, float("inf")) - answered[i]) for i in answered)

    def line(reply_floor_s):
        return (
            "bench webhook_drain statuses=%d statuses_per_s=%.0f"
            " floor_statuses_per_s=%.0f replies=%d replies_per_s=%.1f"
            " floor_replies_per_s=%.1f replies_ratio=%.2f"
            " queued_statuses=%d late_replies=%d reply_p50_s=%.2f reply_p99_s=%.2f"
            " statuses_left_after_replies=%d"
            % (
                args.statuses,
                args.statuses / statuses_s,
                args.statuses / floor_s,
                args.replies,
                args.replies / replies_s,
                args.replies / reply_floor_s,
                reply_floor_s / replies_s,
                args.statuses,
                len(waits),
                pct(waits, 0.5),
                pct(waits, 0.99),
                left,
            )
        )

    return line


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
    global DB, TEMPLATE_DB  # noqa: PLW0603 - one scratch database per run
    ap = argparse.ArgumentParser()
    ap.add_argument("--odoo-src", required=True)
    ap.add_argument("--conf", required=True)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--partners", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--cron-threads", type=int, default=1)
    ap.add_argument("--statuses", type=int, default=20000)
    ap.add_argument("--status-messages", type=int, default=10000)
    ap.add_argument("--replies", type=int, default=1000)
    ap.add_argument("--late-replies", type=int, default=100)
    ap.add_argument("--late-reply-gap", type=float, default=0.1)
    ap.add_argument(
        "--dbfilter",
        action="store_true",
        help="serve through --db-filter instead of a fixed --database: Odoo"
        " then lists the databases, on a new PostgreSQL connection, for every"
        " request without a session cookie (every webhook call)",
    )
    ap.add_argument(
        "--db",
        default=DB,
        help="scratch database (and its template, with _tpl), dropped after",
    )
    args = ap.parse_args()
    if not args.db.startswith("winback_"):
        sys.exit("--db must start with winback_")
    DB, TEMPLATE_DB = args.db, args.db + "_tpl"
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
            args,
            DB,
            SETUP.format(
                pnid=PNID,
                secret=SECRET,
                partners=args.partners,
                status_messages=args.status_messages,
            ),
        )
        found = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        key, account, cron = found["KEY"], found["ACCOUNT"], found["CRON"]
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
        drain_line = None
        if args.cron_threads and args.statuses:
            drain_line = campaign_drain(args, port, path, account, cron)
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
        if drain_line:
            # Odoo's own replies, timed with the server stopped, as the
            # cron worker had the machine to itself for the webhook's.
            out = odoo_shell(args, DB, REPLY_FLOOR.format(replies=args.replies))
            print(drain_line(float(out.split("FLOOR_S=")[1].split()[0])))
    finally:
        if server:
            server.kill()
        for db in (DB, TEMPLATE_DB):
            subprocess.run(["dropdb", "--if-exists", "--force", db], check=False)


if __name__ == "__main__":
    main()
