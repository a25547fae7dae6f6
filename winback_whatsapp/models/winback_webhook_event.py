import json
import logging
from datetime import timedelta

from odoo import api, fields, models, modules
from odoo.exceptions import AccessError

from .winback_message import MESSAGE_RETENTION

_logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
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

    def _process_after_commit(self):
        """Hand the stored event to the processing cron, woken up as soon as
        the request commits: the webhook answers Meta at once, and whatever
        fails stays in the table for the cron's retries."""
        if modules.module.current_test or self.env.registry.in_test_mode():
            # Tests share one transaction: process now (savepoint per event).
            self._process()
            return
        self._wake_processing_cron()

    @api.model
    def _wake_processing_cron(self):
        """Trigger the processing cron, unless a trigger is already waiting.

        ``ir.cron._trigger`` would add one trigger row per webhook call and
        notify the cron workers over a second connection each time; under
        a burst one due trigger is enough, since the cron takes every
        pending event when it runs. A call that arrives while the cron is
        finishing is picked up by its next run (the cron also runs every
        minute, so nothing waits longer than that)."""
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_webhook_process")
        self.env.cr.execute(
            """
            INSERT INTO ir_cron_trigger
                   (cron_id, call_at, create_uid, create_date, write_uid, write_date)
            SELECT %(cron)s, now() at time zone 'UTC',
                   %(uid)s, now() at time zone 'UTC',
                   %(uid)s, now() at time zone 'UTC'
             WHERE NOT EXISTS (
                   SELECT 1 FROM ir_cron_trigger
                    WHERE cron_id = %(cron)s
                      AND call_at <= now() at time zone 'UTC')
            """,
            {"cron": cron.id, "uid": self.env.uid},
        )
        if self.env.cr.rowcount:
            self.env.cr.postcommit.add(cron.sudo()._notifydb)

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
                        "WhatsApp webhook event %s refused: phone number ID %s is "
                        "not account %s's",
                        event.id,
                        ", ".join(foreign),
                        event.account_id.id,
                    )
                    notes = "\n".join(
                        [
                            self.env._(
                                "Not processed: phone number ID %(ids)s is not the "
                                "number of account %(account)s, whose webhook key "
                                "and secret authenticated this call.",
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
        errors as a note (they are Meta's, not ours), and the phone number
        IDs of the changes left alone because they are not the account's.

        The account is the one whose webhook key and app secret
        authenticated the call, never one the payload names: a change for
        another phone number is not processed."""
        self.ensure_one()
        payload = json.loads(self.raw_body)
        Message = self.env["winback.message"].sudo()
        account = self.account_id
        notes = []
        foreign = []
        for entry in payload.get("entry") or []:
            for change in entry.get("changes") or []:
                value = change.get("value") or {}
                phone_number_id = self._foreign_phone_number_id(value)
                if phone_number_id:
                    foreign.append(phone_number_id)
                    continue
                if change.get("field") == "user_preferences" or value.get(
                    "user_preferences"
                ):
                    for pref in value.get("user_preferences") or []:
                        Message._winback_apply_preference(account, pref)
                names = {
                    c.get("wa_id"): (c.get("profile") or {}).get("name")
                    for c in value.get("contacts") or []
                }
                for msg in value.get("messages") or []:
                    Message._winback_receive(account, msg, names.get(msg.get("from")))
                for status in value.get("statuses") or []:
                    Message._winback_apply_status(account, status)
                for error in value.get("errors") or []:
                    notes.append(
                        "Meta error {}: {}".format(
                            error.get("code"),
                            error.get("title") or error.get("message"),
                        )
                    )
        if notes:
            _logger.warning("WhatsApp webhook value errors: %s", "; ".join(notes))
        return "\n".join(notes), sorted(set(foreign))

    def _foreign_phone_number_id(self, value):
        """The phone number ID a change names when it is not the account's
        (as a string), else False. A change that names none is the
        authenticating account's."""
        self.ensure_one()
        phone_number_id = (value.get("metadata") or {}).get("phone_number_id")
        if phone_number_id in (None, False, ""):
            return False
        phone_number_id = str(phone_number_id)
        if phone_number_id == (self.account_id.phone_number_id or ""):
            return False
        return phone_number_id

    @api.model
    def _cron_process(self, batch_size=200):
        """Process pending events and retry failed ones, with backoff,
        claimed with row locks so several workers never process the same
        event. Reports its progress, so ir.cron runs it again at once while
        a burst is being worked off."""
        self.flush_model()
        self.env.cr.execute(
            """
            SELECT id FROM winback_webhook_event
             WHERE state = 'pending'
                OR (state = 'failed' AND attempts < %s
                    AND (next_attempt_at IS NULL
                         OR next_attempt_at <= (now() at time zone 'UTC')))
             ORDER BY id
             LIMIT %s
               FOR UPDATE SKIP LOCKED
            """,
            (MAX_ATTEMPTS, batch_size + 1),
        )
        ids = [r[0] for r in self.env.cr.fetchall()]
        events = self.browse(ids[:batch_size])
        for index in range(0, len(events), 50):
            events[index : index + 50]._process(lock=True)
            if not (modules.module.current_test or self.env.registry.in_test_mode()):
                # Checkpoint: done events stay done even if a later chunk
                # crashes the worker (and their row locks are released).
                self.env.cr.commit()  # pylint: disable=invalid-commit
        remaining = len(ids) - len(events)
        self.env["ir.cron"]._notify_progress(done=len(events), remaining=remaining)
        if remaining:
            self._wake_processing_cron()
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
