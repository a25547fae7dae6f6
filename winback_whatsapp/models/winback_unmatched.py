from odoo import api, models
from odoo.exceptions import UserError


class WinbackUnmatched(models.AbstractModel):
    """Replies from numbers (or WhatsApp user IDs, for customers who hide
    their number) that matched no customer, linked by hand: the
    *Create partner* and *Link to partner* buttons of *Unmatched replies*
    (``winback.message``), with the user's rights. Once linked, a reply is
    applied as the webhook applies any other (``winback.inbound``)."""

    _name = "winback.unmatched"
    _description = "WhatsApp unmatched replies"

    @api.model
    def _create_partner(self, messages):
        """Unmatched reply: create a partner with this number (as the user,
        with the user's rights) and file the message in its chatter."""
        self._check_unmatched(messages, partner_required=False)
        for message in messages:
            if message.partner_id:
                raise UserError(
                    self.env._(
                        "The reply from %(number)s is already linked to %(partner)s.",
                        number=message.phone_e164 or message.whatsapp_bsuid,
                        partner=message.partner_id.display_name,
                    )
                )
            message.partner_id = self.env["res.partner"].create(
                {
                    "name": message.profile_name
                    or message.phone_e164
                    or message.whatsapp_username
                    or message.whatsapp_bsuid,
                    "mobile": message.phone_e164,
                    "whatsapp_username": message.whatsapp_username,
                }
            )
        return self._link_partner(messages)

    @api.model
    def _link_partner(self, messages):
        """Unmatched reply linked by hand to the chosen partner: file it in
        the partner's chatter and apply it (keywords, enrollment, activity),
        once, whatever the number of clicks. The partner keeps the sender's
        WhatsApp user ID, so that their next message finds them."""
        self._check_unmatched(messages, partner_required=True)
        for message in messages:
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
        messages.flush_recordset(["handled"])
        self.env.cr.execute(
            "UPDATE winback_message SET handled = TRUE"
            " WHERE id = ANY(%s) AND handled IS NOT TRUE RETURNING id",
            [messages.ids],
        )
        claimed = messages.browse(row[0] for row in self.env.cr.fetchall())
        messages.invalidate_recordset(["handled"])
        if claimed != messages:
            raise UserError(self.env._("This reply has already been handled."))
        for message in claimed:
            # The customer chosen is the one behind this WhatsApp user ID.
            if message.whatsapp_bsuid:
                message.partner_id.sudo()._winback_record_bsuid(
                    message.whatsapp_bsuid, message.whatsapp_username
                )
            # The inputs are checked: the webhook's own processing applies it.
            self.env["winback.inbound"].sudo()._handle(message)
        return True

    @api.model
    def _check_unmatched(self, messages, partner_required):
        for message in messages:
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
