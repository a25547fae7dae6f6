import functools
import json
import logging
import time
from datetime import datetime, timedelta, timezone

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL, plaintext2html

from ..tools.access import check_group
from ..tools.send_window import customer_timezone, next_window_start
from ..tools.stop_keywords import is_start, is_stop, normalize
from ..tools.wa_number import wa_id_to_e164
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
from .winback_enrollment import LIVE_STATES

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
        tz = customer_timezone(
            self.partner_id.tz, self.phone_e164, campaign.company_id.partner_id.tz
        )
        return next_window_start(
            now,
            tz,
            campaign.window_start,
            campaign.window_end,
            campaign._window_weekdays(),
        )

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

    # WEBHOOK
    # ------------------------------------------------------------
    # Inbound messages, statuses and preferences from the webhook.
    # ------------------------------------------------------------

    _WINBACK_STATUS_RANK = {
        "queued": 0,
        "sending": 0,
        "sent": 1,
        "delivered": 2,
        "read": 3,
    }

    @api.model
    def _winback_inbound_text(self, msg):
        """Human-readable text of an inbound message, and a button payload."""
        mtype = msg.get("type")
        payload = False
        if mtype == "text":
            text = (msg.get("text") or {}).get("body") or ""
        elif mtype == "button":
            button = msg.get("button") or {}
            text = button.get("text") or ""
            payload = button.get("payload")
        elif mtype == "interactive":
            inter = msg.get("interactive") or {}
            reply = inter.get("button_reply") or inter.get("list_reply") or {}
            text = reply.get("title") or ""
            payload = reply.get("id")
        elif mtype == "reaction":
            text = self.env._(
                "Reaction: %s", (msg.get("reaction") or {}).get("emoji") or ""
            )
        elif mtype in ("image", "document", "audio", "video", "sticker"):
            media = msg.get(mtype) or {}
            label = media.get("filename") or mtype
            caption = media.get("caption")
            text = f"[{label}] {caption}" if caption else f"[{label}]"
        elif mtype == "location":
            loc = msg.get("location") or {}
            text = "[location] {} {} {}".format(
                loc.get("name") or "",
                loc.get("latitude") or "",
                loc.get("longitude") or "",
            )
        else:
            text = self.env._("[Unsupported message type: %s]", mtype or "unknown")
        return text.strip(), payload

    @api.model
    def _winback_receive(self, account, msg, profile_name=None):
        """Store one inbound message (idempotent on its wamid) and act on it."""
        wamid = msg.get("id")
        if not wamid:
            return self.browse()
        if self.search_count([("account_id", "=", account.id), ("wamid", "=", wamid)]):
            return self.browse()
        # Meta's wa_id is not always the E.164 number (Mexico's 521...).
        number = wa_id_to_e164(msg.get("from"))
        text, payload = self._winback_inbound_text(msg)
        context_wamid = (msg.get("context") or {}).get("id")
        if msg.get("type") == "reaction":
            context_wamid = (msg.get("reaction") or {}).get("message_id")
        replied_to = context_wamid and self.search(
            [("account_id", "=", account.id), ("wamid", "=", context_wamid)], limit=1
        )
        partner = replied_to and replied_to.partner_id
        if not partner:
            partner = (
                self.env["res.partner"]
                .sudo()
                ._winback_find_by_number(number, account.company_id)
            )
        vals = {
            "direction": "inbound",
            "state": "received",
            "account_id": account.id,
            "company_id": account.company_id.id,
            "partner_id": partner.id or False,
            "phone_e164": number or False,
            "body": text,
            "wamid": wamid,
            "context_wamid": context_wamid or False,
            "received_at": self._winback_time(msg.get("timestamp")),
            "profile_name": profile_name or False,
            "inbound_type": msg.get("type") or False,
        }
        try:
            with self.env.cr.savepoint():
                message = self.create(vals)
        except psycopg2.IntegrityError:
            # A concurrent delivery of the same wamid won the race.
            return self.browse()
        if partner:
            message._winback_handle_inbound(replied_to, payload)
        else:
            # Waits in Unmatched replies, but a STOP (or START) is obeyed now.
            message._winback_apply_keywords(replied_to, payload)
        return message

    @api.model
    def _winback_time(self, timestamp):
        """WhatsApp's Unix timestamp as a UTC datetime; now if unreadable."""
        try:
            return datetime.fromtimestamp(int(timestamp), tz=timezone.utc).replace(
                tzinfo=None
            )
        except (TypeError, ValueError, OverflowError, OSError):
            return fields.Datetime.now()

    def _winback_handle_inbound(self, replied_to=None, payload=None):
        """Chatter, opt-out/opt-in keywords, enrollment outcome, activity."""
        self.ensure_one()
        self.handled = True
        partner = self.partner_id
        self._winback_post_in_chatter()
        if self._winback_apply_keywords(replied_to, payload):
            return
        enrollment = replied_to and replied_to.enrollment_id
        if not enrollment:
            enrollment = self.env["winback.enrollment"].search(
                [("partner_id", "=", partner.id), ("state", "=", "running")],
                order="id desc",
                limit=1,
            )
        if enrollment:
            self.enrollment_id = enrollment
        if self.inbound_type == "reaction":
            # An emoji on our message is shown, but is no conversation: the
            # campaign goes on and nobody is asked to answer it.
            return
        if enrollment:
            enrollment._mark_replied(self)
        self._winback_schedule_activity(enrollment)

    def _winback_apply_keywords(self, replied_to=None, payload=None):
        """Obey a STOP, or a START of a blacklisted number, partner or not.
        Returns whether the message was one of them."""
        self.ensure_one()
        if self._winback_is_stop(replied_to, payload):
            self._winback_opt_out_from_reply()
            return True
        if is_start(self.body) and self.env["phone.blacklist"].sudo()._winback_lines(
            [self.phone_e164]
        ).filtered("active"):
            self._winback_opt_in_from_reply()
            return True
        return False

    def _winback_post_in_chatter(self):
        self.ensure_one()
        # plaintext2html escapes: an HTML/script payload is shown, never run.
        body = Markup("%s%s") % (
            Markup("<b>WhatsApp</b>: "),
            plaintext2html(self.body or ""),
        )
        self.partner_id.message_post(
            body=body,
            author_id=self.partner_id.id,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )

    def _winback_is_stop(self, replied_to=None, payload=None):
        """Whether this inbound message opts out: its text is a stop keyword,
        or it is a tap on a STOP quick-reply button. A tap on any other
        button is a reply. The button is found by its payload, first among
        the buttons of the template answered, then of the account's
        templates; a ``button`` message whose payload matches none (sent
        without payloads) by its text. Needs no partner."""
        self.ensure_one()
        if is_stop(self.body):
            return True
        if not payload and self.inbound_type != "button":
            return False
        template = replied_to and replied_to.template_id
        buttons = template.sudo().button_ids if template else None
        if payload:
            matched = (
                buttons.filtered(lambda b: b.payload == payload) if buttons else None
            )
            matched = matched or self._winback_account_buttons(
                [("payload", "=", payload)]
            )
            if matched:
                return any(matched.mapped("is_stop"))
        if self.inbound_type == "button" and self.body:
            if buttons is None:
                buttons = self._winback_account_buttons([("text", "=ilike", self.body)])
            text = normalize(self.body)
            return any(b.is_stop for b in buttons if normalize(b.text) == text)
        return False

    def _winback_account_buttons(self, domain):
        return (
            self.env["winback.template.button"]
            .sudo()
            .with_context(active_test=False)
            .search([("template_id.account_id", "=", self.account_id.id), *domain])
        )

    def _winback_opt_out_from_reply(self):
        self.ensure_one()
        Blacklist = self.env["phone.blacklist"].sudo()
        already = self.phone_e164 and Blacklist.search(
            [("number", "=", self.phone_e164)]
        )
        reason = self.env._("WhatsApp: the customer asked to stop (%s).", self.body)
        if already:
            # Repeated STOP: already off every send, and the confirmation
            # queued the first time must not be cancelled nor repeated. It
            # is still the latest opt-out an older START must not undo.
            already._winback_note_opt_out(self.received_at)
            if self.partner_id and self.env["winback.enrollment"].sudo().search_count(
                [
                    ("partner_id", "=", self.partner_id.id),
                    ("state", "in", LIVE_STATES),
                ],
                limit=1,
            ):
                # A STOP from an unknown number, linked to its customer
                # later: the customer leaves their campaigns now.
                self.partner_id._winback_opt_out(
                    reason, numbers=[self.phone_e164], when=self.received_at
                )
            return
        self.partner_id._winback_opt_out(
            reason,
            numbers=[self.phone_e164] if self.phone_e164 else None,
            when=self.received_at,
        )
        if self.phone_e164:
            self._winback_queue_stop_confirmation()

    def _winback_opt_in_from_reply(self):
        """START: free the number again, unless the customer opted out after
        sending it (a START retried or processed late)."""
        self.ensure_one()
        numbers = [self.phone_e164, *self.partner_id.mapped("phone_sanitized")]
        freed = (
            self.env["phone.blacklist"]
            .sudo()
            ._winback_remove(
                numbers,
                self.env._("Customer sent START on WhatsApp."),
                when=self.received_at,
            )
        )
        if freed:
            body = self.env._("WhatsApp: the customer opted back in (START).")
        else:
            body = self.env._(
                "WhatsApp: START of %(when)s UTC ignored: the customer opted out "
                "after it.",
                when=fields.Datetime.to_string(self.received_at),
            )
        if self.partner_id:
            self.partner_id.message_post(body=body, subtype_xmlid="mail.mt_note")

    def _winback_queue_stop_confirmation(self):
        """ONE free-text confirmation (no template): the sender's cron sends
        it; we are inside the 24-hour window the customer's STOP opened."""
        self.ensure_one()
        return self.create(
            {
                "direction": "outbound",
                "state": "queued",
                "account_id": self.account_id.id,
                "company_id": self.company_id.id,
                "partner_id": self.partner_id.id,
                "phone_e164": self.phone_e164,
                "body": self.env._(
                    "You will no longer receive promotional messages from us. "
                    "Reply START to subscribe again."
                ),
                "scheduled_at": fields.Datetime.now(),
            }
        )

    def _winback_schedule_activity(self, enrollment):
        self.ensure_one()
        partner = self.partner_id
        user = partner.user_id or (enrollment and enrollment.campaign_id.user_id)
        if not user:
            user = self.env.ref("base.user_admin", raise_if_not_found=False)
        activity_type = self.env.ref(
            "winback_whatsapp.mail_activity_type_winback_reply",
            raise_if_not_found=False,
        )
        if not activity_type or not user:
            return
        note = plaintext2html(self.body or "")
        pending = partner.activity_ids.filtered(
            lambda a: a.activity_type_id == activity_type
        )
        if pending:
            # One to-do per customer, however many messages they send: it
            # shows the latest, the chatter has them all.
            pending[:1].note = note
            return
        partner.activity_schedule(
            activity_type_id=activity_type.id,
            summary=self.env._("Answer the WhatsApp reply"),
            note=note,
            user_id=user.id,
        )

    @api.model
    def _winback_find_by_status(self, account, status):
        wamid = status.get("id")
        message = wamid and self.search(
            [("account_id", "=", account.id), ("wamid", "=", wamid)], limit=1
        )
        opaque = status.get("biz_opaque_callback_data") or ""
        if not message and opaque.startswith("winback:"):
            try:
                message = self.browse(int(opaque.split(":", 1)[1])).exists()
            except ValueError:
                message = self.browse()
            if message and (
                message.direction != "outbound" or message.account_id != account
            ):
                message = self.browse()
            if message and wamid and not message.wamid:
                message.wamid = wamid
        return message or self.browse()

    @api.model
    def _winback_apply_status(self, account, status):
        """Monotonic status update: sent < delivered < read, failed final."""
        message = self._winback_find_by_status(account, status)
        new = status.get("status")
        if not message:
            _logger.info(
                "WhatsApp status %s for unknown message %s", new, status.get("id")
            )
            return False
        if message.state in ("failed", "cancelled", "received"):
            return False
        when = self._winback_time(status.get("timestamp"))
        if new == "failed":
            error = (status.get("errors") or [{}])[0]
            text = error.get("title") or error.get("message") or ""
            details = (error.get("error_data") or {}).get("details")
            if details:
                text = f"{text}: {details}" if text else details
            message._apply_error(str(error.get("code") or ""), text)
            return True
        rank = self._WINBACK_STATUS_RANK
        if new not in rank or rank[new] <= rank.get(message.state, 0):
            return False
        was_unsent = message.state in ("queued", "sending")
        vals = {"state": new}
        if was_unsent:  # settles an "outcome unknown"
            vals.update(error_code=False, error_message=False)
        if not message.sent_at:
            vals["sent_at"] = when
        if new in ("delivered", "read") and not message.delivered_at:
            vals["delivered_at"] = when
        if new == "read":
            vals["read_at"] = when
        message.write(vals)
        if was_unsent and message.enrollment_id:
            # Reconciles a message left in 'sending' by a crashed sender.
            message.enrollment_id._on_message_sent(message)
        return True

    @api.model
    def _winback_apply_preference(self, account, pref):
        """user_preferences: marketing_messages stop / resume. A resume never
        undoes a stop the customer sent after it (retry, late processing)."""
        if pref.get("category") not in (None, "marketing_messages"):
            return False
        number = wa_id_to_e164(pref.get("wa_id"))
        if not number:
            return False
        when = self._winback_time(pref.get("timestamp"))
        partner = (
            self.env["res.partner"]
            .sudo()
            ._winback_find_by_number(number, account.company_id)
        )
        if pref.get("value") == "stop":
            partner._winback_opt_out(
                self.env._("WhatsApp: the customer stopped marketing messages."),
                numbers=[number],
                when=when,
            )
            return True
        if pref.get("value") == "resume":
            freed = (
                self.env["phone.blacklist"]
                .sudo()
                ._winback_remove(
                    [number, *partner.mapped("phone_sanitized")],
                    self.env._("WhatsApp: the customer resumed marketing messages."),
                    when=when,
                )
            )
            if partner:
                partner.message_post(
                    body=self.env._(
                        "WhatsApp: the customer resumed marketing messages."
                    )
                    if freed
                    else self.env._(
                        "WhatsApp: resume of %(when)s UTC ignored: the customer "
                        "opted out after it.",
                        when=fields.Datetime.to_string(when),
                    ),
                    subtype_xmlid="mail.mt_note",
                )
            return True
        return False

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

    def action_winback_create_partner(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_winback_create_partner()

    def _action_winback_create_partner(self):
        """Unmatched reply: create a partner with this number (as the user,
        with the user's rights) and file the message in its chatter."""
        self._winback_check_unmatched(partner_required=False)
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
        return self._action_winback_link_partner()

    def action_winback_link_partner(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_winback_link_partner()

    def _action_winback_link_partner(self):
        """Unmatched reply linked by hand to the chosen partner: file it in
        the partner's chatter and apply it (keywords, enrollment, activity),
        once, whatever the number of clicks."""
        self._winback_check_unmatched(partner_required=True)
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
        for message in claimed:
            # The inputs are checked: the webhook's own processing applies it.
            message.sudo()._winback_handle_inbound()
        return True

    def _winback_check_unmatched(self, partner_required):
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
