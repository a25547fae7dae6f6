from odoo import api, fields, models

from ..tools.wa_number import wa_id_to_e164


class WinbackPreference(models.AbstractModel):
    """Meta's ``user_preferences`` webhook: a customer stopped or resumed
    marketing messages from WhatsApp's own menu. A stop blacklists the
    number and ends the customer's campaigns, like a STOP reply; a resume
    frees it, unless the customer opted out after it."""

    _name = "winback.preference"
    _description = "WhatsApp marketing preferences"

    @api.model
    def _apply_preference(self, account, event):
        """user_preferences: marketing_messages stop / resume. A resume never
        undoes a stop the customer sent after it (retry, late processing)."""
        if event.category not in (None, "marketing_messages"):
            return False
        number = wa_id_to_e164(event.wa_id)
        # A customer who hides their number is known by their user ID only.
        bsuid = event.user_id
        if not (number or bsuid) or event.value not in ("stop", "resume"):
            return False
        when = event.timestamp or fields.Datetime.now()
        Partner = self.env["res.partner"].sudo()
        partner = Partner._winback_find_by_number(number, account.company_id)
        if not partner:
            partner = Partner._winback_find_by_bsuid([bsuid], account.company_id)
        if event.value == "stop":
            partner._winback_opt_out(
                self.env._("WhatsApp: the customer stopped marketing messages."),
                numbers=[number] if number else None,
                when=when,
                bsuids=[bsuid] if bsuid else None,
            )
            return True
        freed = (
            self.env["phone.blacklist"]
            .sudo()
            ._winback_remove(
                [number, *partner.mapped("phone_sanitized")],
                self.env._("WhatsApp: the customer resumed marketing messages."),
                when=when,
            )
        )
        freed = (
            self.env["winback.bsuid.optout"]
            .sudo()
            ._winback_remove(
                [bsuid, *partner.mapped("whatsapp_bsuid")],
                when=when,
            )
            and freed
        )
        if partner:
            partner.message_post(
                body=self.env._("WhatsApp: the customer resumed marketing messages.")
                if freed
                else self.env._(
                    "WhatsApp: resume of %(when)s UTC ignored: the customer "
                    "opted out after it.",
                    when=fields.Datetime.to_string(when),
                ),
                subtype_xmlid="mail.mt_note",
            )
        return True
