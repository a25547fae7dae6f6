import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.webhook_parser import BATCH_STATUSES, MetaError
from ..tools.whatsapp_api import (
    FAIL,
    OPT_OUT,
    PAUSE_ACCOUNT,
    PAUSE_CAMPAIGN,
    RETRY,
    UNKNOWN,
    WAIT,
    WhatsAppError,
    error_policy,
)

_logger = logging.getLogger(__name__)

# Statuses only move forward: a late "delivered" never undoes a "read".
STATUS_RANK = {
    "queued": 0,
    "sending": 0,
    "sent": 1,
    "delivered": 2,
    "read": 3,
}
OPAQUE_PREFIX = "winback:"
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
    FAIL: "_on_failure",
    OPT_OUT: "_on_opt_out_error",
    PAUSE_CAMPAIGN: "_on_template_error",
    PAUSE_ACCOUNT: "_on_account_error",
}


class WinbackStatus(models.AbstractModel):
    """What became of the messages we sent (as Odoo's ``sms.tracker`` does
    for SMS): from WhatsApp's status webhooks (sent, delivered, read, or
    failed with Meta's error), from the provider's answer to a send (its
    error policy, ``whatsapp_api.ERROR_POLICY``), and from silence (a send
    whose outcome stayed unknown).

    Takes the webhook parser's ``StatusEvent`` (tools/webhook_parser.py).
    A status is matched on its wamid, else on the callback data every send
    carries (``winback:<message id>``), which settles a message whose send
    outcome was unknown."""

    _name = "winback.status"
    _description = "WhatsApp status tracker"

    @api.model
    def _find_by_status(self, account, event):
        """The outbound message of ``account`` the status is about, or an
        empty recordset."""
        Message = self.env["winback.message"]
        message = event.wamid and Message.search(
            [("account_id", "=", account.id), ("wamid", "=", event.wamid)], limit=1
        )
        opaque = event.biz_opaque_callback_data or ""
        if not message and opaque.startswith(OPAQUE_PREFIX):
            try:
                message = Message.browse(int(opaque[len(OPAQUE_PREFIX) :])).exists()
            except ValueError:
                message = Message
            if message and (
                message.direction != "outbound" or message.account_id != account
            ):
                message = Message
            if message and event.wamid and not message.wamid:
                message.wamid = event.wamid
        return message or Message

    @api.model
    def _apply_status(self, account, event):
        """Monotonic status update: sent < delivered < read, failed final.
        Returns whether the message changed."""
        message = self._find_by_status(account, event)
        new = event.status
        if not message:
            _logger.info("WhatsApp status %s for unknown message %s", new, event.wamid)
            return False
        partner = message.partner_id
        if event.recipient_user_id and event.recipient_id and partner:
            # A number and the customer's WhatsApp user ID together: kept,
            # for the day the customer hides their number.
            if not partner.whatsapp_bsuid:
                partner._winback_record_bsuid(event.recipient_user_id)
        if event.pricing and message.direction == "outbound":
            message.write(self._pricing_vals(event.pricing))
        changed = self._apply_state(message, event)
        self.env["winback.cost"]._price_messages(message.ids)
        return changed

    @api.model
    def _pricing_vals(self, pricing):
        """The message fields a status's ``pricing`` object fills (a field
        the object leaves out keeps its value)."""
        vals = {
            "billable": pricing.charged,
            "pricing_category": pricing.category,
            "pricing_model": pricing.pricing_model,
            "pricing_type": pricing.type,
        }
        return {name: value for name, value in vals.items() if value is not None}

    @api.model
    def _apply_state(self, message, event):
        """The monotonic state update of ``_apply_status``."""
        new = event.status
        if message.state in ("failed", "cancelled", "received"):
            return False
        if new == "failed":
            error = event.error or MetaError(code="", title="")
            self._apply_error(message, error.code, error.text)
            return True
        rank = STATUS_RANK
        if new not in rank or rank[new] <= rank.get(message.state, 0):
            return False
        when = event.timestamp or fields.Datetime.now()
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
    def _learn_user_ids(self, learned):
        """Statuses that named a number and the customer's WhatsApp user ID
        together (``{(account id, wamid): user ID}``): the user ID is kept on
        the customers who have none yet, as ``_apply_status`` does, for the
        day they hide their number."""
        if not learned:
            return
        self.env.cr.execute(
            SQL(
                """
                SELECT m.partner_id, v.bsuid
                  FROM (VALUES %s) AS v(account_id, wamid, bsuid)
                  JOIN winback_message m
                    ON m.account_id = v.account_id AND m.wamid = v.wamid
                  JOIN res_partner p ON p.id = m.partner_id
                 WHERE p.whatsapp_bsuid IS NULL
                """,
                SQL(", ").join(
                    SQL("(%s::int, %s::varchar, %s::varchar)", *key, bsuid)
                    for key, bsuid in learned.items()
                ),
            )
        )
        for partner_id, bsuid in self.env.cr.fetchall():
            partner = self.env["res.partner"].browse(partner_id)
            if not partner.whatsapp_bsuid:
                partner._winback_record_bsuid(bsuid)

    @api.model
    def _apply_statuses(self, statuses):
        """Apply many sent, delivered and read statuses at once, with exactly
        the result of ``_apply_status`` called on each in turn.

        ``statuses``: ``(account id, StatusEvent)`` pairs in the order they
        came, each with a wamid and a status of ``BATCH_STATUSES`` (failed
        statuses take ``_apply_status``: their error policies act one by
        one). Statuses of one message are folded here into the highest rank
        and the time of the first status of each rank, then one monotonic
        ``UPDATE ... FROM (VALUES ...)`` applies them: matched on the wamid,
        else on the callback data ``winback:<id>`` (which also gives the
        message its wamid), only to open messages of a lower rank, filling
        each time the way the statuses one by one would have (a first
        status fills ``sent_at``, the first of rank delivered or read
        ``delivered_at``, the read one ``read_at``). Messages left in
        "sending" are settled: their enrollments move on. Each message
        keeps the ``pricing`` of its last status that carries one, and the
        delivered ones Meta charges are priced, in one more statement
        (``winback.cost._price_messages``). Returns the number of messages
        changed."""
        if not statuses:
            return 0
        now = fields.Datetime.now()
        groups = {}
        learned = {}  # (account id, wamid): the customer's WhatsApp user ID
        for order, (account_id, event) in enumerate(statuses):
            if event.status not in BATCH_STATUSES or not event.wamid:
                raise ValueError(f"status {event.status} of {event.wamid} not batched")
            rank = STATUS_RANK[event.status]
            group = groups.setdefault(
                (account_id, event.wamid),
                {
                    "order": order,
                    "opaque": None,
                    "rank": 0,
                    "at": [None] * 4,
                    "pricing": None,
                },
            )
            group["pricing"] = event.pricing or group["pricing"]
            if group["opaque"] is None:
                group["opaque"] = self._opaque_message_id(
                    event.biz_opaque_callback_data
                )
            group["rank"] = max(group["rank"], rank)
            if event.recipient_user_id and event.recipient_id:
                learned[(account_id, event.wamid)] = event.recipient_user_id
            for reached in range(1, rank + 1):  # the first time of each rank
                group["at"][reached] = group["at"][reached] or event.timestamp or now
        values = SQL(", ").join(
            SQL(
                "(%s::int, %s::int, %s::varchar, %s::int, %s::int,"
                " %s::timestamp, %s::timestamp, %s::timestamp,"
                " %s::bool, %s::varchar, %s::varchar, %s::varchar)",
                group["order"],
                account_id,
                wamid,
                group["opaque"],
                group["rank"],
                *group["at"][1:],
                *self._pricing_row(group["pricing"]),
            )
            for (account_id, wamid), group in groups.items()
        )
        rank_of = SQL(
            "(CASE %s WHEN 'sent' THEN 1 WHEN 'delivered' THEN 2"
            " WHEN 'read' THEN 3 ELSE 0 END)",
            SQL.identifier("old", "state"),
        )
        applies = SQL(
            "(old.state IN ('queued', 'sending', 'sent', 'delivered')"
            " AND %s < r.max_rank)",
            rank_of,
        )
        self.env["winback.message"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                WITH v (ord, account_id, wamid, opaque_id, max_rank, at1, at2, at3,
                        billable, p_category, p_model, p_type)
                  AS (VALUES %(values)s),
                r AS (
                    SELECT DISTINCT ON (COALESCE(w.id, o.id))
                           COALESCE(w.id, o.id) AS message_id,
                           v.wamid, v.max_rank, v.at1, v.at2, v.at3,
                           v.billable, v.p_category, v.p_model, v.p_type
                      FROM v
                 LEFT JOIN winback_message w
                        ON w.account_id = v.account_id AND w.wamid = v.wamid
                 LEFT JOIN winback_message o
                        ON w.id IS NULL AND o.id = v.opaque_id
                       AND o.direction = 'outbound'
                       AND o.account_id = v.account_id
                     WHERE COALESCE(w.id, o.id) IS NOT NULL
                  ORDER BY COALESCE(w.id, o.id), v.ord
                )
                UPDATE winback_message m
                   SET wamid = COALESCE(old.wamid, r.wamid),
                       state = CASE WHEN %(applies)s
                               THEN (ARRAY['sent', 'delivered', 'read'])[r.max_rank]
                                    ELSE old.state END,
                       error_code = CASE
                           WHEN %(applies)s AND old.state IN ('queued', 'sending')
                           THEN NULL ELSE old.error_code END,
                       error_message = CASE
                           WHEN %(applies)s AND old.state IN ('queued', 'sending')
                           THEN NULL ELSE old.error_message END,
                       sent_at = CASE WHEN %(applies)s
                           THEN COALESCE(old.sent_at, CASE %(rank)s
                                WHEN 0 THEN r.at1 WHEN 1 THEN r.at2 ELSE r.at3 END)
                           ELSE old.sent_at END,
                       delivered_at = CASE WHEN %(applies)s AND r.max_rank >= 2
                           THEN COALESCE(old.delivered_at, CASE WHEN %(rank)s <= 1
                                THEN r.at2 ELSE r.at3 END)
                           ELSE old.delivered_at END,
                       read_at = CASE WHEN %(applies)s AND r.max_rank = 3
                           THEN r.at3 ELSE old.read_at END,
                       billable = COALESCE(r.billable, old.billable),
                       pricing_category = COALESCE(r.p_category, old.pricing_category),
                       pricing_model = COALESCE(r.p_model, old.pricing_model),
                       pricing_type = COALESCE(r.p_type, old.pricing_type),
                       write_uid = %(uid)s,
                       write_date = %(now)s
                  FROM r
                  JOIN winback_message old ON old.id = r.message_id
                 WHERE m.id = r.message_id
                   AND (%(applies)s OR (old.wamid IS NULL AND r.wamid IS NOT NULL)
                        OR (old.direction = 'outbound' AND r.billable IS NOT NULL
                            AND old.billable IS DISTINCT FROM r.billable))
             RETURNING m.id, %(applies)s AND old.state IN ('queued', 'sending'),
                       m.enrollment_id, %(applies)s
                """,
                values=values,
                applies=applies,
                rank=rank_of,
                uid=self.env.uid,
                now=now,
            )
        )
        rows = self.env.cr.fetchall()
        self.env["winback.message"].invalidate_model()
        unsent = self.env["winback.message"].browse(
            message_id
            for message_id, was_unsent, enrollment, _changed in rows
            if was_unsent and enrollment
        )
        if unsent:
            # Reconciles messages left in 'sending' by a crashed sender.
            self.env["winback.enrollment"]._on_message_sent(unsent)
        self._learn_user_ids(learned)
        self.env["winback.cost"]._price_messages([row[0] for row in rows])
        changed = sum(1 for row in rows if row[3])
        if len(groups) > changed:
            _logger.info(
                "WhatsApp statuses of %s messages unknown, settled or already past",
                len(groups) - changed,
            )
        return changed

    @api.model
    def _pricing_row(self, pricing):
        """(billable, category, model, type) of a status's ``pricing``
        object for the batch update; Nones when the status has none."""
        if not pricing:
            return (None, None, None, None)
        return (pricing.charged, pricing.category, pricing.pricing_model, pricing.type)

    @api.model
    def _opaque_message_id(self, opaque):
        """The message id the callback data ``winback:<id>`` names, or None."""
        opaque = opaque or ""
        if not opaque.startswith(OPAQUE_PREFIX):
            return None
        try:
            message_id = int(opaque[len(OPAQUE_PREFIX) :])
        except ValueError:
            return None
        return message_id if 0 < message_id < 2**31 else None

    @api.model
    def _apply_send_error(self, message, error):
        """The send call of ``message`` raised ``error``."""
        if isinstance(error, WhatsAppError):
            return self._apply_error(message, error.code, error.text, error.policy)
        # The API client turns whatever happens once the request is on its
        # way into a WhatsAppError: this was raised before, nothing left.
        _logger.error("WhatsApp message %s not sent", message.id, exc_info=error)
        # Built apart: Odoo's string export cannot read an f-string inside _().
        detail = f"{type(error).__name__}: {error}"
        message._fail_with(
            "send_error", self.env._("Not sent: %(error)s", error=detail)
        )
        return True

    @api.model
    def _apply_error(self, messages, code, text, policy=None):
        """Apply the provider's error policy (``whatsapp_api.ERROR_POLICY``)
        to ``messages`` WhatsApp refused.

        ``code`` is Meta's error code as a string (or one of the API client's:
        connection, timeout, connection_lost, invalid_token...). ``policy``:
        the one the API client decided (``WhatsAppError.policy``, UNKNOWN when
        the request may have been accepted: the message stays ``sending`` for
        a status webhook to settle, never resent); else the code's.
        """
        code = str(code)
        handler = ERROR_HANDLERS[policy or error_policy(code)]
        for message in messages:
            getattr(self, handler)(message, code, text)
        return True

    @api.model
    def _on_outcome_unknown(self, message, code, text):
        message.write(
            {
                "error_code": code,
                "error_message": self.env._(
                    "Outcome unknown (%(error)s): WhatsApp may have accepted "
                    "the message. Waiting for its status; never resent.",
                    error=text,
                ),
            }
        )

    @api.model
    def _on_retry_error(self, message, code, text):
        """Certainly not sent: queued again later, at most ``MAX_ATTEMPTS``
        times in all."""
        if message.attempt_count >= MAX_ATTEMPTS:
            return message._fail_with(code, text)
        if error_policy(code) == WAIT:
            delay = WAIT_DELAY
        else:
            delay = RETRY_BASE * (2 ** max(message.attempt_count - 1, 0))
        message.write(
            {
                "error_code": code,
                "error_message": text,
                "state": "queued",
                "scheduled_at": fields.Datetime.now() + delay,
            }
        )

    @api.model
    def _on_failure(self, message, code, text):
        message._fail_with(code, text)

    @api.model
    def _on_account_error(self, message, code, text):
        """The account needs an administrator: the message waits for it."""
        message.write({"error_code": code, "error_message": text, "state": "queued"})
        message.account_id._pause(f"({code}) {text}")

    @api.model
    def _on_opt_out_error(self, message, code, text):
        message.partner_id._winback_opt_out(
            self.env._(
                "WhatsApp error 131050: the customer stopped marketing messages."
            ),
            numbers=[message.phone_e164] if message.phone_e164 else None,
        )
        message._fail_with(code, text)

    @api.model
    def _on_template_error(self, message, code, text):
        """A template error: the message waits, the campaign pauses."""
        message.write({"error_code": code, "error_message": text, "state": "queued"})
        campaign = message.enrollment_id.campaign_id
        if campaign.state == "running":
            campaign.state = "paused"
            campaign._alert_responsible(
                self.env._(
                    "Campaign paused: WhatsApp refused template %(template)s "
                    "(%(code)s: %(text)s).",
                    template=message.template_id.name,
                    code=code,
                    text=text,
                )
            )

    @api.model
    def _fail_stuck_sending(self):
        """A message left ``sending`` (a crash, or a call whose outcome is
        unknown) is never resent blindly: past the timeout, without a status
        webhook to reconcile it, it ends failed with "outcome unknown"."""
        minutes = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("winback_whatsapp.sending_timeout_minutes", SENDING_TIMEOUT)
        )
        stuck = self.env["winback.message"].search(
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
