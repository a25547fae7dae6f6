from odoo import api, fields, models
from odoo.exceptions import ValidationError

# Meta's pricing categories, as the ``pricing`` object of a status names
# them (``category``), and as its rate cards list them.
RATE_CATEGORIES = [
    ("marketing", "Marketing"),
    ("marketing_lite", "Marketing (MM Lite)"),
    ("utility", "Utility"),
    ("authentication", "Authentication"),
    ("authentication_international", "Authentication (international)"),
    ("service", "Service"),
]


class WinbackRate(models.Model):
    """Meta's rate card: what one delivered message costs, by the
    recipient's market (their country calling code) and the message's
    pricing category, from a date on.

    Meta prices most countries alone and groups the others into markets
    ("Rest of Western Europe", "Rest of Africa"...): a country of such a
    group has its own line with the group's name as market and the group's
    price. A line without a country is the price of every country the card
    does not list (Meta's "Other" market). When Meta changes its prices, a
    new line with a later date takes over from that date: the cost of a
    message is the price of the line in force when it was delivered.

    Kept up to date by hand or by importing Meta's card as CSV (Import
    records, columns as the list view shows them)."""

    _name = "winback.rate"
    _description = "WhatsApp rate card line"
    _order = "date_start desc, market, category"
    _rec_name = "market"

    market = fields.Char(
        required=True,
        help="Meta's market for this price: a country, or a group such as "
        "Rest of Western Europe, or Other.",
    )
    country_id = fields.Many2one(
        "res.country",
        index=True,
        ondelete="cascade",
        help="The recipients' country, by their number's calling code. "
        "Empty: every country the card does not list (Meta's Other market).",
    )
    category = fields.Selection(
        RATE_CATEGORIES,
        required=True,
        default="marketing",
        help="Meta's pricing category of the message (the template's "
        "category, as the status callback reports it).",
    )
    price = fields.Float(
        required=True,
        digits="WhatsApp Rate",
        help="What Meta charges for one delivered message of this category "
        "to this market.",
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        default=lambda self: self.env.ref("base.USD"),
        help="The currency of the card: Meta publishes it in USD, EUR, GBP, "
        "INR, IDR and AUD; the one your WhatsApp Business Account is billed "
        "in. Costs are converted into the company's currency on delivery.",
    )
    date_start = fields.Date(
        "Effective from",
        required=True,
        default=fields.Date.context_today,
        help="The price applies to messages delivered from this day on, "
        "until a line of the same market and category with a later date.",
    )
    source = fields.Char(
        help="Where the figure comes from: Meta's rate card and its date, "
        "or the file it was imported from.",
    )
    active = fields.Boolean(default=True)

    # One price per country (or Other, NULL), category and date: the
    # database refuses a second one (PostgreSQL 15's NULLS NOT DISTINCT; on
    # an older server the constraint is not created and _check_unique
    # alone refuses it).
    _sql_constraints = [
        (
            "country_category_date_uniq",
            "UNIQUE NULLS NOT DISTINCT (country_id, category, date_start)",
            "This market already has a price of this category from this date: "
            "change that line, or give this one another date.",
        ),
        (
            "price_positive",
            "CHECK (price >= 0)",
            "A price cannot be negative.",
        ),
    ]

    @api.constrains("country_id", "category", "date_start")
    def _check_unique(self):
        for rate in self:
            if self.search_count(
                [
                    ("id", "!=", rate.id),
                    ("country_id", "=", rate.country_id.id),
                    ("category", "=", rate.category),
                    ("date_start", "=", rate.date_start),
                    ("active", "in", (True, False)),
                ]
            ):
                raise ValidationError(
                    self.env._(
                        "%(market)s already has a %(category)s price from "
                        "%(date)s: change that line, or give this one "
                        "another date.",
                        market=rate.country_id.name or self.env._("Other"),
                        category=dict(
                            self._fields["category"]._description_selection(self.env)
                        )[rate.category],
                        date=rate.date_start,
                    )
                )
