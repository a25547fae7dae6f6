import json
import logging
import time
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from ..tools.access import check_group
from ..tools.cron import commit_batch
from ..tools.whatsapp_api import RETRYABLE_CODES, WhatsAppError

_logger = logging.getLogger(__name__)

SEND_BATCH = 50  # small: a crash flags at most this many "outcome unknown"
# Seconds a cron run starts calls for before it re-triggers itself. With its
# last call (WhatsAppApi.TIMEOUT, 5 s to connect and 20 s to read) a run stays
# well under Odoo's limit_time_real_cron (default -1: limit_time_real, 120 s),
# which would kill it in the middle of a claimed batch.
SEND_TIME_BUDGET = 60
SENDING_TIMEOUT = (
    30  # minutes; ir.config_parameter winback_whatsapp.sending_timeout_minutes
)
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=1)
# Errors after which the message certainly did not leave (see whatsapp_api).
RETRY_CODES = RETRYABLE_CODES
ACCOUNT_ERRORS = {"190", "131042", "368", "131031", "invalid_token"}

OPT_OUT_ERROR = "131050"
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
            self._winback_check_manual_write(vals)
        return super().write(vals)

    def _winback_check_manual_write(self, vals):
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
        """Send the queued messages that are due.

        Messages are claimed with FOR UPDATE SKIP LOCKED, so several cron
        workers on several servers share the queue. Each claimed batch is
        marked ``sending`` and committed BEFORE any HTTP call: after a crash a
        message is never sent twice; it stays ``sending`` until a status
        webhook reconciles it, or ends failed with "outcome unknown".
        Stops starting calls after ``SEND_TIME_BUDGET`` seconds and
        re-triggers itself while due work remains.
        """
        self._fail_stuck_sending()
        self._cancel_foreign_company()
        sent_total = 0
        deadline = time.monotonic() + SEND_TIME_BUDGET
        while time.monotonic() < deadline:
            messages = self._claim_due(batch_size)
            if not messages:
                break
            ready = messages._prepare_send()
            # The claim is committed: the messages are now 'sending', whatever
            # happens to this process during the HTTP calls.
            commit_batch(self.env.cr)
            sent_total += len(ready._send_claimed(deadline))
            commit_batch(self.env.cr)
            self.env["ir.cron"]._notify_progress(done=sent_total, remaining=0)
        if self._claim_due(1, lock=False):
            self._trigger_send()
        return sent_total

    @api.model
    def _trigger_send(self):
        """Wake the send cron now (it also runs every few minutes)."""
        self.env.ref("winback_whatsapp.ir_cron_winback_send").sudo()._trigger()

    def _claim_due(self, limit, lock=True):
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
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
              ORDER BY m.scheduled_at NULLS FIRST, m.id
                 LIMIT %(limit)s
                %(lock)s
                """,
                now=fields.Datetime.now(),
                limit=limit,
                lock=SQL("FOR UPDATE OF m SKIP LOCKED") if lock else SQL(""),
            )
        )
        return self.browse(row[0] for row in self.env.cr.fetchall())

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
    def _marketing_refusal(self, partner, number, blacklisted=None):
        """Why a marketing message may not go to ``partner`` at ``number``
        (E.164), or False: no consent, opted out (blacklist) or dormant.
        ``blacklisted``: the blacklisted numbers, when already known."""
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
        if blacklisted is None:
            blacklisted = set(
                self.env["phone.blacklist"]
                .sudo()
                .search([("number", "=", number)])
                .mapped("number")
            )
        if number in blacklisted:
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

    def _prepare_send(self):
        """Check again, at send time, what may have changed since queuing:
        company, consent, blacklist, dormancy, send window, daily limit;
        render the text. Returns the messages to send, marked ``sending``."""
        now = fields.Datetime.now()
        blacklisted = set(
            self.env["phone.blacklist"]
            .sudo()
            .search([("number", "in", [m.phone_e164 for m in self if m.phone_e164])])
            .mapped("number")
        )
        ready = self.browse()
        recipients = {}
        for message in self:
            refusal = message._company_refusal() or (
                message._is_marketing()
                and self._marketing_refusal(
                    message.partner_id, message.phone_e164, blacklisted
                )
            )
            if refusal:
                message._cancel_with(refusal)
                continue
            if not message.phone_e164:
                message._fail_with("invalid_number", self.env._("No valid number."))
                continue
            opens = message._window_opens(now)
            if opens != now:
                message.scheduled_at = opens
                continue
            account = message.account_id
            if account.id not in recipients:
                recipients[account.id] = account._recipients_last_24h()
            seen = recipients[account.id]
            if (
                message.phone_e164 not in seen
                and len(seen) >= account.daily_recipient_limit > 0
            ):
                message.scheduled_at = now + timedelta(hours=1)
                continue
            if message.template_id and not message._render_template():
                continue
            seen.add(message.phone_e164)
            ready |= message
        ready.write({"state": "sending", "error_code": False, "error_message": False})
        for message in ready:
            message.attempt_count += 1
            message.biz_opaque_callback_data = f"winback:{message.id}"
        self.env.flush_all()
        return ready

    def _window_opens(self, now):
        """When the campaign's send window opens for this customer (``now``
        when it is open, and for messages of no campaign)."""
        self.ensure_one()
        campaign = self.enrollment_id.campaign_id
        if not campaign:
            return now
        return campaign._next_send_time(self.partner_id, self.phone_e164, now)

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

    def _send_claimed(self, deadline=None):
        """HTTP calls for messages marked ``sending``; returns those accepted.

        Past ``deadline`` (``time.monotonic()``), no call starts: the messages
        not tried yet go back to the queue."""
        sent = attempted = self.browse()
        by_account = {}
        for message in self:
            by_account.setdefault(message.account_id, self.browse())
            by_account[message.account_id] |= message
        for account, messages in by_account.items():
            try:
                api = account._get_api()
            except Exception as error:
                # Nothing left: the account needs an administrator.
                _logger.warning("WhatsApp account %s unusable: %s", account.id, error)
                messages.write({"error_message": str(error)})
                account._pause(str(error))
                continue
            interval = (
                1.0 / account.messages_per_second if account.messages_per_second else 0
            )
            for message in messages:
                if account.state != "active" or (
                    deadline and time.monotonic() > deadline
                ):
                    break
                tick = time.monotonic()
                attempted |= message
                if message._send_one(api):
                    sent |= message
                wait = interval - (time.monotonic() - tick)
                if wait > 0:
                    time.sleep(wait)
        for message in (self - attempted).filtered(lambda m: m.state == "sending"):
            # Claimed but not tried: back in the queue, nothing happened.
            message.write(
                {"state": "queued", "attempt_count": max(message.attempt_count - 1, 0)}
            )
        self.env["winback.enrollment"]._on_message_sent(sent)
        if any(m.account_id.provider_type == "simulator" for m in sent):
            sent.filtered(
                lambda m: m.account_id.provider_type == "simulator"
            )._simulate_read()
        sent._log_in_chatter()
        return sent

    def _send_one(self, api):
        """One call to the provider; whatever goes wrong stays with this
        message. Returns whether WhatsApp accepted it."""
        self.ensure_one()
        try:
            self._call_provider(api)
        except WhatsAppError as error:
            self._apply_error(
                error.code,
                error.text,
                error.http_status,
                outcome_unknown=error.outcome_unknown,
            )
            return False
        except Exception as error:
            # The API client turns whatever happens once the request is on its
            # way into a WhatsAppError: this was raised before, nothing left.
            _logger.exception("WhatsApp message %s not sent", self.id)
            # Built apart: Odoo's string export cannot read an f-string inside _().
            detail = f"{type(error).__name__}: {error}"
            self._fail_with(
                "send_error", self.env._("Not sent: %(error)s", error=detail)
            )
            return False
        return True

    def _call_provider(self, api):
        self.ensure_one()
        opaque = self.biz_opaque_callback_data
        if self.template_id:
            wamid = api.send_template(
                self.phone_e164,
                self.template_id.name,
                self.template_id.language,
                json.loads(self.render_params or "[]"),
                buttons=self.template_id._quick_reply_payloads(),
                opaque=opaque,
            )
        else:
            wamid = api.send_text(self.phone_e164, self.body, opaque=opaque)
        self.write({"wamid": wamid, "state": "sent", "sent_at": fields.Datetime.now()})

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
        """Apply the error policy to messages WhatsApp refused.

        ``code`` is Meta's error code as a string (or one of the API client's:
        connection, timeout, connection_lost, invalid_token...).
        ``outcome_unknown``: the request may have been accepted; the message
        stays ``sending`` for a status webhook to settle, and is never resent.
        """
        code = str(code)
        now = fields.Datetime.now()
        base = {"error_code": code, "error_message": text}
        if outcome_unknown:
            self.write(
                {
                    **base,
                    "error_message": self.env._(
                        "Outcome unknown (%(error)s): WhatsApp may have accepted "
                        "the message. Waiting for its status; never resent.",
                        error=text,
                    ),
                }
            )
            return True
        for message in self:
            if code in RETRY_CODES and message.attempt_count < MAX_ATTEMPTS:
                delay = RETRY_BASE * (2 ** max(message.attempt_count - 1, 0))
                message.write({**base, "state": "queued", "scheduled_at": now + delay})
            elif code == "131049" and message.attempt_count < MAX_ATTEMPTS:
                message.write(
                    {
                        **base,
                        "state": "queued",
                        "scheduled_at": now + timedelta(hours=24, minutes=5),
                    }
                )
            elif code.startswith("132"):
                message._pause_sequence(code, text, base)
            elif code in ACCOUNT_ERRORS:
                message.write({**base, "state": "queued"})
                message.account_id._pause(f"({code}) {text}")
            else:
                if code == OPT_OUT_ERROR:
                    message.partner_id._winback_opt_out(
                        self.env._(
                            "WhatsApp error 131050: the customer stopped marketing "
                            "messages."
                        ),
                        numbers=[message.phone_e164] if message.phone_e164 else None,
                    )
                message._fail_with(code, text)
        return True

    def _pause_sequence(self, code, text, vals):
        """A template error: the message waits, the campaign pauses."""
        self.ensure_one()
        self.write({**vals, "state": "queued"})
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
