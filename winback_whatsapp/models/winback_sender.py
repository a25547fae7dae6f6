import logging
import time
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.cron import retry_serialization_failure
from ..tools.wa_number import US_NUMBER_PATTERN
from ..tools.whatsapp_api import SendPool

_logger = logging.getLogger(__name__)

# Provider calls on the wire at once per cron run, in two waves of half of it:
# also the most messages a crash can leave "outcome unknown" (nothing else is
# claimed). Meta answers in about 0.1 to 0.5 s: 128 calls in flight carry
# 250 to 1,000 messages per second; each account keeps its own rate limit.
SEND_POOL = 128
# Seconds a cron run starts calls for before it ends and reports what
# remains, so that ir.cron runs it again. With its last calls
# (WhatsAppApi.TIMEOUT, 5 s to connect and 20 s to read) a run stays well
# under Odoo's limit_time_real_cron (default -1: limit_time_real, 120 s),
# which would kill it in the middle of its calls.
SEND_TIME_BUDGET = 60
# Attempts to record a wave's outcomes when a status webhook changed one of
# its messages meanwhile.
RECORD_ATTEMPTS = 3
# Why a claimed message may not be sent (``_due_query``), checked again as
# it is claimed: the customer's company, then for marketing messages the
# customer, their consent, the blacklist and dormancy.
REFUSALS = ("partner_company", "no_partner", "no_consent", "blacklisted", "dormant")
# And a United States number: Meta delivers no marketing template there.
REFUSALS += ("us_number",)


class WinbackSender(models.AbstractModel):
    """The send queue's worker: the cron that takes the due outbound
    ``winback.message`` records (the queue), checks them again, and sends
    them through the provider (``tools/whatsapp_api.py``) on a bounded pool
    of calls; what the provider answers is applied by ``winback.status``."""

    _name = "winback.sender"
    _description = "WhatsApp send queue worker"

    @api.model
    def _cron_send(self):
        """Send the queued messages that are due, up to ``SEND_POOL`` calls
        on the wire at once, each account at most at its messages per second.

        Messages are claimed with FOR UPDATE SKIP LOCKED, so several cron
        workers on several servers share the queue, a wave (half the pool)
        at a time. A wave is marked ``sending`` and committed just BEFORE its
        HTTP calls start, and its outcomes are committed as soon as they are
        known, while the next wave is on the wire: after a crash no message
        is sent twice, and no more than the calls then on the wire (at most
        ``SEND_POOL``) stay ``sending`` until a status webhook settles them,
        or end failed with "outcome unknown"; nothing else was claimed.
        Starts no call after ``SEND_TIME_BUDGET`` seconds and reports its
        progress, so that ``ir.cron`` runs it again while due messages
        remain. Returns how many messages WhatsApp accepted.
        """
        Status = self.env["winback.status"]
        Status._fail_stuck_sending()
        self._cancel_foreign_company()
        self.env.cr.commit()  # pylint: disable=invalid-commit
        deadline = time.monotonic() + SEND_TIME_BUDGET
        with SendPool(SEND_POOL) as pool:
            sent = self._send_due(pool, deadline)
        self.env["ir.cron"]._notify_progress(done=sent, remaining=self._count_due())
        return sent

    @api.model
    def _trigger_send(self, at=None):
        """Wake the send cron now, or at ``at`` (naive UTC), when the first
        queued message is due (it also runs every few minutes)."""
        self.env.ref("winback_whatsapp.ir_cron_winback_send").sudo()._trigger(at=at)

    @api.model
    def _send_due(self, pool, deadline):
        """The send loop: start waves while the pool has room for one, then
        record the outcomes of the calls that end. One call at a time goes
        to a number, so that a customer gets their messages in order.
        Returns how many messages were accepted."""
        wave = max(pool.size // 2, 1)
        run = {
            "clients": {},
            "recipients": {},
            "busy": {},
            "templates": {},
            "links": {},
        }
        sent = 0
        while True:
            claimed = 0
            if pool.free >= wave and time.monotonic() < deadline:
                claimed = self._start_wave(pool, wave, run)
                if claimed and pool.free >= wave:
                    continue
            if not pool.running:
                if claimed:
                    continue
                return sent
            missing = wave - pool.free
            outcomes = pool.collect(at_least=missing if missing > 0 else pool.running)
            for _account_id, message_id, _wamid, _error in outcomes:
                run["busy"].pop(message_id, None)
            sent += self._record_outcomes(outcomes)

    @api.model
    def _start_wave(self, pool, size, run):
        """Claim up to ``size`` due messages, check and render them, mark
        those that may go ``sending``, commit, and start their calls.
        Returns how many messages were claimed (0: none is due)."""
        rows = self._claim_due(size, set(run["busy"].values()))
        if not rows:
            return 0
        ready, rendered = self._prepare_wave(rows, run, pool.session)
        sending = ready._mark_sending(rendered)
        calls = [
            (
                m.account_id.id,
                m.id,
                m.phone_e164 or m.whatsapp_bsuid,
                m._provider_call(run["clients"], run["templates"], sending),
            )
            for m in ready
            if m.id in sending
        ]
        self.env.cr.commit()  # pylint: disable=invalid-commit
        for account_id, message_id, number, (call, rate) in calls:
            run["busy"][message_id] = number
            pool.submit(account_id, message_id, call, rate)
        return len(rows)

    @api.model
    def _claim_due(self, limit, busy_numbers=()):
        """Up to ``limit`` due messages, locked (FOR UPDATE SKIP LOCKED), none
        to a number in ``busy_numbers`` nor two to one number, each with the
        code of the reason it may not be sent (``REFUSALS``) or None."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "%s ORDER BY m.scheduled_at NULLS FIRST, m.id LIMIT %s "
                "FOR UPDATE OF m SKIP LOCKED",
                self._due_query(busy_numbers),
                limit,
            )
        )
        found, numbers = [], set()
        for message_id, number, refusal in self.env.cr.fetchall():
            if number and number in numbers:
                continue  # after the first one; stays queued for a later wave
            numbers.add(number)
            found.append((message_id, refusal))
        # One recordset: the ORM reads the wave's messages, customers and
        # campaigns in one query each, not one per message.
        messages = self.env["winback.message"].browse(mid for mid, _r in found)
        return list(zip(messages, (refusal for _m, refusal in found), strict=True))

    @api.model
    def _due_query(self, busy_numbers=()):
        """The outbound messages due now whose account and campaign send:
        id, number, and why a message may not be sent, checked again as it
        is claimed (company, consent, blacklist, dormancy: see REFUSALS), in
        SQL for the whole claim at once."""
        return SQL(
            """
            SELECT m.id, COALESCE(m.phone_e164, m.whatsapp_bsuid), CASE
                   WHEN p.company_id IS NOT NULL AND p.company_id <> m.company_id
                        THEN 'partner_company'
                   WHEN m.enrollment_id IS NULL
                        AND t.category IS DISTINCT FROM 'marketing' THEN NULL
                   WHEN p.id IS NULL THEN 'no_partner'
                   WHEN p.winback_consent_date IS NULL
                        OR COALESCE(p.winback_consent_source, '') = ''
                        THEN 'no_consent'
                   WHEN EXISTS (SELECT 1 FROM phone_blacklist bl
                                 WHERE bl.number = m.phone_e164 AND bl.active)
                        THEN 'blacklisted'
                   WHEN EXISTS (SELECT 1 FROM winback_bsuid_optout o
                                 WHERE o.bsuid IN (m.whatsapp_bsuid, p.whatsapp_bsuid)
                                   AND o.active)
                        THEN 'blacklisted'
                   WHEN p.winback_dormant THEN 'dormant'
                   WHEN left(m.phone_e164, 2) = '+1'
                        AND m.phone_e164 ~ %(us)s THEN 'us_number'
                   END AS refusal
              FROM winback_message m
              JOIN winback_account a ON a.id = m.account_id
                                    AND a.company_id = m.company_id
         LEFT JOIN res_partner p ON p.id = m.partner_id
         LEFT JOIN winback_template t ON t.id = m.template_id
         LEFT JOIN winback_enrollment e ON e.id = m.enrollment_id
         LEFT JOIN winback_campaign s ON s.id = e.campaign_id
             WHERE m.direction = 'outbound' AND m.state = 'queued'
               AND (m.scheduled_at IS NULL OR m.scheduled_at <= %(now)s)
               AND a.state = 'active' AND a.active
               AND (s.id IS NULL OR s.state = 'running')
               AND (COALESCE(m.phone_e164, m.whatsapp_bsuid) IS NULL
                    OR COALESCE(m.phone_e164, m.whatsapp_bsuid) <> ALL(%(busy)s))
            """,
            now=fields.Datetime.now(),
            busy=sorted(busy_numbers),
            us=US_NUMBER_PATTERN,
        )

    @api.model
    def _count_due(self):
        """How many messages are due and sendable now (for the progress)."""
        self.env.flush_all()
        self.env.cr.execute(SQL("SELECT count(*) FROM (%s) due", self._due_query()))
        return self.env.cr.fetchone()[0]

    @api.model
    def _cancel_foreign_company(self):
        """A message is sent in its account's company only: a queued message
        of another company (or of none) is never claimed, and is cancelled
        here with the reason."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT m.id FROM winback_message m
              JOIN winback_account a ON a.id = m.account_id
             WHERE m.direction = 'outbound' AND m.state = 'queued'
               AND m.company_id IS DISTINCT FROM a.company_id
               FOR UPDATE OF m SKIP LOCKED
            """
        )
        messages = self.env["winback.message"].browse(
            row[0] for row in self.env.cr.fetchall()
        )
        for message in messages:
            account_company = message.account_id.company_id
            message._cancel_with(
                self.env._(
                    "Not sent: the message's company (%(company)s) is not its "
                    "WhatsApp account's company (%(account_company)s).",
                    company=message.company_id.name or "-",
                    account_company=account_company.name,
                )
            )

    @api.model
    def _prepare_wave(self, rows, run, session):
        """Act on the claimed messages that may not go (cancelled with the
        reason, failed, or rescheduled to their send window or to when the
        account's daily limit allows), render the others. Returns those to
        send now, and what each was rendered with (``{id: (parameters,
        text)}``)."""
        now = fields.Datetime.now()
        ready = []
        rendered = {}
        for message, refusal in rows:
            if refusal:
                message._cancel_with(
                    message.partner_id._winback_refusal_text(
                        refusal, message.phone_e164 or message.whatsapp_bsuid
                    )
                )
            elif not (message.phone_e164 or message.whatsapp_bsuid):
                message._fail_with("invalid_number", self.env._("No valid number."))
            elif (window := message._send_window(now))[0] != now:
                message.write(
                    {"scheduled_at": window[0], "window_closes_at": window[1]}
                )
            elif not message._client(run["clients"], session):
                continue
            elif not message._within_daily_limit(run["recipients"]):
                message.scheduled_at = now + timedelta(hours=1)
            elif not message.template_id:
                ready.append(message.id)
            elif result := message._render_template(run["links"]):
                rendered[message.id] = result
                ready.append(message.id)
        return self.env["winback.message"].browse(ready), rendered

    @api.model
    def _record_outcomes(self, outcomes):
        """Write and commit what the provider answered: ``(account id,
        message id, wamid, error)`` of the calls that ended. Returns how
        many were accepted. Again on a fresh snapshot if a status webhook
        changed one of these messages meanwhile."""
        if not outcomes:
            return 0

        def record():
            accepted = [(mid, wamid) for _a, mid, wamid, error in outcomes if not error]
            sent = self._record_accepted(accepted)
            for _account_id, message_id, _wamid, error in outcomes:
                if error:
                    self.env["winback.status"]._apply_send_error(
                        self.env["winback.message"].browse(message_id), error
                    )
            self.env.cr.commit()  # pylint: disable=invalid-commit
            return sent

        return retry_serialization_failure(
            self.env.cr, record, RECORD_ATTEMPTS, "WhatsApp send outcomes"
        )

    @api.model
    def _record_accepted(self, accepted):
        """``(message id, wamid)`` WhatsApp accepted: sent now, in one
        statement, unless a status already said more; their enrollments move
        to the next step. Returns how many there were."""
        if not accepted:
            return 0
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_message m
                   SET wamid = v.wamid, state = 'sent', sent_at = %(now)s,
                       write_uid = %(uid)s, write_date = %(now)s
                  FROM (VALUES %(values)s) AS v(id, wamid), winback_account a
                 WHERE m.id = v.id AND m.state = 'sending' AND a.id = m.account_id
             RETURNING m.id, a.provider = 'simulator',
                       m.chatter_author_id IS NOT NULL
                """,
                now=fields.Datetime.now(),
                uid=self.env.uid,
                values=SQL(", ").join(SQL("(%s, %s)", *pair) for pair in accepted),
            )
        )
        rows = self.env.cr.fetchall()
        Message = self.env["winback.message"]
        Message.invalidate_model(["wamid", "state", "sent_at", "write_date"])
        moved = Message.browse(row[0] for row in rows)
        # A status webhook got there first: it moved the message on (and its
        # enrollment); only the wamid is missing, maybe.
        moved_ids = set(moved.ids)
        for message_id, wamid in accepted:
            message = Message.browse(message_id)
            if message_id not in moved_ids and not message.wamid:
                message.wamid = wamid
        self.env["winback.enrollment"]._on_message_sent(moved)
        Message.browse(row[0] for row in rows if row[1])._simulate_read()
        Message.browse(row[0] for row in rows if row[2])._log_in_chatter()
        return len(accepted)
