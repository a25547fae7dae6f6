import psycopg2
from markupsafe import Markup

from odoo import api, models
from odoo.tools import plaintext2html

from .winback_enrollment import LIVE_STATES


class WinbackReplyIntent(models.AbstractModel):
    """What a customer's reply means, and what follows: the intent of the
    quick-reply button tapped, else of the company's keyword rules matched
    in the customer's language (``winback.intent.rule``), else *Question*.

    - *Interested*: one opportunity for the customer's salesperson, with the
      conversation, however many times the button is tapped;
    - *Not now*: the customer leaves the campaign, without a to-do, snoozed
      for the campaign's snooze days;
    - *Stop*: opt-out, as a STOP keyword;
    - *Question*: a to-do for the salesperson, as any reply before.

    Called by ``winback.inbound`` for a reply of a known partner.
    """

    _name = "winback.reply.intent"
    _description = "WhatsApp reply intent"

    @api.model
    def _intent(self, message, replied_to=None, payload=None):
        Inbound = self.env["winback.inbound"]
        button = Inbound._tapped_buttons(message, replied_to, payload)[:1]
        if button:
            return button.intent
        if message.inbound_type != "text" or not message.body:
            return "question"
        partner = message.partner_id
        company = message.company_id or message.account_id.company_id
        return self.env["winback.intent.rule"]._intent_of_text(
            message.body, company, partner.lang or company.partner_id.lang
        )

    @api.model
    def _effective_intent(self, message, enrollment, replied_to=None, payload=None):
        """The intent that is acted on: *Not now* and *Interested* need an
        enrollment to snooze or to sell to, else the reply is a question."""
        intent = self._intent(message, replied_to, payload)
        if intent in ("not_now", "interested") and not enrollment:
            return "question"
        return intent

    @api.model
    def _act(self, message, enrollment, intent, replied_to=None, user=None):
        """Follow up the reply ``message`` (of a known partner) to
        ``enrollment`` (maybe none) by its ``intent``
        (``_effective_intent``); ``user``: who answers a question."""
        Inbound = self.env["winback.inbound"]
        if intent == "stop":
            live = message.partner_id.sudo().winback_enrollment_ids.filtered(
                lambda e: e.state in LIVE_STATES
            )
            Inbound._opt_out_from_reply(message)
            self._note_stop(enrollment | live)
        elif intent == "not_now":
            enrollment._snooze(message)
        elif intent == "interested":
            enrollment._mark_replied(message, "interested")
            self._opportunity(message, enrollment)
        else:
            if enrollment:
                enrollment._mark_replied(message, "question")
            Inbound._schedule_activity(message, enrollment, replied_to, user)
        return intent

    @api.model
    def _note_stop(self, enrollments):
        """The customer's reply opted them out of ``enrollments``."""
        enrollments.filtered(lambda e: e.state == "opted_out").reply_intent = "stop"

    # ------------------------------------------------------------
    # Interested: the opportunity
    # ------------------------------------------------------------

    @api.model
    def _opportunity(self, message, enrollment):
        """The enrollment's opportunity, made once for the customer's
        salesperson; the reply and the conversation are posted on it. A
        second tap (or a second delivery processed at the same time) finds
        the first one: the database allows one opportunity per
        enrollment."""
        enrollment.ensure_one()
        Lead = self.env["crm.lead"].sudo().with_context(active_test=False)
        lead = enrollment.lead_id or Lead.search(
            [("winback_enrollment_id", "=", enrollment.id)], limit=1
        )
        new = not lead
        if new:
            try:
                with self.env.cr.savepoint():
                    lead = Lead.with_context(mail_create_nosubscribe=True).create(
                        self._opportunity_vals(message, enrollment)
                    )
            except psycopg2.errors.UniqueViolation:
                # Made meanwhile by another delivery of the same tap.
                return Lead
            enrollment.lead_id = lead
        elif not enrollment.lead_id:
            enrollment.lead_id = lead
        lead.message_post(
            body=self._conversation_html(enrollment, message, full=new),
            author_id=message.partner_id.id,
            message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        return lead

    @api.model
    def _opportunity_vals(self, message, enrollment):
        partner = message.partner_id
        user = self.env["winback.inbound"]._reply_user(message, enrollment)
        return {
            "type": "opportunity",
            "name": self.env._(
                "Win-back: %(customer)s (%(campaign)s)",
                customer=partner.display_name,
                campaign=enrollment.campaign_id.name,
            ),
            "partner_id": partner.id,
            "user_id": user.id or False,
            "company_id": enrollment.company_id.id,
            "winback_enrollment_id": enrollment.id,
            "description": plaintext2html(message.body or ""),
        }

    @api.model
    def _conversation_html(self, enrollment, message, full=True):
        """The conversation of the enrollment up to ``message`` (full), or
        only ``message``: escaped text, never markup of the customer's."""
        messages = message
        if full:
            messages = (
                enrollment.sudo()
                .message_ids.filtered(
                    lambda m: m.id <= message.id
                    and (m.direction == "inbound" or m.sent_at or m.wamid)
                )
                .sorted("id")
            )
        lines = Markup()
        for line in messages:
            who = (
                line.partner_id.display_name
                if line.direction == "inbound"
                else line.template_id.name or self.env._("Win-back")
            )
            lines += Markup("<p><b>%s</b>: %s</p>") % (
                who,
                plaintext2html(line.body or ""),
            )
        return Markup("<p><b>%s</b></p>%s") % (
            self.env._("WhatsApp conversation"),
            lines,
        )
