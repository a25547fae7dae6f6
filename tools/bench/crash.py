"""Crash benchmark of the sender: N queued messages, the cron process SIGKILLed
five times in the middle of its sends, then run to the end. Counts, from the
WhatsApp server's own log, the messages sent once and twice, and from the
database the messages neither sent nor flagged ("lost")."""

import random
import subprocess
import sys
import time

from benchlib import environment, parser, registry, report, whatsapp_audience
from send import PHONE_NUMBER_ID, TOKEN, duplicates_in, start_stub, stop_stub


def worker(options):
    reg = registry(options)
    with environment(reg) as env:
        env["winback.message"]._cron_send()


def sent_count(database):
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-d", database, "-c",
         "SELECT count(*) FROM winback_message WHERE state <> 'queued'"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(out.stdout.strip())


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
    with environment(reg) as env:
        env.cr.execute(
            "SELECT state, error_code, count(*) FROM winback_message "
            "WHERE direction = 'outbound' GROUP BY 1, 2"
        )
        states = env.cr.fetchall()
    by_state = {}
    for state, code, count in states:
        key = f"{state}_{code}" if code else state
        by_state[key] = by_state.get(key, 0) + count
    lost = sum(c for s, _code, c in states if s in ("queued", "sending"))
    print("# final states:", by_state)
    report(
        "crash",
        messages=options.messages,
        kills=kills,
        sent_once=sum(1 for c in counts.values() if c == 1),
        duplicates=duplicates,
        lost=lost,
        outcome_unknown=by_state.get("failed_outcome_unknown", 0),
    )


if __name__ == "__main__":
    main()
