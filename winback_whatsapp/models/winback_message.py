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
from ..tools.cron import commit_batch
from ..tools.send_window import customer_timezone, next_window_start
from ..tools.stop_keywords import is_start, is_stop
from ..tools.whatsapp_api import RETRYABLE_CODES, WhatsAppError

_logger = logging.getLogger(__name__)

SEND_BATCH = 50  # small: a crash flags at most this many "outcome unknown"
SEND_TIME_BUDGET = 240  # seconds a cron run sends before re-triggering
SENDING_TIMEOUT = (
    30  # minutes; ir.config_parameter winback_whatsapp.sending_timeout_minutes
)
MAX_ATTEMPTS = 5
RETRY_BASE = timedelta(minutes=1)
RETRY_CODES = RETRYABLE_CODES
ACCOUNT_ERRORS = {"190", "131042", "368", "131031"}

OPT_OUT_ERROR = "131050"

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
    sequence_id = fields.Many2one(
        related="enrollment_id.sequence_id", store=True, index=True
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
        Re-triggers itself while due work remains.
        """
        self._fail_stuck_sending()
        sent_total = 0
        started = time.monotonic()
        while time.monotonic() - started < SEND_TIME_BUDGET:
            messages = self._claim_due(batch_size)
            if not messages:
                break
            ready = messages._prepare_send()
            # The claim is committed: the messages are now 'sending', whatever
            # happens to this process during the HTTP calls.
            commit_batch(self.env.cr)
            sent_total += len(ready._send_claimed())
            commit_batch(self.env.cr)
            self.env["ir.cron"]._notify_progress(done=sent_total, remaining=0)
        if self._claim_due(1, lock=False):
            self.env.ref("winback_whatsapp.ir_cron_winback_send")._trigger()
        return sent_total

    def _claim_due(self, limit, lock=True):
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT m.id FROM winback_message m
                  JOIN winback_account a ON a.id = m.account_id
             LEFT JOIN winback_enrollment e ON e.id = m.enrollment_id
             LEFT JOIN winback_sequence s ON s.id = e.sequence_id
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

    def _prepare_send(self):
        """Check again, at send time, what may have changed since queuing:
        consent, blacklist, send window, daily limit; render the text.
        Returns the messages to send, marked ``sending``."""
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
            partner = message.partner_id
            promotional = bool(message.enrollment_id)
            if promotional and (
                not partner.winback_consent_date or not partner.winback_consent_source
            ):
                message._cancel_with(self.env._("No WhatsApp marketing consent."))
                continue
            if promotional and (
                message.phone_e164 in blacklisted or partner.winback_dormant
            ):
                message._cancel_with(self.env._("Number blacklisted or dormant."))
                continue
            if not message.phone_e164:
                message._fail_with("invalid_number", self.env._("No valid number."))
                continue
            sequence = message.enrollment_id.sequence_id
            if sequence:
                tz = customer_timezone(
                    partner.tz, message.phone_e164, sequence.company_id.partner_id.tz
                )
                opens = next_window_start(
                    now,
                    tz,
                    sequence.window_start,
                    sequence.window_end,
                    sequence._window_weekdays(),
                )
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
            if message.template_id:
                try:
                    params, text = message.template_id._render(
                        partner,
                        message.enrollment_id,
                        sequence=message.step_id.sequence_id,
                    )
                except UserError as error:
                    message._fail_with("missing_value", str(error))
                    continue
                message.body = text
                message.render_params = json.dumps(params)
            seen.add(message.phone_e164)
            ready |= message
        ready.write(
            {"state": "sending", "attempt_count": 0} if False else {"state": "sending"}
        )
        for message in ready:
            message.attempt_count += 1
            message.biz_opaque_callback_data = f"winback:{message.id}"
        self.env.flush_all()
        return ready

    def _send_claimed(self):
        """HTTP calls for messages marked ``sending``; returns those accepted."""
        sent = self.browse()
        by_account = {}
        for message in self:
            by_account.setdefault(message.account_id, self.browse())
            by_account[message.account_id] |= message
        for account, messages in by_account.items():
            api = account._get_api()
            interval = (
                1.0 / account.messages_per_second if account.messages_per_second else 0
            )
            for message in messages:
                tick = time.monotonic()
                try:
                    message._call_provider(api)
                except WhatsAppError as error:
                    message._apply_error(error.code, error.text, error.http_status)
                else:
                    sent |= message
                if account.state != "active":
                    break
                wait = interval - (time.monotonic() - tick)
                if wait > 0:
                    time.sleep(wait)
            (messages - sent).filtered(lambda m: m.state == "sending").write(
                {"state": "queued"}
            )
        self.env["winback.enrollment"]._on_message_sent(sent)
        if any(m.account_id.provider == "simulator" for m in sent):
            sent.filtered(
                lambda m: m.account_id.provider == "simulator"
            )._simulate_read()
        return sent

    def _call_provider(self, api):
        self.ensure_one()
        opaque = self.biz_opaque_callback_data
        if self.template_id:
            wamid = api.send_template(
                self.phone_e164,
                self.template_id.name,
                self.template_id.language,
                json.loads(self.render_params or "[]"),
                stop_payload=self.template_id.stop_payload,
                opaque=opaque,
            )
        else:
            wamid = api.send_text(self.phone_e164, self.body, opaque=opaque)
        self.write({"wamid": wamid, "state": "sent", "sent_at": fields.Datetime.now()})

    def _simulate_read(self):
        now = fields.Datetime.now()
        self.write({"state": "read", "delivered_at": now, "read_at": now})

    def _cancel_with(self, reason):
        self.write({"state": "cancelled", "error_message": reason})

    def _fail_with(self, code, text):
        self.write(
            {
                "state": "failed",
                "error_code": code,
                "error_message": text,
                "failed_at": fields.Datetime.now(),
            }
        )
        self._end_enrollments()

    def _end_enrollments(self):
        self.enrollment_id.filtered(lambda e: e.state == "running")._end("failed")

    def _fail_stuck_sending(self):
        """A message left ``sending`` by a crash is never resent blindly: past
        the timeout, without a status webhook to reconcile it, it ends failed
        with "outcome unknown"."""
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
        stuck._fail_with(
            "outcome_unknown",
            self.env._(
                "Outcome unknown: the sender stopped during the call to WhatsApp. "
                "Not resent, to never send twice."
            ),
        )

    def _apply_error(self, code, text, http_status=None):
        """Apply the error policy to messages WhatsApp refused.

        ``code`` is Meta's error code as a string (or timeout/connection)."""
        code = str(code)
        now = fields.Datetime.now()
        base = {"error_code": code, "error_message": text}
        retryable = code in RETRY_CODES or (http_status or 0) >= 500
        for message in self:
            if retryable and message.attempt_count < MAX_ATTEMPTS:
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
                message.write({**base, "state": "queued"})
                sequence = message.enrollment_id.sequence_id
                if sequence.state == "running":
                    sequence.state = "paused"
                    sequence._alert_responsible(
                        self.env._(
                            "Sequence paused: WhatsApp refused template %(template)s "
                            "(%(code)s: %(text)s).",
                            template=message.template_id.name,
                            code=code,
                            text=text,
                        )
                    )
            elif code in ACCOUNT_ERRORS:
                message.write({**base, "state": "queued"})
                message.account_id._pause(f"({code}) {text}")
            else:
                message.write({**base, "state": "failed", "failed_at": now})
                if code == OPT_OUT_ERROR:
                    message.partner_id._winback_opt_out(
                        self.env._(
                            "WhatsApp error 131050: the customer stopped marketing "
                            "messages."
                        ),
                        numbers=[message.phone_e164] if message.phone_e164 else None,
                    )
                message._end_enrollments()
        return True

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
        number = "+" + (msg.get("from") or "").lstrip("+")
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
        try:
            ts = fields.Datetime.to_string(
                datetime.fromtimestamp(int(msg.get("timestamp")), tz=timezone.utc)
            )
        except (TypeError, ValueError):
            ts = fields.Datetime.now()
        vals = {
            "direction": "inbound",
            "state": "received",
            "account_id": account.id,
            "company_id": account.company_id.id,
            "partner_id": partner.id or False,
            "phone_e164": number,
            "body": text,
            "wamid": wamid,
            "context_wamid": context_wamid or False,
            "received_at": ts,
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
        return message

    def _winback_handle_inbound(self, replied_to=None, payload=None):
        """Chatter, opt-out/opt-in keywords, enrollment outcome, activity."""
        self.ensure_one()
        self.handled = True
        partner = self.partner_id
        self._winback_post_in_chatter()
        if self._winback_is_stop(replied_to, payload):
            self._winback_opt_out_from_reply()
            return
        if is_start(self.body) and (
            self.env["phone.blacklist"]
            .sudo()
            .search_count([("number", "=", self.phone_e164)])
        ):
            self.env["phone.blacklist"].sudo()._remove(
                [self.phone_e164],
                message=self.env._("Customer sent START on WhatsApp."),
            )
            partner.message_post(
                body=self.env._("WhatsApp: the customer opted back in (START)."),
                subtype_xmlid="mail.mt_note",
            )
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
            # sequence goes on and nobody is asked to answer it.
            return
        if enrollment:
            enrollment._mark_replied(self)
        self._winback_schedule_activity(enrollment)

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
        self.ensure_one()
        if is_stop(self.body):
            return True
        if payload:
            template = replied_to and replied_to.template_id
            if template and template.stop_payload == payload:
                return True
            return bool(
                self.env["winback.template"]
                .sudo()
                .with_context(active_test=False)
                .search_count(
                    [
                        ("account_id", "=", self.account_id.id),
                        ("stop_payload", "=", payload),
                    ]
                )
            )
        return False

    def _winback_opt_out_from_reply(self):
        self.ensure_one()
        already = (
            self.env["phone.blacklist"]
            .sudo()
            .search_count([("number", "=", self.phone_e164)])
        )
        if already:
            # Repeated STOP: already off every send, and the confirmation
            # queued the first time must not be cancelled nor repeated.
            return
        self.partner_id._winback_opt_out(
            self.env._("WhatsApp: the customer asked to stop (%s).", self.body),
            numbers=[self.phone_e164],
        )
        self._winback_queue_stop_confirmation()

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
        user = partner.user_id or (enrollment and enrollment.sequence_id.user_id)
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
        try:
            when = fields.Datetime.to_string(
                datetime.fromtimestamp(int(status.get("timestamp")), tz=timezone.utc)
            )
        except (TypeError, ValueError):
            when = fields.Datetime.now()
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
        """user_preferences: marketing_messages stop / resume."""
        if pref.get("category") not in (None, "marketing_messages"):
            return False
        number = "+" + (pref.get("wa_id") or "").lstrip("+")
        partner = (
            self.env["res.partner"]
            .sudo()
            ._winback_find_by_number(number, account.company_id)
        )
        if pref.get("value") == "stop":
            partner._winback_opt_out(
                self.env._("WhatsApp: the customer stopped marketing messages."),
                numbers=[number],
            )
            return True
        if pref.get("value") == "resume":
            self.env["phone.blacklist"].sudo()._remove(
                [number],
                message=self.env._(
                    "WhatsApp: the customer resumed marketing messages."
                ),
            )
            if partner:
                partner.message_post(
                    body=self.env._(
                        "WhatsApp: the customer resumed marketing messages."
                    ),
                    subtype_xmlid="mail.mt_note",
                )
            return True
        return False

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
