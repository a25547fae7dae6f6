import psycopg2
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import plaintext2html

from ..tools.media import MEDIA_KINDS
from ..tools.stop_keywords import is_start, is_stop, normalize
from ..tools.wa_number import number_variants, wa_id_to_e164
from ..tools.webhook_parser import DELETED, EDIT, REACTION_REMOVED, SYSTEM
from .winback_enrollment import LIVE_STATES

# Inbound messages that are no reply: shown in the chatter, but they end no
# campaign, ask nobody to answer and are no STOP or START.
NOTICES = (SYSTEM, EDIT, DELETED, REACTION_REMOVED)
# What each of them does to the message it names.
CHANGES = {EDIT: "edited", DELETED: "deleted", REACTION_REMOVED: "reaction_removed"}
# What is read of the message a customer answers (or edits, or deletes).
REPLIED_TO_FIELDS = [
    "wamid",
    "direction",
    "partner_id",
    "enrollment_id",
    "step_id",
    "template_id",
    "phone_e164",
    "whatsapp_bsuid",
]


class WinbackInbound(models.AbstractModel):
    """What a customer sends: a message is stored once (on its wamid), worded
    by ``winback.inbound.text``, filed in the partner's chatter and acted on
    (STOP / START, reply, activity). Notices are shown but are no reply: a
    number change updates the partner, an edit, a deletion or a removed
    reaction marks the message it names.

    Takes the webhook parser's events (tools/webhook_parser.py) and the
    inbound ``winback.message`` records they become. Called by the webhook
    event processing (as superuser) and by ``winback.unmatched``.
    """

    _name = "winback.inbound"
    _description = "WhatsApp inbound handling"

    # ------------------------------------------------------------
    # Messages
    # ------------------------------------------------------------

    @api.model
    def _receive(self, account, event):
        """Store one inbound message (idempotent on its wamid) and act on it.
        Returns the new message, or nothing when it was already stored."""
        Message = self.env["winback.message"]
        if not event.wamid:
            return Message
        # An edit or a deletion names the message it changes.
        context_wamid = event.original_wamid or event.context_wamid
        # This message if already stored, and the one it names, at once.
        known = Message.search_fetch(
            [
                ("account_id", "=", account.id),
                ("wamid", "in", [w for w in (event.wamid, context_wamid) if w]),
            ],
            REPLIED_TO_FIELDS,
        )
        if any(m.wamid == event.wamid for m in known):
            return Message
        replied_to = known.filtered(lambda m: m.wamid == context_wamid)[:1]
        # Meta's wa_id is not always the E.164 number (Mexico's 521...).
        number = wa_id_to_e164(event.wa_id)
        # The customer's business-scoped user ID (BSUID): always given since
        # April 2026, the only identity of a customer who hides their number.
        # A notice that WhatsApp replaced it is about the previous one.
        bsuid = event.previous_user_id or event.user_id
        if event.text_kind in (EDIT, DELETED) and replied_to:
            # Nobody edits nor deletes another's message.
            replied_to = replied_to.filtered(
                lambda m: (m.phone_e164 or False) == (number or False)
                and (not bsuid or not m.whatsapp_bsuid or m.whatsapp_bsuid == bsuid)
            )
        partner = replied_to and replied_to.partner_id
        Partner = self.env["res.partner"].sudo()
        if not partner:
            partner = Partner._winback_find_by_number(number, account.company_id)
        if not partner:
            # No number (or an unknown one): the user ID, the previous one
            # when WhatsApp says it replaced it, or the new one.
            partner = Partner._winback_find_by_bsuid(
                [event.user_id, event.previous_user_id, event.new_user_id],
                account.company_id,
            )
        vals = {
            "direction": "inbound",
            "state": "received",
            "account_id": account.id,
            "company_id": account.company_id.id,
            "partner_id": partner.id or False,
            "phone_e164": number or False,
            "body": self.env["winback.inbound.text"]._body(event, replied_to),
            "wamid": event.wamid,
            "context_wamid": context_wamid or False,
            "received_at": event.timestamp or fields.Datetime.now(),
            "profile_name": event.profile_name or False,
            "inbound_type": event.type or False,
            "inbound_kind": event.text_kind,
            "new_phone_e164": wa_id_to_e164(event.new_wa_id) or False,
            "whatsapp_bsuid": bsuid or False,
            "whatsapp_username": event.username or False,
            "new_whatsapp_bsuid": event.new_user_id != bsuid and event.new_user_id,
        }
        try:
            with self.env.cr.savepoint():
                message = Message.create(vals)
        except psycopg2.IntegrityError:
            # A concurrent delivery of the same wamid won the race.
            return Message
        # A photo, a voice note, a document: downloaded by a cron, never
        # here (Meta waits on the webhook); the message is filed at once.
        self.env["winback.media"]._create_for(message, event)
        if event.text_kind in CHANGES:
            self._mark_changed(message, replied_to)
        if partner:
            self._handle(message, replied_to, event.payload)
        elif event.text_kind not in NOTICES:
            # Waits in Unmatched replies, but a STOP (or START) is obeyed now.
            self._apply_keywords(message, replied_to, event.payload)
        return message

    @api.model
    def _mark_changed(self, message, named=None):
        """An edit or a deletion marks the customer's own message it names;
        a removed reaction, the customer's reactions to the message it
        names. Nothing is erased: the text received stays."""
        message.ensure_one()
        if message.inbound_kind == REACTION_REMOVED:
            if not message.context_wamid:
                return
            changed = self.env["winback.message"].search(
                [
                    ("account_id", "=", message.account_id.id),
                    ("direction", "=", "inbound"),
                    ("inbound_type", "=", "reaction"),
                    ("inbound_kind", "!=", REACTION_REMOVED),
                    ("context_wamid", "=", message.context_wamid),
                    ("phone_e164", "=", message.phone_e164),
                    ("customer_change", "=", False),
                    ("id", "!=", message.id),
                ]
            )
        else:
            changed = (named or message.browse()).filtered(
                lambda m: m.direction == "inbound"
            )
        changed.customer_change = CHANGES[message.inbound_kind]

    @api.model
    def _handle(self, message, replied_to=None, payload=None):
        """Chatter, opt-out/opt-in keywords, enrollment outcome and what the
        reply's intent asks (``winback.reply.intent``: opportunity, snooze,
        opt-out or activity), for an inbound message of a known partner; a
        notice (number change, edit, deletion, removed reaction) only goes to
        the chatter, and a number change updates the partner."""
        message.ensure_one()
        message = message.with_env(self.env)
        message.handled = True
        self._record_bsuid(message)
        if message.inbound_kind in NOTICES:
            # Shown, but no reply: the campaign goes on, no activity.
            self._post_in_chatter(message)
            if message.inbound_kind == SYSTEM:
                self._apply_number_change(message)
                self._apply_bsuid_change(message)
            return
        keyword = self._keyword(message, replied_to, payload)
        enrollment = replied_to and replied_to.enrollment_id
        if keyword:
            self._post_in_chatter(message)
            live = self.env["winback.enrollment"].search(
                [
                    ("partner_id", "=", message.partner_id.id),
                    ("state", "in", LIVE_STATES),
                ]
            )
            self._apply_keyword(message, keyword)
            self.env["winback.reply.intent"]._note_stop(enrollment or live)
            return
        if not enrollment:
            enrollment = self.env["winback.enrollment"].search(
                [("partner_id", "=", message.partner_id.id), ("state", "=", "running")],
                order="id desc",
                limit=1,
            )
        if enrollment:
            message.enrollment_id = enrollment
        if message.inbound_type == "reaction":
            # An emoji on our message is shown, but is no conversation: the
            # campaign goes on and nobody is asked to answer it.
            self._post_in_chatter(message)
            return
        # Interested, not now, stop or question: what follows the reply.
        Intent = self.env["winback.reply.intent"]
        intent = Intent._effective_intent(message, enrollment, replied_to, payload)
        user = self.env["res.users"]
        if intent == "question":
            # Whoever answers hears of it through the reply itself, in the
            # customer's words.
            user = self._reply_user(message, enrollment)
        self._post_in_chatter(message, notify=user.partner_id)
        Intent._act(message, enrollment, intent, replied_to, user)

    @api.model
    def _apply_number_change(self, message):
        """A number-change notice: the partner's mobile becomes the new
        number, so that the next message still finds them; the running
        campaign and the queued messages follow; an opt-out follows too."""
        message.ensure_one()
        partner, old, new = (
            message.partner_id,
            message.phone_e164,
            message.new_phone_e164,
        )
        if not (partner and new) or new in (old, partner.phone_sanitized):
            return
        previous = partner.mobile
        partner.mobile = partner._phone_format(number=new) or new
        olds = [old, *number_variants(old)] if old else []
        self.env["winback.enrollment"].search(
            [
                ("partner_id", "=", partner.id),
                ("state", "in", LIVE_STATES),
                ("phone_e164", "in", olds),
            ]
        ).phone_e164 = new
        self.env["winback.message"].search(
            [
                ("partner_id", "=", partner.id),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
                ("phone_e164", "in", olds),
            ]
        ).phone_e164 = new
        Blacklist = self.env["phone.blacklist"].sudo()
        if old and Blacklist._winback_lines([old]).filtered("active"):
            Blacklist._winback_add(
                [new],
                self.env._("WhatsApp: the customer, opted out, changed number."),
                when=message.received_at,
            )
        partner.message_post(
            body=self.env._(
                "WhatsApp number changed: mobile %(old)s replaced by %(new)s.",
                old=previous or old or "-",
                new=partner.mobile,
            ),
            subtype_xmlid="mail.mt_note",
        )

    @api.model
    def _record_bsuid(self, message):
        """The partner of a message is the customer behind its WhatsApp user
        ID (matched by number, or answering our message): remembered, with
        their username, so that their next message finds them even without
        a number. A message without a number never replaces a user ID the
        partner has (a late message from a user ID WhatsApp since replaced);
        a notice that WhatsApp replaced it moves it (``_follow_bsuid``)."""
        partner = message.partner_id
        if not partner:
            return
        bsuid = message.whatsapp_bsuid
        if message.new_whatsapp_bsuid or (
            partner.whatsapp_bsuid and not message.phone_e164
        ):
            bsuid = False
        if bsuid or message.whatsapp_username:
            partner._winback_record_bsuid(bsuid, message.whatsapp_username)

    @api.model
    def _apply_bsuid_change(self, message):
        """WhatsApp replaced the customer's user ID (they changed number):
        the partner keeps being the same customer under the new one, and an
        opt-out of the old one holds for the new one."""
        partner, old, new = (
            message.partner_id,
            message.whatsapp_bsuid,
            message.new_whatsapp_bsuid,
        )
        if not (partner and new):
            return
        self._follow_bsuid(partner, old, new, message.received_at)

    @api.model
    def _follow_bsuid(self, partner, old, new, when=None):
        """Move ``partner`` from WhatsApp user ID ``old`` to ``new``: queued
        messages follow, and so does an opt-out."""
        previous = partner.whatsapp_bsuid
        if previous == new:
            return
        old = old or previous
        partner._winback_record_bsuid(new)
        if partner.whatsapp_bsuid != new:
            return  # another contact of the company holds it already
        self.env["winback.message"].search(
            [
                ("partner_id", "=", partner.id),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
                ("whatsapp_bsuid", "in", [b for b in (old, previous) if b]),
            ]
        ).whatsapp_bsuid = new
        Optout = self.env["winback.bsuid.optout"].sudo()
        if Optout._winback_is_opted_out([old, previous]):
            Optout._winback_add(
                [new],
                self.env._("WhatsApp: the customer, opted out, changed user ID."),
                when=when,
            )
        partner.message_post(
            body=self.env._(
                "WhatsApp user ID changed: %(old)s replaced by %(new)s.",
                old=previous or old or "-",
                new=new,
            ),
            subtype_xmlid="mail.mt_note",
        )

    @api.model
    def _apply_user_id_update(self, account, event):
        """Meta's ``user_id_update`` webhook: the customer's user ID was
        replaced. Nothing to do for a customer we do not know."""
        if not (event.previous_user_id and event.user_id):
            return False
        Partner = self.env["res.partner"].sudo()
        partner = Partner._winback_find_by_bsuid(
            [event.previous_user_id, event.user_id], account.company_id
        )
        if not partner and event.wa_id:
            partner = Partner._winback_find_by_number(
                wa_id_to_e164(event.wa_id), account.company_id
            )
        if partner:
            self._follow_bsuid(
                partner, event.previous_user_id, event.user_id, event.timestamp
            )
        else:
            # Unknown customer: an opt-out of the old ID still holds.
            Optout = self.env["winback.bsuid.optout"].sudo()
            if Optout._winback_is_opted_out([event.previous_user_id]):
                Optout._winback_add(
                    [event.user_id],
                    self.env._("WhatsApp: the customer, opted out, changed user ID."),
                    when=event.timestamp,
                )
        return bool(partner)

    @api.model
    def _apply_keywords(self, message, replied_to=None, payload=None):
        """Obey a STOP, or a START of a blacklisted number, partner or not.
        Returns whether the message was one of them."""
        keyword = self._keyword(message, replied_to, payload)
        if keyword:
            self._apply_keyword(message, keyword)
        return bool(keyword)

    @api.model
    def _keyword(self, message, replied_to=None, payload=None):
        """``"stop"``, ``"start"`` (of a blacklisted number or opted-out
        user ID), or nothing."""
        message.ensure_one()
        if self._is_stop(message, replied_to, payload):
            return "stop"
        if is_start(message.body) and (
            self.env["phone.blacklist"]
            .sudo()
            ._winback_lines([message.phone_e164])
            .filtered("active")
            or self.env["winback.bsuid.optout"]
            .sudo()
            ._winback_is_opted_out(
                [message.whatsapp_bsuid, message.partner_id.whatsapp_bsuid]
            )
        ):
            return "start"
        return None

    @api.model
    def _apply_keyword(self, message, keyword):
        if keyword == "stop":
            self._opt_out_from_reply(message)
        else:
            self._opt_in_from_reply(message)

    @api.model
    def _post_in_chatter(self, message, notify=None):
        """The message in the customer's chatter, ``notify`` (partners)
        notified of it, by e-mail or in Odoo as each prefers."""
        message.ensure_one()
        Media = self.env["winback.media"]
        media = (
            Media.search([("message_id", "=", message.id)], limit=1)
            if message.inbound_type in MEDIA_KINDS
            else Media
        )
        # Filed by the system, in the customer's name: the customer does not
        # become a follower of their own contact (who would then receive by
        # e-mail what the sales team writes there).
        posted = message.partner_id.with_context(
            mail_create_nosubscribe=True
        ).message_post(
            body=self._chatter_body(message, media),
            author_id=message.partner_id.id,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
            partner_ids=notify.ids if notify else [],
        )
        if media:
            media._link_chatter(posted)
        return posted

    @api.model
    def _chatter_body(self, message, media=None):
        """The chatter text of an inbound message: its text (a media's
        caption) and, while its file is not there, a note saying why."""
        # plaintext2html escapes: an HTML/script payload is shown, never run.
        body = Markup("%s%s") % (
            Markup("<b>WhatsApp</b>: "),
            plaintext2html(message.body or ""),
        )
        if media:
            body += media._note_html()
        return body

    @api.model
    def _is_stop(self, message, replied_to=None, payload=None):
        """Whether this inbound message opts out: its text is a stop keyword,
        or it is a tap on a STOP quick-reply button. A tap on any other
        button is a reply. Needs no partner."""
        message.ensure_one()
        if is_stop(message.body):
            return True
        return any(self._tapped_buttons(message, replied_to, payload).mapped("is_stop"))

    @api.model
    def _tapped_buttons(self, message, replied_to=None, payload=None):
        """The quick-reply button this message taps, if any. The button is
        found by its payload, first among the buttons of the template
        answered, then of the account's templates; a ``button`` message
        whose payload matches none (sent without payloads) by its text."""
        Button = self.env["winback.template.button"].sudo()
        if not payload and message.inbound_type != "button":
            return Button
        template = replied_to and replied_to.template_id
        buttons = template.sudo().button_ids if template else None
        if payload:
            matched = (
                buttons.filtered(lambda b: b.payload == payload) if buttons else None
            )
            matched = matched or self._account_buttons(
                message, [("payload", "=", payload)]
            )
            if matched:
                return matched
        if message.inbound_type == "button" and message.body:
            if buttons is None:
                buttons = self._account_buttons(
                    message, [("text", "=ilike", message.body)]
                )
            text = normalize(message.body)
            return buttons.filtered(lambda b: normalize(b.text) == text)
        return Button

    @api.model
    def _account_buttons(self, message, domain):
        return (
            self.env["winback.template.button"]
            .sudo()
            .with_context(active_test=False)
            .search([("template_id.account_id", "=", message.account_id.id), *domain])
        )

    # ------------------------------------------------------------
    # Opt-out and opt-in
    # ------------------------------------------------------------

    @api.model
    def _opt_out_from_reply(self, message):
        message.ensure_one()
        number = message.phone_e164
        bsuid = message.whatsapp_bsuid
        partner = message.partner_id
        Blacklist = self.env["phone.blacklist"].sudo()
        if number:
            already = Blacklist.search([("number", "=", number)])
        else:
            already = (
                self.env["winback.bsuid.optout"]
                .sudo()
                ._winback_lines([bsuid])
                .filtered("active")
            )
        reason = self.env._("WhatsApp: the customer asked to stop (%s).", message.body)
        if already:
            # Repeated STOP: already off every send, and the confirmation
            # queued the first time must not be cancelled nor repeated. It
            # is still the latest opt-out an older START must not undo.
            already._winback_note_opt_out(message.received_at)
            if partner and self.env["winback.enrollment"].sudo().search_count(
                [("partner_id", "=", partner.id), ("state", "in", LIVE_STATES)],
                limit=1,
            ):
                # A STOP from an unknown number, linked to its customer
                # later: the customer leaves their campaigns now.
                partner._winback_opt_out(
                    reason,
                    numbers=[number] if number else None,
                    when=message.received_at,
                    bsuids=[bsuid] if bsuid else None,
                )
            return
        partner._winback_opt_out(
            reason,
            numbers=[number] if number else None,
            when=message.received_at,
            bsuids=[bsuid] if bsuid else None,
        )
        if number or bsuid:
            self._queue_stop_confirmation(message)

    @api.model
    def _opt_in_from_reply(self, message):
        """START: free the number again, unless the customer opted out after
        sending it (a START retried or processed late)."""
        message.ensure_one()
        numbers = [message.phone_e164, *message.partner_id.mapped("phone_sanitized")]
        freed = (
            self.env["phone.blacklist"]
            .sudo()
            ._winback_remove(
                numbers,
                self.env._("Customer sent START on WhatsApp."),
                when=message.received_at,
            )
        )
        freed = (
            self.env["winback.bsuid.optout"]
            .sudo()
            ._winback_remove(
                [message.whatsapp_bsuid, *message.partner_id.mapped("whatsapp_bsuid")],
                when=message.received_at,
            )
            and freed
        )
        if freed:
            body = self.env._("WhatsApp: the customer opted back in (START).")
        else:
            body = self.env._(
                "WhatsApp: START of %(when)s UTC ignored: the customer opted out "
                "after it.",
                when=fields.Datetime.to_string(message.received_at),
            )
        if message.partner_id:
            message.partner_id.message_post(body=body, subtype_xmlid="mail.mt_note")

    @api.model
    def _queue_stop_confirmation(self, message):
        """ONE free-text confirmation (no template): the sender's cron sends
        it; we are inside the 24-hour window the customer's STOP opened."""
        message.ensure_one()
        return self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "queued",
                "account_id": message.account_id.id,
                "company_id": message.company_id.id,
                "partner_id": message.partner_id.id,
                "phone_e164": message.phone_e164,
                "whatsapp_bsuid": message.whatsapp_bsuid,
                "body": self.env._(
                    "You will no longer receive promotional messages from us. "
                    "Reply START to subscribe again."
                ),
                "scheduled_at": fields.Datetime.now(),
            }
        )

    # ------------------------------------------------------------
    # Follow-up
    # ------------------------------------------------------------

    @api.model
    def _schedule_activity(self, message, enrollment, replied_to=None, user=None):
        """One *Win-back reply* to-do per customer, for whoever should answer
        (``user``, else ``_reply_user``), naming the campaign and the step
        answered. Odoo's own "activity assigned" message is not sent: the
        reply itself notified them (``_handle``)."""
        message.ensure_one()
        partner = message.partner_id
        user = user if user is not None else self._reply_user(message, enrollment)
        activity_type = self.env.ref(
            "winback_whatsapp.mail_activity_type_winback_reply",
            raise_if_not_found=False,
        )
        if not activity_type or not user:
            return
        step = self._answered_step(enrollment, replied_to)
        if step:
            summary = self.env._(
                "Answer the WhatsApp reply to %(campaign)s, step %(step)s",
                campaign=step.campaign_id.name,
                step=step.name,
            )
        elif enrollment:
            summary = self.env._(
                "Answer the WhatsApp reply to %(campaign)s",
                campaign=enrollment.campaign_id.name,
            )
        else:
            summary = self.env._("Answer the WhatsApp reply")
        note = plaintext2html(message.body or "")
        pending = self.env["mail.activity"].search_fetch(
            [
                ("res_model", "=", partner._name),
                ("res_id", "=", partner.id),
                ("activity_type_id", "=", activity_type.id),
            ],
            ["id"],
            order="id",
            limit=1,
        )
        if pending:
            # One to-do per customer, however many messages they send: it
            # shows the latest, the chatter has them all.
            pending.write({"note": note, "summary": summary})
            return
        partner.with_context(mail_activity_quick_update=True).activity_schedule(
            activity_type_id=activity_type.id,
            summary=summary,
            note=note,
            user_id=user.id,
        )

    @api.model
    def _reply_user(self, message, enrollment):
        """Who answers the customer: their salesperson (the contact's, else
        their company's), else the responsible of the campaign answered,
        else the company's default (Settings), else the administrator.
        Archived users (OdooBot, the default responsible of campaigns created
        at install) and portal users never get it."""
        partner = message.partner_id

        def candidates():
            # One after the other: most replies stop at the first.
            yield partner.user_id
            yield partner.commercial_partner_id.user_id
            if enrollment:
                yield enrollment.campaign_id.user_id
            company = message.company_id or message.account_id.company_id
            yield company.winback_reply_user_id
            yield self.env.ref("base.user_admin", raise_if_not_found=False)

        for user in candidates():
            if user and user.active and not user.share:
                return user
        return self.env["res.users"]

    @api.model
    def _answered_step(self, enrollment, replied_to=None):
        """The campaign step the customer answered: the one of the message
        they replied to, else the enrollment's last one sent."""
        if not enrollment:
            return self.env["winback.step"]
        if replied_to and replied_to.enrollment_id == enrollment and replied_to.step_id:
            return replied_to.step_id
        return (
            self.env["winback.message"]
            .sudo()
            .search(
                [
                    ("enrollment_id", "=", enrollment.id),
                    ("direction", "=", "outbound"),
                    ("step_id", "!=", False),
                    ("state", "in", ("sent", "delivered", "read")),
                ],
                order="id desc",
                limit=1,
            )
            .step_id
        )
