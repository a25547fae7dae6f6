from odoo import api, models

from ..tools.wa_number import wa_id_to_e164
from ..tools.webhook_parser import (
    CALL_PERMISSION,
    CONTACTS,
    DELETED,
    EDIT,
    FLOW,
    INTERACTIVE_ERROR,
    LOCATION,
    ORDER,
    REACTION,
    REACTION_REMOVED,
    SYSTEM,
    UNSUPPORTED,
)


class WinbackInboundText(models.AbstractModel):
    """How each type of inbound WhatsApp message reads, in the user's
    language: the parser (tools/webhook_parser.py) gives a kind and values
    (an order's items, a place, a Flow's fields...), this words them as the
    plain text stored on the message and shown in the chatter."""

    _name = "winback.inbound.text"
    _description = "WhatsApp inbound message text"

    @api.model
    def _body(self, event, original=None):
        """The text of an inbound message as shown to users; ``original``:
        the message it names (answers, edits, deletes), if known."""
        wording = {
            REACTION: self._word_reaction,
            REACTION_REMOVED: self._word_reaction_removed,
            UNSUPPORTED: self._word_unsupported,
            ORDER: self._word_order,
            CONTACTS: self._word_contacts,
            LOCATION: self._word_location,
            FLOW: self._word_flow,
            CALL_PERMISSION: self._word_call_permission,
            INTERACTIVE_ERROR: self._word_interactive_error,
            EDIT: self._word_edit,
            DELETED: self._word_deleted,
            SYSTEM: self._word_system,
        }.get(event.text_kind)
        text = wording(event, original) if wording else event.text
        return (text or "").strip()

    def _word_reaction(self, event, original):
        return self.env._("Reaction: %s", event.text)

    def _word_reaction_removed(self, event, original):
        return self.env._("The customer removed their reaction.")

    def _word_unsupported(self, event, original):
        return self.env._("[Unsupported message type: %s]", event.text)

    def _word_order(self, event, original):
        lines = [self.env._("Order:")]
        lines += [
            self.env._(
                "%(quantity)s × %(product)s at %(price)s %(currency)s",
                quantity=item.quantity,
                product=item.product_retailer_id,
                price=item.item_price,
                currency=item.currency,
            ).strip()
            for item in event.details
        ]
        if event.text:
            lines.append(self.env._("Note: %s", event.text))
        return "\n".join(lines)

    def _word_contacts(self, event, original):
        lines = [self.env._("Shared contacts:")]
        for contact in event.details:
            name = contact.name or self.env._("(no name)")
            phones = ", ".join(contact.phones)
            lines.append(f"{name}: {phones}" if phones else name)
        return "\n".join(lines)

    def _word_location(self, event, original):
        lines = [self.env._("Location:")]
        for place in event.details:
            lines += [place.name, place.address, place.map_url]
            if place.latitude and place.longitude:
                lines.append(
                    self.env._(
                        "Latitude %(latitude)s, longitude %(longitude)s",
                        latitude=place.latitude,
                        longitude=place.longitude,
                    )
                )
            if place.url:
                lines.append(place.url)
        return "\n".join(line for line in lines if line)

    def _word_flow(self, event, original):
        lines = [self.env._("Form submitted:")]
        lines += [f"{key}: {value}" for key, value in event.details]
        return "\n".join(lines)

    def _word_call_permission(self, event, original):
        if event.text == "accept":
            return self.env._("The customer accepts WhatsApp calls.")
        if event.text == "reject":
            return self.env._("The customer declines WhatsApp calls.")
        return self.env._("Answer to the call permission request: %s", event.text)

    def _word_interactive_error(self, event, original):
        if event.text:
            return self.env._(
                "[Interactive reply WhatsApp could not deliver: %s]", event.text
            )
        return self.env._("[Interactive reply WhatsApp could not deliver]")

    def _word_edit(self, event, original):
        if event.text:
            return self.env._("Edited message: %s", event.text)
        return self.env._("The customer edited a message.")

    def _word_deleted(self, event, original):
        if original and original.body:
            return self.env._("The customer deleted their message: %s", original.body)
        return self.env._("The customer deleted a message.")

    def _word_system(self, event, original):
        new_number = wa_id_to_e164(event.new_wa_id)
        if new_number:
            return self.env._(
                "The customer changed their WhatsApp number to %s.", new_number
            )
        return self.env._("WhatsApp notice: %s", event.text or event.subtype)
