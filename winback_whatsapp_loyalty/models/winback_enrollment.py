import logging

from odoo import api, fields, models

_logger = logging.getLogger(__name__)


class WinbackEnrollment(models.Model):
    _inherit = "winback.enrollment"

    loyalty_card_ids = fields.One2many(
        "loyalty.card", "winback_enrollment_id", "Personal coupons", readonly=True
    )
    loyalty_card_id = fields.Many2one(
        "loyalty.card",
        "Personal coupon",
        compute="_compute_loyalty_card_id",
        search="_search_loyalty_card_id",
        help="The customer's own code of the campaign's coupon program, issued "
        "when the message with the coupon code was queued.",
    )
    coupon_expiration_date = fields.Date(
        "Coupon valid until",
        related="loyalty_card_id.expiration_date",
        help="The deadline the message states: the code is refused after it.",
    )
    coupon_redeemed_at = fields.Datetime(
        "Coupon redeemed on",
        readonly=True,
        help="When the customer redeemed their personal code.",
    )
    coupon_discount = fields.Monetary(
        "Discount granted",
        readonly=True,
        help="The discount the personal code gave on the order that redeemed "
        "it, untaxed.",
    )
    conversion_kind = fields.Selection(
        [
            ("window", "Bought within the attribution window"),
            ("coupon", "Redeemed the personal coupon"),
        ],
        "Converted by",
        readonly=True,
        help="A coupon redemption converts the enrollment whenever it happens, "
        "even after the attribution window.",
    )

    @api.depends("loyalty_card_ids")
    def _compute_loyalty_card_id(self):
        for enrollment in self:
            enrollment.loyalty_card_id = enrollment.loyalty_card_ids[:1]

    def _search_loyalty_card_id(self, operator, value):
        return [("loyalty_card_ids", operator, value)]

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _end(self, state, outcome_date=None, **values):
        if state == "converted":
            values.setdefault("conversion_kind", "window")
        return super()._end(state, outcome_date=outcome_date, **values)

    def _queue_claimed(self):
        """The customers whose step uses the coupon code get their own card
        first, so that the message renders it."""
        failed = self._issue_coupons()
        return super(WinbackEnrollment, self - failed)._queue_claimed()

    def _needs_coupon(self):
        """These enrollments (treated, of a campaign with a coupon program)
        whose next step's template uses the coupon code placeholder."""
        return self.filtered(
            lambda e: not e.is_holdout
            and e.campaign_id.loyalty_program_id
            and "coupon_code" in e.step_id.template_id.param_ids.mapped("source")
        )

    def _issue_coupons(self):
        """Give each of these enrollments that needs one its own card of the
        campaign's coupon program, expiring at the deadline its message
        states, without Odoo's coupon e-mail (WhatsApp is the channel). A
        card is issued once per enrollment (the database refuses a second);
        an enrollment whose card cannot be made fails alone. Returns the
        failed enrollments."""
        todo = self._needs_coupon()
        if not todo:
            return self.browse()
        Card = (
            self.env["loyalty.card"]
            .sudo()
            .with_context(loyalty_no_mail=True, tracking_disable=True)
        )
        issued = Card.search([("winback_enrollment_id", "in", todo.ids)])
        todo -= issued.winback_enrollment_id
        vals_list = [enrollment._coupon_values() for enrollment in todo]
        failed = self.browse()
        try:
            with self.env.cr.savepoint():
                cards = Card.create(vals_list)
        except Exception:  # noqa: BLE001 - find the bad rows one by one
            cards = Card.browse()
            for vals in vals_list:
                enrollment = self.browse(vals["winback_enrollment_id"])
                try:
                    with self.env.cr.savepoint():
                        cards |= Card.create(vals)
                except Exception as error:  # noqa: BLE001 - on the record
                    enrollment._fail_queue(error)
                    failed |= enrollment
        if cards:
            self.env["loyalty.history"].sudo().create(
                [
                    {
                        "card_id": card.id,
                        "description": self.env._(
                            "WhatsApp win-back: %(campaign)s",
                            campaign=card.winback_enrollment_id.campaign_id.name,
                        ),
                        "issued": card.points,
                    }
                    for card in cards
                ]
            )
            _logger.info("Win-back: %s personal coupons issued", len(cards))
        return failed

    def _coupon_values(self):
        """The card of this enrollment, as Odoo's coupon generation makes
        one for a selected customer, valid until the message's deadline."""
        self.ensure_one()
        campaign = self.campaign_id
        program = campaign.loyalty_program_id
        generator = (
            self.env["loyalty.generate.wizard"]
            .sudo()
            .new(
                {
                    "program_id": program.id,
                    "mode": "selected",
                    "points_granted": min(
                        program.reward_ids.mapped("required_points") or [1]
                    ),
                    "valid_until": self.env["winback.template"]._deadline_date(
                        self, campaign
                    ),
                }
            )
        )
        return {
            **generator._get_coupon_values(self.partner_id),
            "winback_enrollment_id": self.id,
        }

    def _redeem_coupon(self, purchase):
        """The customer redeemed their personal code on ``purchase`` (as
        ``winback.enroller._register_purchases`` takes them, with the
        ``discount`` it gave): the enrollment converts, attributed to the
        coupon, whenever it happens. Converted already by the same purchase,
        it is attributed to the coupon; by an earlier one, it stays so."""
        self.ensure_one()
        company = purchase["company"]
        date = purchase["date"]

        def convert(amount):
            return purchase["currency"]._convert(
                amount, self.currency_id, company, date.date()
            )

        values = {
            "coupon_redeemed_at": date,
            "coupon_discount": convert(purchase.get("discount", 0.0)),
        }
        if self.state == "converted":
            link = purchase["link"]
            if all(self[name].id == value for name, value in link.items()):
                values["conversion_kind"] = "coupon"
            self.write(values)
            return
        self._end(
            "converted",
            outcome_date=date,
            revenue=convert(purchase["amount"]),
            conversion_kind="coupon",
            **purchase["link"],
            **values,
        )
