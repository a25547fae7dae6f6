from odoo import api, fields, models

from .winback_segment import DEFAULT_NAMES, MODES

# The fields that shape the default segments.
THRESHOLD_FIELDS = {
    "winback_segment_mode",
    "winback_lukewarm_days",
    "winback_cooling_days",
    "winback_cold_days",
    "winback_lukewarm_factor",
    "winback_cooling_factor",
    "winback_cold_factor",
}


class ResCompany(models.Model):
    _inherit = "res.company"

    winback_lukewarm_days = fields.Integer(
        "Lukewarm after (days)",
        default=60,
        help="Default start of the first win-back segment: days since the last "
        "confirmed purchase.",
    )
    winback_cooling_days = fields.Integer(
        "Cooling after (days)",
        default=90,
        help="Default start of the second win-back segment.",
    )
    winback_cold_days = fields.Integer(
        "Cold after (days)",
        default=180,
        help="Default start of the open-ended last win-back segment.",
    )
    winback_segment_mode = fields.Selection(
        MODES,
        "Segment customers by",
        required=True,
        default="days",
        help="Days since last purchase: the day thresholds, the same for every "
        "customer. Overdue factor: each customer by their own rhythm (days "
        "since the last purchase divided by their typical interval); "
        "customers with fewer than 3 purchase days still by the day "
        "thresholds.",
    )
    winback_lukewarm_factor = fields.Float(
        "Lukewarm from (× rhythm)",
        digits=(16, 2),
        default=1.5,
        help="Overdue-factor mode: start of the first win-back segment.",
    )
    winback_cooling_factor = fields.Float(
        "Cooling from (× rhythm)",
        digits=(16, 2),
        default=2.5,
        help="Overdue-factor mode: start of the second win-back segment.",
    )
    winback_cold_factor = fields.Float(
        "Cold from (× rhythm)",
        digits=(16, 2),
        default=4.0,
        help="Overdue-factor mode: start of the open-ended last win-back segment.",
    )
    winback_grace_days = fields.Integer(
        "Grace period (days)",
        default=7,
        help="Default for new campaigns: days to wait after the last call before "
        "a silent customer becomes dormant.",
    )
    winback_cooldown_days = fields.Integer(
        "Cooldown (days)",
        default=14,
        help="Default for new campaigns: customers contacted by any win-back "
        "within this many days are left out.",
    )
    winback_reply_user_id = fields.Many2one(
        "res.users",
        "Win-back replies of customers without a salesperson",
        domain="[('share', '=', False)]",
        help="Gets the Win-back reply activity when the customer has no "
        "salesperson and the campaign answered has no responsible (or an "
        "archived one, such as OdooBot). Empty: the administrator.",
    )
    winback_count_sale_orders = fields.Boolean(
        "Count sale orders",
        default=True,
        help="A confirmed sale order (eCommerce orders included) is a purchase "
        "for the win-back segments. An invoice made from it counts once, "
        "dated at the order.",
    )
    winback_count_invoices = fields.Boolean(
        "Count invoices",
        default=True,
        help="A posted customer invoice that no sale order or Point of Sale "
        "order produced is a purchase for the win-back segments, dated at its "
        "invoice date.",
    )

    _sql_constraints = [
        (
            "winback_thresholds_ordered",
            "CHECK(winback_lukewarm_days > 0 "
            "AND winback_cooling_days > winback_lukewarm_days "
            "AND winback_cold_days > winback_cooling_days)",
            "Win-back thresholds must be positive and increasing: "
            "lukewarm < cooling < cold.",
        ),
        (
            "winback_factors_ordered",
            "CHECK(winback_lukewarm_factor > 0 "
            "AND winback_cooling_factor > winback_lukewarm_factor "
            "AND winback_cold_factor > winback_cooling_factor)",
            "Win-back overdue factors must be positive and increasing: "
            "lukewarm < cooling < cold.",
        ),
        (
            "winback_grace_cooldown_positive",
            "CHECK(winback_grace_days >= 0 AND winback_cooldown_days >= 0)",
            "Win-back grace and cooldown days cannot be negative.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        companies = super().create(vals_list)
        companies._winback_create_default_segments()
        return companies

    def write(self, vals):
        sources_changed = any(
            company[name] != bool(vals[name])
            for name in self._winback_purchase_source_fields() & set(vals)
            for company in self
        )
        res = super().write(vals)
        if THRESHOLD_FIELDS & set(vals):
            self._winback_apply_thresholds()
        if sources_changed:
            self.env["winback.segment.recompute"]._purchase_sources_changed()
        return res

    @api.model
    def _winback_purchase_source_fields(self):
        """The fields that choose a company's purchase sources (glue modules
        add theirs)."""
        return {"winback_count_sale_orders", "winback_count_invoices"}

    def _winback_apply_thresholds(self):
        """Settings' mode and thresholds move the company's three segments
        (when it has exactly three, the default layout)."""
        Segment = self.env["winback.segment"].sudo()
        for company in self:
            segments = Segment.search([("company_id", "=", company.id)])
            if len(segments) != 3:
                continue
            # Widen from the top down, so no intermediate state overlaps.
            with self.env.cr.savepoint():
                segments.with_context(winback_skip_overlap=True).write(
                    {"min_days": 0, "max_days": 0, "min_factor": 0, "max_factor": 0}
                )
                for segment, vals in zip(
                    segments, company._winback_default_ranges(), strict=True
                ):
                    segment.with_context(winback_skip_overlap=True).write(vals)
                segments._check_ranges()

    def _winback_default_ranges(self):
        """The mode and ranges of the three default segments, from the
        settings."""
        self.ensure_one()
        days = [
            self.winback_lukewarm_days,
            self.winback_cooling_days,
            self.winback_cold_days,
        ]
        factors = [
            self.winback_lukewarm_factor,
            self.winback_cooling_factor,
            self.winback_cold_factor,
        ]
        return [
            {
                "mode": self.winback_segment_mode,
                "min_days": days[index],
                "max_days": days[index + 1] - 1 if index < 2 else 0,
                "min_factor": factors[index],
                "max_factor": factors[index + 1] if index < 2 else 0,
            }
            for index in range(3)
        ]

    def _winback_create_default_segments(self):
        """Every company starts with the three default segments, from its
        default mode and thresholds (60, 90 and 180+ days without a confirmed
        purchase, or 1.5, 2.5 and 4+ times the customer's rhythm in
        overdue-factor mode, unless set otherwise in the settings). Their
        names are English, and translated in every installed language."""
        Segment = self.env["winback.segment"].sudo().with_context(lang="en_US")
        for company in self:
            if Segment.with_context(active_test=False).search_count(
                [("company_id", "=", company.id)], limit=1
            ):
                continue
            segments = Segment.create(
                [
                    {
                        **ranges,
                        "name": Segment.env._(DEFAULT_NAMES[lever]),
                        "lever": lever,
                        "company_id": company.id,
                    }
                    for lever, ranges in zip(
                        ("news", "benefit", "offer"),
                        company._winback_default_ranges(),
                        strict=True,
                    )
                ]
            )
            segments._translate_names()
