import logging
from datetime import datetime, timezone

import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import plaintext2html

from ..tools.stop_keywords import is_start, is_stop

_logger = logging.getLogger(__name__)

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

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _apply_error(self, code, text):
        """Apply the error policy to messages Meta (or the send) failed.

        ``code`` is Meta's error code as a string, ``text`` its title/details.
        """
        now = fields.Datetime.now()
        self.write(
            {
                "state": "failed",
                "error_code": code,
                "error_message": text,
                "failed_at": now,
            }
        )
        if code == OPT_OUT_ERROR:
            self.partner_id._winback_opt_out(
                self.env._("WhatsApp error 131050: the customer stopped marketing.")
            )
        return True

    # WEBHOOK
    # ------------------------------------------------------------
    # Inbound messages, statuses and preferences from the webhook.
    # ------------------------------------------------------------

    profile_name = fields.Char(
        "WhatsApp profile name", help="Name the customer shows on WhatsApp."
    )

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
        if self.body.startswith(self.env._("Reaction: ")):
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
        partner.activity_schedule(
            activity_type_id=activity_type.id,
            summary=self.env._("Answer the WhatsApp reply"),
            note=plaintext2html(self.body or ""),
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
            if message and message.direction != "outbound":
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
        """Unmatched reply: create a partner with this number and file the
        message in its chatter."""
        for message in self.filtered(lambda m: not m.partner_id):
            partner = self.env["res.partner"].create(
                {
                    "name": message.profile_name or message.phone_e164,
                    "mobile": message.phone_e164,
                }
            )
            message._winback_link_partner(partner)
        return True

    def _winback_link_partner(self, partner):
        self.ensure_one()
        self.sudo().partner_id = partner
        self.sudo()._winback_handle_inbound()
        return True

    def action_winback_link_partner(self):
        """Unmatched reply linked by hand to the chosen partner: file it in
        the partner's chatter and apply it (keywords, enrollment, activity)."""
        for message in self.filtered(
            lambda m: m.direction == "inbound" and m.partner_id
        ):
            message.sudo()._winback_handle_inbound()
        return True
