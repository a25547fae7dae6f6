from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    winback_last_order_date = fields.Date(
        "Last purchase",
        company_dependent=True,
        readonly=True,
        help="Date of the last confirmed sale order, in the company's time zone.",
    )
    winback_segment_id = fields.Many2one(
        "winback.segment",
        "Win-back segment",
        company_dependent=True,
        readonly=True,
    )
    winback_dormant = fields.Boolean(
        "Dormant",
        copy=False,
        help="Stayed silent after the last call of a win-back sequence: never "
        "sent promotions again.",
    )
    winback_consent_date = fields.Datetime(
        "WhatsApp marketing consent",
        copy=False,
        help="When the customer agreed to receive marketing messages on WhatsApp.",
    )
    winback_consent_source = fields.Char(
        "Consent source",
        copy=False,
        help="Where the consent was collected (shop counter, web form, ...).",
    )
    winback_enrollment_ids = fields.One2many(
        "winback.enrollment", "partner_id", "Win-back enrollments"
    )

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _winback_opt_out(self, reason, numbers=None):
        """Take these partners' WhatsApp numbers (or ``numbers``, E.164) off
        every promotional send at once: blacklist, stop running enrollments,
        cancel queued messages. The reason is noted in the chatter."""
        numbers = set(numbers or []) | set(self.mapped("phone_sanitized")) - {False}
        if numbers:
            self.env["phone.blacklist"].sudo()._add(sorted(numbers), message=reason)
        partners = self
        if numbers:
            partners |= (
                self.env["res.partner"]
                .sudo()
                .with_context(active_test=False)
                .search([("phone_sanitized", "in", list(numbers))])
            )
        enrollments = (
            self.env["winback.enrollment"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", partners.ids),
                    ("state", "in", ("running", "holdout")),
                ]
            )
        )
        enrollments.write({"state": "opted_out", "outcome_date": fields.Datetime.now()})
        self.env["winback.message"].sudo().search(
            [
                ("partner_id", "in", partners.ids),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
            ]
        ).write({"state": "cancelled"})
        for partner in partners:
            partner.message_post(body=reason, subtype_xmlid="mail.mt_note")
        return partners
