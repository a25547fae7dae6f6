import logging

from odoo import api, fields, models

from ..tools.webhook_parser import MetaError

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


class WinbackStatus(models.AbstractModel):
    """What became of the messages we sent, from WhatsApp's status
    webhooks (as Odoo's ``sms.tracker`` does for SMS): sent, delivered,
    read, or failed with Meta's error.

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
        if message.state in ("failed", "cancelled", "received"):
            return False
        if new == "failed":
            error = event.error or MetaError(code="", title="")
            message._apply_error(error.code, error.text)
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
