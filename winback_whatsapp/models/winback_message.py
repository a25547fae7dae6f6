import functools
import json
import logging
import time
from datetime import timedelta

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from ..tools.access import check_group
from ..tools.whatsapp_api import (
    FAIL,
    OPT_OUT,
    PAUSE_ACCOUNT,
    PAUSE_CAMPAIGN,
    RETRY,
    UNKNOWN,
    WAIT,
    SendPool,
    WhatsAppError,
    error_policy,
)

_logger = logging.getLogger(__name__)

# Messages claimed (locked, then sent in turn) at a time by the send cron.
SEND_BATCH = 50
# Provider calls on the wire at once per cron run: also the most messages a
# crash can leave "outcome unknown" (the rest of a claim stays queued).
SEND_POOL = 16
# Seconds a cron run starts calls for before it ends and reports what
# remains, so that ir.cron runs it again. With its last calls
# (WhatsAppApi.TIMEOUT, 5 s to connect and 20 s to read) a run stays well
# under Odoo's limit_time_real_cron (default -1: limit_time_real, 120 s),
# which would kill it in the middle of its calls.
SEND_TIME_BUDGET = 60
SENDING_TIMEOUT = (
    30  # minutes; ir.config_parameter winback_whatsapp.sending_timeout_minutes
)
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=1)
WAIT_DELAY = timedelta(hours=24, minutes=5)  # after 131049, the marketing limit
# The method applying each policy of whatsapp_api.ERROR_POLICY.
ERROR_HANDLERS = {
    UNKNOWN: "_on_outcome_unknown",
    RETRY: "_on_retry_error",
    WAIT: "_on_retry_error",
    FAIL: "_fail_with",
    OPT_OUT: "_on_opt_out_error",
    PAUSE_CAMPAIGN: "_on_template_error",
    PAUSE_ACCOUNT: "_on_account_error",
}
MESSAGE_RETENTION = 365  # days; winback_whatsapp.message_retention_days

MESSAGE_STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("received", "Received"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class WinbackMessage(models.Model):
    _name = "winback.message"
    _description = "WhatsApp Message"
    _order = "id desc"
    _rec_name = "phone_e164"

    direction = fields.Selection(
        [("outbound", "Outbound"), ("inbound", "Inbound")],
        required=True,
        default="outbound",
    )
    enrollment_id = fields.Many2one(
        "winback.enrollment", index=True, ondelete="cascade"
    )
    step_id = fields.Many2one("winback.step", ondelete="set null")
    campaign_id = fields.Many2one(
        related="enrollment_id.campaign_id", store=True, index=True
    )
    account_id = fields.Many2one("winback.account", index=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", index=True)
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null")
    template_id = fields.Many2one("winback.template", ondelete="set null")
    phone_e164 = fields.Char("Number", index=True)
    body = fields.Text()
    wamid = fields.Char("WhatsApp message ID", index=True, copy=False)
    biz_opaque_callback_data = fields.Char(copy=False)
    context_wamid = fields.Char(
        "In reply to", help="For an inbound reply: the wamid it answers."
    )
    state = fields.Selection(
        MESSAGE_STATES, default="queued", required=True, index=True
    )
    error_code = fields.Char()
    error_message = fields.Text()
    attempt_count = fields.Integer(default=0)
    scheduled_at = fields.Datetime(
        "Send after", index=True, help="Not sent before this time."
    )
    sent_at = fields.Datetime()
    delivered_at = fields.Datetime()
    read_at = fields.Datetime()
    failed_at = fields.Datetime()
    received_at = fields.Datetime()
    profile_name = fields.Char(
        "WhatsApp profile name", help="Name the customer shows on WhatsApp."
    )
    inbound_type = fields.Char(
        "WhatsApp message type",
        readonly=True,
        help="For an inbound message: text, button, interactive, reaction, image...",
    )
    render_params = fields.Text(
        "Sent parameters", readonly=True, help="The template parameters, as sent."
    )
    chatter_author_id = fields.Many2one(
        "res.partner",
        "Written by",
        readonly=True,
        help="A message written by hand: once sent, or if it fails, it is "
        "logged in the customer's chatter under this author.",
    )
    handled = fields.Boolean(
        readonly=True,
        copy=False,
        help="For an inbound message: filed in the partner's chatter and "
        "applied (keywords, enrollment, activity). Done once.",
    )

    def init(self):
        # At most one outbound message per (enrollment, step): the database
        # itself refuses a second one, whatever the number of workers.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS winback_message_enrollment_step_uniq
                ON winback_message (enrollment_id, step_id)
             WHERE direction = 'outbound'
            """
        )
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS winback_message_wamid_uniq
                ON winback_message (account_id, wamid)
             WHERE wamid IS NOT NULL
            """
        )

    def write(self, vals):
        if not self.env.su:
            self._check_manual_write(vals)
        return super().write(vals)

    def _check_manual_write(self, vals):
        """Messages are what was sent or received: written by the engine and
        the webhook only. By hand, a user only chooses the partner of an
        unmatched reply (then links it), among the partners they can read."""
        if set(vals) - {"partner_id"} or any(
            m.direction != "inbound" or m.handled for m in self
        ):
            raise AccessError(
                self.env._(
                    "WhatsApp messages cannot be changed by hand; only the "
                    "customer of an unmatched reply can be chosen."
                )
            )
        if vals.get("partner_id"):
            self.env["res.partner"].browse(vals["partner_id"]).check_access("read")

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _cron_send(self, batch_size=SEND_BATCH):
        """Send the queued messages that are due, ``SEND_POOL`` calls at a
        time, each account at most at its messages per second.

        Messages are claimed with FOR UPDATE SKIP LOCKED, so several cron
        workers on several servers share the queue. A message is marked
        ``sending`` and committed just BEFORE its HTTP call, and its outcome
        is committed as soon as the call ends: after a crash no message is
        sent twice, and no more than the calls then on the wire (at most
        ``SEND_POOL``) stay ``sending`` until a status webhook reconciles
        them, or end failed with "outcome unknown"; the messages claimed but
        not sent are still ``queued``. Starts no call after
        ``SEND_TIME_BUDGET`` seconds and reports its progress, so that
        ``ir.cron`` runs it again while due messages remain.
        """
        self._fail_stuck_sending()
        self._cancel_foreign_company()
        self.env.cr.commit()  # pylint: disable=invalid-commit
        deadline = time.monotonic() + SEND_TIME_BUDGET
        with SendPool(SEND_POOL) as pool:
            sent = self._send_due(pool, deadline, batch_size)
        self.env["ir.cron"]._notify_progress(done=sent, remaining=self._count_due())
        return sent

    @api.model
    def _trigger_send(self):
        """Wake the send cron now (it also runs every few minutes)."""
        self.env.ref("winback_whatsapp.ir_cron_winback_send").sudo()._trigger()

    @api.model
    def _send_due(self, pool, deadline, batch_size):
        """The send loop: one transaction per turn marks ``sending`` the
        messages that take free places in the pool and records the calls
        that ended; then those calls start. A turn waits for half the pool to
        be free, and one call at a time goes to a number, so that a customer
        gets their messages in order. Returns how many were sent."""
        sent = 0
        claimed = []  # ids claimed in advance: re-claimed when their turn comes
        clients = {}
        busy = {}  # message id: number, of the calls on the wire
        outcomes = []  # of the calls that ended, not recorded yet
        idle = False
        while True:
            wait_for = pool.running if idle else pool.size // 2 - pool.free
            outcomes += pool.collect(at_least=max(wait_for, 0))
            for _account_id, message_id, _wamid, _error in outcomes:
                busy.pop(message_id, None)
            try:
                wave = self.browse()
                if time.monotonic() < deadline:
                    wave = self._claim_wave(pool, claimed, batch_size, busy, clients)
                sent += self._record_outcomes(outcomes)
                ready = wave._mark_sending()
                self.env.cr.commit()  # pylint: disable=invalid-commit
            except psycopg2.errors.SerializationFailure:
                # Another worker or a status webhook changed these rows
                # meanwhile: nothing of this turn happened; again.
                self.env.cr.rollback()
                idle = False
                continue
            outcomes = []
            for message in ready:
                api, rate = clients[message.account_id.id]
                busy[message.id] = message.phone_e164
                pool.submit(
                    message.account_id.id, message.id, message._provider_call(api), rate
                )
            idle = not wave
            if idle and not pool.running:
                return sent

    def _claim_wave(self, pool, claimed, batch_size, busy, clients):
        """Lock due messages for the pool's free places, none to a number in
        ``busy`` (values) nor twice to one number: first among those claimed
        in advance (``claimed``), else a new batch of ``batch_size``, checked
        and rendered at once (``_prepare_send``). What is not taken stays in
        ``claimed``, in order (unlocked at the next commit and still
        ``queued``: another worker may take it meanwhile)."""
        count = pool.free
        wave = self.browse()
        numbers = set(busy.values())
        for fresh in (False, True):
            if len(wave) >= count or (claimed if fresh else not claimed):
                continue
            if fresh:
                candidates = self._claim_due(batch_size) - wave
                candidates = candidates._prepare_send(clients, pool.session)
            else:
                candidates = self._claim_due(len(claimed), ids=claimed)
            claimed[:] = []
            for message in candidates:
                if len(wave) < count and message.phone_e164 not in numbers:
                    wave |= message
                    numbers.add(message.phone_e164)
                else:
                    claimed.append(message.id)
        return wave

    def _claim_due(self, limit, ids=None):
        """Up to ``limit`` due messages (among ``ids``), locked with FOR
        UPDATE SKIP LOCKED."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "%s ORDER BY m.scheduled_at NULLS FIRST, m.id LIMIT %s "
                "FOR UPDATE OF m SKIP LOCKED",
                self._due_query(ids),
                limit,
            )
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

    @api.model
    def _due_query(self, ids=None):
        """The outbound messages due now whose account and campaign send."""
        return SQL(
            """
            SELECT m.id FROM winback_message m
              JOIN winback_account a ON a.id = m.account_id
                                    AND a.company_id = m.company_id
         LEFT JOIN winback_enrollment e ON e.id = m.enrollment_id
         LEFT JOIN winback_campaign s ON s.id = e.campaign_id
             WHERE m.direction = 'outbound' AND m.state = 'queued'
               AND (m.scheduled_at IS NULL OR m.scheduled_at <= %(now)s)
               AND a.state = 'active' AND a.active
               AND (s.id IS NULL OR s.state = 'running')
               %(among)s
            """,
            now=fields.Datetime.now(),
            among=SQL("AND m.id = ANY(%s)", list(ids)) if ids else SQL(""),
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
        for message in self.browse(row[0] for row in self.env.cr.fetchall()):
            message._cancel_with(message._company_refusal())

    def _company_refusal(self):
        """Why this message may not be sent in its company, or False."""
        self.ensure_one()
        account_company = self.account_id.company_id
        if self.company_id != account_company:
            return self.env._(
                "Not sent: the message's company (%(company)s) is not its "
                "WhatsApp account's company (%(account_company)s).",
                company=self.company_id.name or "-",
                account_company=account_company.name,
            )
        company = self.partner_id.company_id
        if company and company != self.company_id:
            return self.env._(
                "Not sent: the customer belongs to another company (%(company)s).",
                company=company.name,
            )
        return False

    def _is_marketing(self):
        """Campaign steps and marketing templates, whoever queued them (not
        the STOP confirmation nor utility templates)."""
        self.ensure_one()
        return bool(self.enrollment_id) or self.template_id.category == "marketing"

    @api.model
    def _marketing_refusal(self, partner, number):
        """Why a marketing message may not go to ``partner`` at ``number``
        (E.164), or False: no consent, opted out (blacklist) or dormant."""
        if not partner:
            return self.env._(
                "No customer for %(number)s: marketing messages go to consenting "
                "customers only.",
                number=number,
            )
        if not partner.winback_consent_date or not partner.winback_consent_source:
            return self.env._(
                "%(partner)s has not given WhatsApp marketing consent (date and "
                "source on the Win-back tab of the contact).",
                partner=partner.display_name,
            )
        if (
            partner.sudo().phone_sanitized_blacklisted
            if number == partner.phone_sanitized
            else self.env["phone.blacklist"]
            .sudo()
            .search_count([("number", "=", number)], limit=1)
        ):
            return self.env._(
                "%(number)s is on the blacklist (the customer opted out): no "
                "marketing message goes to it.",
                number=number,
            )
        if partner.winback_dormant:
            return self.env._(
                "%(partner)s is dormant (silent after a whole win-back "
                "campaign): no more marketing messages.",
                partner=partner.display_name,
            )
        return False

    def _prepare_send(self, clients, session=None):
        """Check again, as they are claimed to be sent, what may have changed
        since queuing: company, consent, blacklist, dormancy, send window,
        daily limit, the account's client (built once per run in
        ``clients``); render the text. Returns the messages to send."""
        now = fields.Datetime.now()
        ready = self.browse()
        recipients = {}
        for message in self:
            if not message._sendable(now, clients, session):
                continue
            account = message.account_id
            if account.daily_recipient_limit > 0:
                if account.id not in recipients:
                    recipients[account.id] = account._recipients_last_24h()
                seen = recipients[account.id]
                if (
                    message.phone_e164 not in seen
                    and len(seen) >= account.daily_recipient_limit
                ):
                    message.scheduled_at = now + timedelta(hours=1)
                    continue
                seen.add(message.phone_e164)
            if message.template_id and not message._render_template():
                continue
            ready |= message
        return ready

    def _mark_sending(self):
        """Mark the messages about to go on the wire ``sending`` (one
        statement: a turn of the send loop runs it for every wave)."""
        if not self:
            return self
        self.env.flush_all()
        self.env.cr.execute(
            """
            UPDATE winback_message
               SET state = 'sending', error_code = NULL, error_message = NULL,
                   attempt_count = COALESCE(attempt_count, 0) + 1,
                   biz_opaque_callback_data = 'winback:' || id,
                   write_uid = %s, write_date = (now() at time zone 'UTC')
             WHERE id = ANY(%s)
            """,
            [self.env.uid, self.ids],
        )
        self.invalidate_recordset()
        return self

    def _window_opens(self, now):
        """When the campaign's send window opens for this customer (``now``
        when it is open, and for messages of no campaign)."""
        self.ensure_one()
        campaign = self.enrollment_id.campaign_id
        if not campaign:
            return now
        return campaign._next_send_time(self.partner_id, self.phone_e164, now)

    def _sendable(self, now, clients, session):
        """Whether this message may go now: refused ones are cancelled or
        failed, those outside their window wait for it, and those of an
        account whose client cannot be built stay queued (the account
        pauses)."""
        self.ensure_one()
        refusal = self._company_refusal() or (
            self._is_marketing()
            and self._marketing_refusal(self.partner_id, self.phone_e164)
        )
        if refusal:
            self._cancel_with(refusal)
            return False
        if not self.phone_e164:
            self._fail_with("invalid_number", self.env._("No valid number."))
            return False
        opens = self._window_opens(now)
        if opens != now:
            self.scheduled_at = opens
            return False
        account = self.account_id
        if account.id not in clients:
            try:
                clients[account.id] = (
                    account._get_api(session=session),
                    account.messages_per_second,
                )
            except Exception as error:  # noqa: BLE001
                # Nothing left: the account needs an administrator.
                _logger.warning("WhatsApp account %s unusable: %s", account.id, error)
                clients[account.id] = error
        if isinstance(clients[account.id], Exception):
            self.error_message = str(clients[account.id])
            account._pause(str(clients[account.id]))
            return False
        return True

    def _render_template(self):
        """Render the template's parameters in the message's own company;
        a message that cannot be rendered fails alone, with the reason."""
        self.ensure_one()
        template = self.template_id.with_company(self.company_id)
        try:
            params, text = template._render(
                self.partner_id,
                self.enrollment_id,
                campaign=self.step_id.campaign_id,
            )
        except UserError as error:
            self._fail_with("missing_value", str(error))
            return False
        except Exception as error:
            _logger.exception("WhatsApp message %s could not be rendered", self.id)
            self._fail_with(
                "render_error",
                self.env._("Not sent, the template could not be rendered: %s", error),
            )
            return False
        self.body = text
        self.render_params = json.dumps(params)
        return True

    def _provider_call(self, api):
        """The provider call that sends this message, with plain values
        only: it runs in a thread of the send pool, away from the ORM."""
        self.ensure_one()
        opaque = self.biz_opaque_callback_data
        if self.template_id:
            return functools.partial(
                api.send_template,
                self.phone_e164,
                self.template_id.name,
                self.template_id.language,
                json.loads(self.render_params or "[]"),
                buttons=self.template_id._quick_reply_payloads(),
                opaque=opaque,
            )
        return functools.partial(
            api.send_text, self.phone_e164, self.body, opaque=opaque
        )

    @api.model
    def _record_outcomes(self, outcomes):
        """Write what the provider answered: ``(account id, message id,
        wamid, error)`` of the calls that ended. Returns how many were
        accepted."""
        sent = self.browse()
        now = fields.Datetime.now()
        for _account_id, message_id, wamid, error in outcomes:
            message = self.browse(message_id)
            if isinstance(error, WhatsAppError):
                message._apply_error(
                    error.code,
                    error.text,
                    error.http_status,
                    outcome_unknown=error.outcome_unknown,
                )
            elif error is not None:
                # The API client turns whatever happens once the request is
                # on its way into a WhatsAppError: this was raised before,
                # nothing left.
                _logger.error(
                    "WhatsApp message %s not sent", message_id, exc_info=error
                )
                # Built apart: Odoo's string export cannot read an f-string
                # inside _().
                detail = f"{type(error).__name__}: {error}"
                message._fail_with(
                    "send_error", self.env._("Not sent: %(error)s", error=detail)
                )
            else:
                message.write({"wamid": wamid, "state": "sent", "sent_at": now})
                sent |= message
        self.env["winback.enrollment"]._on_message_sent(sent)
        sent.filtered(
            lambda m: m.account_id.provider_type == "simulator"
        )._simulate_read()
        sent._log_in_chatter()
        return len(sent)

    def _log_in_chatter(self):
        """Messages written by hand (composer) show in the customer's chatter
        under their author once WhatsApp accepted them."""
        for message in self.filtered(lambda m: m.chatter_author_id and m.partner_id):
            message.partner_id.message_post(
                body=Markup("<p><b>WhatsApp</b> → %s</p>%s")
                % (
                    message.phone_e164,
                    Markup("<br/>").join((message.body or "").split("\n")),
                ),
                author_id=message.chatter_author_id.id,
                subtype_xmlid="mail.mt_note",
            )

    def _log_failure_in_chatter(self):
        for message in self.filtered(lambda m: m.chatter_author_id and m.partner_id):
            message.partner_id.message_post(
                body=self.env._(
                    "WhatsApp message to %(number)s not sent: %(error)s",
                    number=message.phone_e164,
                    error=message.error_message or message.error_code,
                ),
                author_id=message.chatter_author_id.id,
                subtype_xmlid="mail.mt_note",
            )

    def _simulate_read(self):
        now = fields.Datetime.now()
        self.write({"state": "read", "delivered_at": now, "read_at": now})

    def _cancel_with(self, reason):
        self.write({"state": "cancelled", "error_message": reason})
        self._log_failure_in_chatter()

    def _fail_with(self, code, text):
        self.write(
            {
                "state": "failed",
                "error_code": code,
                "error_message": text,
                "failed_at": fields.Datetime.now(),
            }
        )
        self._log_failure_in_chatter()
        self._end_enrollments()

    def _end_enrollments(self):
        self.enrollment_id.filtered(lambda e: e.state == "running")._end("failed")

    def _fail_stuck_sending(self):
        """A message left ``sending`` (a crash, or a call whose outcome is
        unknown) is never resent blindly: past the timeout, without a status
        webhook to reconcile it, it ends failed with "outcome unknown"."""
        minutes = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("winback_whatsapp.sending_timeout_minutes", SENDING_TIMEOUT)
        )
        stuck = self.search(
            [
                ("state", "=", "sending"),
                ("write_date", "<", fields.Datetime.now() - timedelta(minutes=minutes)),
            ]
        )
        for message in stuck:
            reason = message.error_message or self.env._(
                "Outcome unknown: the sender stopped during the call to WhatsApp."
            )
            message._fail_with(
                "outcome_unknown",
                self.env._(
                    "%(reason)s No status came from WhatsApp within %(minutes)s "
                    "minutes: flagged, not resent, to never send twice.",
                    reason=reason,
                    minutes=minutes,
                ),
            )

    def _apply_error(self, code, text, http_status=None, outcome_unknown=False):
        """Apply the provider's error policy (``whatsapp_api.ERROR_POLICY``)
        to messages WhatsApp refused.

        ``code`` is Meta's error code as a string (or one of the API client's:
        connection, timeout, connection_lost, invalid_token...).
        ``outcome_unknown``: the request may have been accepted; the message
        stays ``sending`` for a status webhook to settle, and is never resent.
        """
        code = str(code)
        handler = ERROR_HANDLERS[UNKNOWN if outcome_unknown else error_policy(code)]
        for message in self:
            getattr(message, handler)(code, text)
        return True

    def _on_outcome_unknown(self, code, text):
        self.write(
            {
                "error_code": code,
                "error_message": self.env._(
                    "Outcome unknown (%(error)s): WhatsApp may have accepted "
                    "the message. Waiting for its status; never resent.",
                    error=text,
                ),
            }
        )

    def _on_retry_error(self, code, text):
        """Certainly not sent: queued again later, at most ``MAX_ATTEMPTS``
        times in all."""
        if self.attempt_count >= MAX_ATTEMPTS:
            return self._fail_with(code, text)
        if error_policy(code) == WAIT:
            delay = WAIT_DELAY
        else:
            delay = RETRY_BASE * (2 ** max(self.attempt_count - 1, 0))
        self.write(
            {
                "error_code": code,
                "error_message": text,
                "state": "queued",
                "scheduled_at": fields.Datetime.now() + delay,
            }
        )

    def _on_account_error(self, code, text):
        """The account needs an administrator: the message waits for it."""
        self.write({"error_code": code, "error_message": text, "state": "queued"})
        self.account_id._pause(f"({code}) {text}")

    def _on_opt_out_error(self, code, text):
        self.partner_id._winback_opt_out(
            self.env._(
                "WhatsApp error 131050: the customer stopped marketing messages."
            ),
            numbers=[self.phone_e164] if self.phone_e164 else None,
        )
        self._fail_with(code, text)

    def _on_template_error(self, code, text):
        """A template error: the message waits, the campaign pauses."""
        self.ensure_one()
        self.write({"error_code": code, "error_message": text, "state": "queued"})
        campaign = self.enrollment_id.campaign_id
        if campaign.state == "running":
            campaign.state = "paused"
            campaign._alert_responsible(
                self.env._(
                    "Campaign paused: WhatsApp refused template %(template)s "
                    "(%(code)s: %(text)s).",
                    template=self.template_id.name,
                    code=code,
                    text=text,
                )
            )

    @api.autovacuum
    def _gc_personal_data(self):
        """Personal data has a lifetime: past it (system parameter
        ``winback_whatsapp.message_retention_days``, 365 by default, 0 keeps
        it), a message keeps its state and dates, which the results count,
        but loses its text, number, profile name and parameters. An
        unmatched reply, which counts nowhere, goes altogether."""
        days = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("winback_whatsapp.message_retention_days", MESSAGE_RETENTION)
            or 0
        )
        if days <= 0:
            return
        cutoff = fields.Datetime.now() - timedelta(days=days)
        self.flush_model()
        self.env.cr.execute(
            """
            DELETE FROM winback_message
             WHERE direction = 'inbound' AND partner_id IS NULL
               AND create_date < %s
            """,
            [cutoff],
        )
        self.env.cr.execute(
            """
            UPDATE winback_message
               SET body = NULL, phone_e164 = NULL, profile_name = NULL,
                   render_params = NULL
             WHERE create_date < %s
               AND state NOT IN ('queued', 'sending')
               AND (body IS NOT NULL OR phone_e164 IS NOT NULL
                    OR profile_name IS NOT NULL OR render_params IS NOT NULL)
            """,
            [cutoff],
        )
        self.invalidate_model()

    def action_create_partner(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_create_partner()

    def _action_create_partner(self):
        """Unmatched reply: create a partner with this number (as the user,
        with the user's rights) and file the message in its chatter."""
        self._check_unmatched(partner_required=False)
        for message in self:
            if message.partner_id:
                raise UserError(
                    self.env._(
                        "The reply from %(number)s is already linked to %(partner)s.",
                        number=message.phone_e164,
                        partner=message.partner_id.display_name,
                    )
                )
            message.partner_id = self.env["res.partner"].create(
                {
                    "name": message.profile_name or message.phone_e164,
                    "mobile": message.phone_e164,
                }
            )
        return self._action_link_partner()

    def action_link_partner(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_link_partner()

    def _action_link_partner(self):
        """Unmatched reply linked by hand to the chosen partner: file it in
        the partner's chatter and apply it (keywords, enrollment, activity),
        once, whatever the number of clicks."""
        self._check_unmatched(partner_required=True)
        for message in self:
            # The user's choice, checked with the user's rights.
            message.partner_id.check_access("read")
            if message.partner_id.company_id not in (
                message.company_id,
                self.env["res.company"],
            ):
                raise UserError(
                    self.env._(
                        "%(partner)s belongs to another company than the reply.",
                        partner=message.partner_id.display_name,
                    )
                )
        # Claimed in the database: a second click, or a concurrent one, finds
        # nothing left to handle.
        self.flush_recordset(["handled"])
        self.env.cr.execute(
            "UPDATE winback_message SET handled = TRUE"
            " WHERE id = ANY(%s) AND handled IS NOT TRUE RETURNING id",
            [self.ids],
        )
        claimed = self.browse(row[0] for row in self.env.cr.fetchall())
        self.invalidate_recordset(["handled"])
        if claimed != self:
            raise UserError(self.env._("This reply has already been handled."))
        Inbound = self.env["winback.inbound"].sudo()
        for message in claimed:
            # The inputs are checked: the webhook's own processing applies it.
            Inbound._handle(message)
        return True

    def _check_unmatched(self, partner_required):
        for message in self:
            if not (
                message.direction == "inbound"
                and message.state == "received"
                and message.wamid
                and message.account_id
            ):
                raise UserError(
                    self.env._("Only a reply received on WhatsApp can be linked.")
                )
            if message.handled:
                raise UserError(self.env._("This reply has already been handled."))
            if partner_required and not message.partner_id:
                raise UserError(self.env._("Choose the customer first."))
