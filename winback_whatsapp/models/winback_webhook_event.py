import json
import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

from ..tools.webhook_parser import parse_payload
from .winback_message import MESSAGE_RETENTION

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
PROCESS_BATCH = 200  # events per cron run; ir.cron runs it again while more wait
PROCESS_CHUNK = 50  # events per commit
EVENT_RETENTION = 30  # days; winback_whatsapp.webhook_event_retention_days


class WinbackWebhookEvent(models.Model):
    _name = "winback.webhook.event"
    _description = "WhatsApp Webhook Event"
    _order = "id desc"

    account_id = fields.Many2one(
        "winback.account", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="account_id.company_id", store=True)
    raw_body = fields.Text("Raw body", readonly=True, help="As received from Meta.")
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("done", "Done"),
            ("failed", "Failed"),
            ("refused", "Refused"),
        ],
        default="pending",
        required=True,
        index=True,
        readonly=True,
        help="Refused: the call named a phone number that is not the one of "
        "the account whose webhook key and app secret authenticated it; "
        "that part was not processed, and is never retried.",
    )
    ignored_fields = fields.Char(
        readonly=True,
        help="Fields of Meta's webhook this call carried that Win-back does "
        "not use: kept in the raw body, not processed. The event is done.",
    )
    attempts = fields.Integer(readonly=True)
    error = fields.Text(readonly=True)
    next_attempt_at = fields.Datetime(readonly=True, index=True)
    processed_at = fields.Datetime(readonly=True)

    # ------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------

    @api.model
    def _store(self, account, raw):
        """Persist the raw body exactly as received, before any processing.

        This is the webhook's hot path, and Meta waits on it: one INSERT
        instead of an ORM create (no defaults to compute, no related field
        to read, nothing to flush). Returns the new event."""
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        account.flush_recordset(["company_id"])
        self.env.cr.execute(
            """
            INSERT INTO winback_webhook_event
                   (account_id, company_id, raw_body, state, attempts,
                    create_uid, create_date, write_uid, write_date)
            SELECT a.id, a.company_id, %(raw)s, 'pending', 0,
                   %(uid)s, now() at time zone 'UTC',
                   %(uid)s, now() at time zone 'UTC'
              FROM winback_account a
             WHERE a.id = %(account)s
            RETURNING id
            """,
            {"raw": raw, "uid": self.env.uid, "account": account.id},
        )
        return self.browse(self.env.cr.fetchone()[0])

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_retry(self):
        if not self.env.user.has_group("winback_whatsapp.group_winback_manager"):
            raise AccessError(
                self.env._("Only Win-back administrators can retry webhook events.")
            )
        return self._action_retry()

    def _action_retry(self):
        """Process the pending and failed events again, now. What they say
        is applied as of their own time: a retried opt-in never undoes a
        later opt-out (see phone.blacklist._winback_remove)."""
        events = self.filtered(lambda e: e.state in ("pending", "failed"))
        events.write({"state": "pending", "next_attempt_at": False})
        events._process()
        return True

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _wake_processing_cron(self):
        """Trigger the processing cron, unless a trigger is already due.

        Each ``ir.cron._trigger`` adds a trigger row and, after commit,
        notifies the cron workers over a connection of its own; under a
        burst of webhook calls one due trigger is enough, since the cron
        takes every pending event when it runs. A call that arrives while
        the cron is finishing is picked up by its next run (the cron also
        runs every minute, so nothing waits longer than that)."""
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_webhook_process").sudo()
        now = self.env.cr.now()
        if (
            self.env["ir.cron.trigger"]
            .sudo()
            .search_count([("cron_id", "=", cron.id), ("call_at", "<=", now)], limit=1)
        ):
            return
        cron._trigger(at=now)

    def _process(self, lock=False):
        events = self
        if lock and events:
            self.env.cr.execute(
                """
                SELECT id FROM winback_webhook_event
                 WHERE id IN %s AND state != 'done'
                   FOR UPDATE SKIP LOCKED
                """,
                (tuple(events.ids),),
            )
            events = self.browse([r[0] for r in self.env.cr.fetchall()])
        for event in events:
            if event.state in ("done", "refused"):
                continue
            try:
                with self.env.cr.savepoint():
                    notes, foreign = event._dispatch()
                if foreign:
                    _logger.warning(
                        "WhatsApp webhook event %s refused: %s is not account %s's",
                        event.id,
                        ", ".join(foreign),
                        event.account_id.id,
                    )
                    notes = "\n".join(
                        [
                            self.env._(
                                "Not processed: %(ids)s is not account "
                                "%(account)s's, whose webhook key and secret "
                                "authenticated this call.",
                                ids=", ".join(foreign),
                                account=event.account_id.display_name,
                            ),
                            *filter(None, [notes]),
                        ]
                    )
                event.write(
                    {
                        "state": "refused" if foreign else "done",
                        "attempts": event.attempts + 1,
                        "processed_at": fields.Datetime.now(),
                        "error": notes or False,
                    }
                )
            except Exception as exc:  # noqa: BLE001 - kept, shown, retried
                _logger.warning("WhatsApp webhook event %s failed: %s", event.id, exc)
                attempts = event.attempts + 1
                event.write(
                    {
                        "state": "failed",
                        "attempts": attempts,
                        "error": str(exc) or repr(exc),
                        # Exponential backoff: 1, 2, 4, ... minutes.
                        "next_attempt_at": fields.Datetime.now()
                        + timedelta(minutes=2 ** min(attempts - 1, 10)),
                    }
                )
        return True

    def _dispatch(self):
        """Walk every entry and change of the payload; return value-level
        errors and what could not be applied as a note (they are Meta's, not
        ours), and what the changes left alone because they are not the
        account's name (phone number IDs, WhatsApp Business Account IDs).

        The account is the one whose webhook key and app secret
        authenticated the call, never one the payload names: a change for
        another phone number, or an account signal (template status and
        quality, number quality, account update, capability: handled by
        ``winback.account.signal``) for another WhatsApp Business Account,
        is not processed. A change of a field Win-back does not use is
        kept in the raw body, listed in ``ignored_fields`` and noted."""
        self.ensure_one()
        Inbound = self.env["winback.inbound"].sudo()
        Preference = self.env["winback.preference"].sudo()
        Status = self.env["winback.status"].sudo()
        Signal = self.env["winback.account.signal"].sudo()
        account = self.account_id
        notes = []
        foreign = []
        ignored = []
        for change in parse_payload(json.loads(self.raw_body)):
            if change.ignored:
                ignored.append(change.field)
                continue
            if change.signals:
                if Signal._is_foreign_waba(account, change.waba_id):
                    foreign.append(
                        self.env._("WhatsApp Business Account ID %s", change.waba_id)
                    )
                else:
                    notes.extend(Signal._apply_signals(account, change))
                continue
            if self._is_foreign(change.phone_number_id):
                foreign.append(self.env._("phone number ID %s", change.phone_number_id))
                continue
            for preference in change.preferences:
                Preference._apply_preference(account, preference)
            for message in change.messages:
                Inbound._receive(account, message)
            for status in change.statuses:
                Status._apply_status(account, status)
            for update in change.user_id_updates:
                Inbound._apply_user_id_update(account, update)
            notes.extend(f"Meta error {e.code}: {e.title}" for e in change.errors)
        if notes:
            _logger.warning("WhatsApp webhook value errors: %s", "; ".join(notes))
        if ignored or self.ignored_fields:
            self.ignored_fields = ", ".join(sorted(set(ignored))) or False
        if ignored:
            notes.append(
                self.env._(
                    "Ignored: field %(fields)s, which Win-back does not use "
                    "(kept in the raw body).",
                    fields=self.ignored_fields,
                )
            )
        return "\n".join(notes), sorted(set(foreign))

    def _is_foreign(self, phone_number_id):
        """Whether a change naming ``phone_number_id`` is for another number
        than the account's. A change that names none is the authenticating
        account's."""
        self.ensure_one()
        return bool(phone_number_id) and phone_number_id != (
            self.account_id.phone_number_id or ""
        )

    @api.model
    def _due_condition(self):
        """The events the processing cron takes: new ones, and failed ones
        due for a retry."""
        return SQL(
            """
            state = 'pending'
            OR (state = 'failed' AND attempts < %s
                AND (next_attempt_at IS NULL
                     OR next_attempt_at <= (now() at time zone 'UTC')))
            """,
            MAX_ATTEMPTS,
        )

    @api.model
    def _cron_process(self, batch_size=PROCESS_BATCH):
        """Process pending events and retry failed ones, with backoff,
        claimed with row locks so several workers never process the same
        event. Commits after each chunk: done events stay done even if a
        later chunk crashes the worker. Reports its progress, so ir.cron
        runs it again at once while a backlog is being worked off."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                SELECT id FROM winback_webhook_event
                 WHERE %s
                 ORDER BY id
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED
                """,
                self._due_condition(),
                batch_size,
            )
        )
        events = self.browse(r[0] for r in self.env.cr.fetchall())
        for index in range(0, len(events), PROCESS_CHUNK):
            events[index : index + PROCESS_CHUNK]._process(lock=True)
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env.cr.execute(
            SQL(
                "SELECT count(*) FROM winback_webhook_event WHERE %s",
                self._due_condition(),
            )
        )
        remaining = self.env.cr.fetchone()[0]
        self.env["ir.cron"]._notify_progress(done=len(events), remaining=remaining)
        return True

    @api.autovacuum
    def _gc_processed_events(self):
        """Processed (done or refused) events are kept for the days of the
        system parameter ``winback_whatsapp.webhook_event_retention_days``
        (30 by default, 0 keeps them), then deleted. Failed events stay for
        the administrator until the personal-data lifetime of messages
        (``winback_whatsapp.message_retention_days``) is over."""
        Param = self.env["ir.config_parameter"].sudo()
        days = int(
            Param.get_param(
                "winback_whatsapp.webhook_event_retention_days", EVENT_RETENTION
            )
            or 0
        )
        self.flush_model()
        now = fields.Datetime.now()
        if days > 0:
            self.env.cr.execute(
                """
                DELETE FROM winback_webhook_event
                 WHERE state IN ('done', 'refused')
                   AND COALESCE(processed_at, create_date) < %s
                """,
                [now - timedelta(days=days)],
            )
        lifetime = int(
            Param.get_param(
                "winback_whatsapp.message_retention_days", MESSAGE_RETENTION
            )
            or 0
        )
        if lifetime > 0:
            self.env.cr.execute(
                """
                DELETE FROM winback_webhook_event
                 WHERE state = 'failed' AND create_date < %s
                """,
                [now - timedelta(days=max(lifetime, days))],
            )
        self.invalidate_model()
