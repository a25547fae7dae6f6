"""Crash benchmark of the sender: N queued messages, the cron process SIGKILLed
five times in the middle of its sends, then run to the end. Counts, from the
WhatsApp server's own log, the messages sent once and twice, and from the
database the messages neither sent nor flagged ("lost").

Then ``crash_workers``: N more messages, 4 cron worker processes sending from
the same queue at once, one of them SIGKILLed (and started again) every few
tenths of a second; ``in_flight_max`` is the most messages seen ``sending`` at
once (those a killed worker left included), against the bound
``pool`` x workers plus ``pool`` per kill."""

import random
import subprocess
import sys
import time

from benchlib import environment, parser, registry, report, whatsapp_audience
from send import PHONE_NUMBER_ID, TOKEN, duplicates_in, start_stub, stop_stub


def worker(options):
    reg = registry(options)
    while True:
        with environment(reg) as env:
            sent = env["winback.sender"]._cron_send()
            due = env["winback.sender"]._count_due()
        if not options.loop or not (sent or due):
            return


def psql(database, query):
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-d", database, "-c", query],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


def spawn(options, loop=False):
    return subprocess.Popen(
        [sys.executable, __file__, "--worker", "--config", options.config,
         "--database", options.database] + (["--loop"] if loop else [])
    )  # fmt: skip


def run_workers(options, first_id, count=4):
    """``count`` looping workers on the queue; one is killed and replaced
    every 0.2 to 0.6 s, ``options.kills`` times. Returns the kills and the
    most messages seen 'sending' at once."""
    rng = random.Random(7)
    workers = [spawn(options, loop=True) for _index in range(count)]
    started = {w.pid: time.monotonic() for w in workers}
    kills = in_flight_max = 0
    next_kill = time.monotonic() + rng.uniform(0.2, 0.6)
    boot = None  # how long a worker takes to start sending
    sending = (
        "SELECT count(*) FROM winback_message"
        f" WHERE id >= {first_id} AND state = 'sending'"
    )
    while any(w.poll() is None for w in workers):
        in_flight = psql(options.database, sending)
        in_flight_max = max(in_flight_max, in_flight)
        if boot is None and in_flight:
            boot = time.monotonic() - min(started.values()) + 0.5
        # Kill a worker that has had the time to start sending (an Odoo
        # process takes a few seconds to load its registry).
        now = time.monotonic()
        alive = [
            w
            for w in workers
            if w.poll() is None and boot is not None and now - started[w.pid] > boot
        ]
        if kills < options.kills and now >= next_kill and alive:
            victim = rng.choice(alive)
            victim.kill()
            victim.wait()
            fresh = workers[workers.index(victim)] = spawn(options, loop=True)
            started[fresh.pid] = time.monotonic()
            kills += 1
            next_kill = time.monotonic() + rng.uniform(0.2, 0.6)
        time.sleep(0.02)
    return kills, in_flight_max


def sent_count(database):
    return psql(
        database, "SELECT count(*) FROM winback_message WHERE state <> 'queued'"
    )


def run_worker(options, kill_after=None):
    """Run one cron worker; with ``kill_after``, SIGKILL it that many seconds
    after it has started sending (so the kill lands in the middle of sends)."""
    before = sent_count(options.database)
    process = subprocess.Popen(
        [sys.executable, __file__, "--worker", "--config", options.config,
         "--database", options.database]
    )  # fmt: skip
    if kill_after is None:
        process.wait()
        return False
    while process.poll() is None and sent_count(options.database) <= before:
        time.sleep(0.02)
    time.sleep(kill_after)
    if process.poll() is not None:
        return False
    process.kill()
    process.wait()
    return True


def main():
    args = parser(__doc__)
    args.add_argument("--messages", type=int, default=2_000)
    args.add_argument("--kills", type=int, default=5)
    args.add_argument("--worker", action="store_true")
    args.add_argument("--loop", action="store_true")
    args.add_argument("--workers", type=int, default=4)
    options = args.parse_args()
    if options.worker:
        return worker(options)
    reg = registry(options)
    log_path = f"/tmp/winback_crash_{random.randrange(10**9)}.jsonl"
    stub, base_url = start_stub(log_path)
    try:
        with environment(reg) as env:
            campaign = whatsapp_audience(
                env, options.messages, base_url, TOKEN, PHONE_NUMBER_ID
            )
            env["winback.enroller"]._enroll(campaign)
            while env["winback.enrollment"]._queue_due_messages():
                pass  # one batch per call, as the cron's calls
            # No other worker runs here: a message left 'sending' by a killed
            # worker is settled by the next run instead of 30 minutes later.
            env["ir.config_parameter"].set_param(
                "winback_whatsapp.sending_timeout_minutes", "0"
            )
        kills = 0
        rng = random.Random(5)
        while kills < options.kills:
            if run_worker(options, kill_after=rng.uniform(0.1, 0.5)):
                kills += 1
            else:
                break
        run_worker(options)
        run_worker(options)
    finally:
        bodies = stop_stub(stub, log_path)
    counts, duplicates = duplicates_in(bodies)
    states = final_states(reg, 0)
    report_phase("crash", options, kills, counts, duplicates, states)
    crash_workers(options, reg)


def crash_workers(options, reg):
    from odoo.addons.winback_whatsapp.models.winback_sender import SEND_POOL

    log_path = f"/tmp/winback_crash_{random.randrange(10**9)}.jsonl"
    stub, base_url = start_stub(log_path)
    try:
        with environment(reg) as env:
            env["winback.campaign"].search([("state", "=", "running")]).action_done()
            env.cr.execute("SELECT COALESCE(max(id), 0) + 1 FROM winback_message")
            first_id = env.cr.fetchone()[0]
            # Four workers: four times the messages, so that the kills land
            # while they all send.
            campaign = whatsapp_audience(
                env, 4 * options.messages, base_url, TOKEN, PHONE_NUMBER_ID
            )
            env["winback.enroller"]._enroll(campaign)
            while env["winback.enrollment"]._queue_due_messages():
                pass  # one batch per call, as the cron's calls
            # Live workers: a message another worker has on the wire is not
            # flagged while they run.
            env["ir.config_parameter"].set_param(
                "winback_whatsapp.sending_timeout_minutes", "10"
            )
        kills, in_flight_max = run_workers(options, first_id, options.workers)
        with environment(reg) as env:
            env["ir.config_parameter"].set_param(
                "winback_whatsapp.sending_timeout_minutes", "0"
            )
        run_worker(options)  # every worker stopped: flag what they left
    finally:
        bodies = stop_stub(stub, log_path)
    counts, duplicates = duplicates_in(bodies)
    states = final_states(reg, first_id)
    report_phase(
        "crash_workers", options, kills, counts, duplicates, states,
        workers=options.workers, pool=SEND_POOL, in_flight_max=in_flight_max,
        in_flight_bound=SEND_POOL * (options.workers + kills),
    )  # fmt: skip


def final_states(reg, first_id):
    with environment(reg) as env:
        env.cr.execute(
            "SELECT state, error_code, count(*) FROM winback_message "
            "WHERE direction = 'outbound' AND id >= %s GROUP BY 1, 2",
            [first_id],
        )
        return env.cr.fetchall()


def report_phase(name, options, kills, counts, duplicates, states, **more):
    by_state = {}
    for state, code, count in states:
        key = f"{state}_{code}" if code else state
        by_state[key] = by_state.get(key, 0) + count
    lost = sum(c for s, _code, c in states if s in ("queued", "sending"))
    print(f"# {name} final states:", by_state)
    report(
        name,
        messages=sum(c for _s, _code, c in states),
        kills=kills,
        sent_once=sum(1 for c in counts.values() if c == 1),
        duplicates=duplicates,
        lost=lost,
        outcome_unknown=by_state.get("failed_outcome_unknown", 0),
        **more,
    )


if __name__ == "__main__":
    main()
