import math

from odoo import fields, models

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the normal law


def wilson_interval(successes, total, z=Z_95):
    """Wilson score interval of one proportion (without continuity correction)."""
    if not total:
        return 0.0, 0.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = (
        z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    )
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(x1, n1, x2, n2, z=Z_95):
    """95 % confidence interval of p1 - p2, Newcombe's hybrid score method.

    Newcombe (1998), "Interval estimation for the difference between
    independent proportions", method 10: built from the two Wilson intervals.
    Unlike the Wald interval it stays inside [-1, 1] and keeps its coverage on
    the small lists and low conversion rates win-back campaigns have.
    Returns (difference, low, high); (0, 0, 0) when a group is empty.
    """
    if not n1 or not n2:
        return 0.0, 0.0, 0.0
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, z)
    l2, u2 = wilson_interval(x2, n2, z)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return diff, low, high


class WinbackLift(models.Model):
    """Holdout comparison per campaign and segment: did the messages change
    anything? Conversion of treated vs holdout customers, absolute lift with a
    95 % confidence interval (Newcombe hybrid score) and incremental revenue."""

    _name = "winback.lift"
    _description = "Win-back Lift over Holdout"
    _auto = False
    _order = "campaign_id, segment_id"
    _rec_name = "campaign_id"

    campaign_id = fields.Many2one("winback.campaign", "Campaign", readonly=True)
    segment_id = fields.Many2one("winback.segment", "Segment", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    treated_count = fields.Integer("Treated", readonly=True)
    treated_converted = fields.Integer("Treated converted", readonly=True)
    treated_revenue = fields.Monetary(readonly=True)
    holdout_count = fields.Integer("Holdout", readonly=True)
    holdout_converted = fields.Integer("Holdout converted", readonly=True)
    holdout_revenue = fields.Monetary(readonly=True)
    treated_rate = fields.Float(
        "Treated conversion (%)", compute="_compute_lift", digits=(16, 2)
    )
    holdout_rate = fields.Float(
        "Holdout conversion (%)", compute="_compute_lift", digits=(16, 2)
    )
    lift = fields.Float(
        "Lift (points)",
        compute="_compute_lift",
        digits=(16, 2),
        help="Treated conversion minus holdout conversion, in percentage points.",
    )
    lift_low = fields.Float(
        "Lift 95% low",
        compute="_compute_lift",
        digits=(16, 2),
        help="Lower bound of the 95% confidence interval of the lift "
        "(Newcombe hybrid score method). Above 0: the campaign works.",
    )
    lift_high = fields.Float("Lift 95% high", compute="_compute_lift", digits=(16, 2))
    significant = fields.Boolean(
        "Significant",
        compute="_compute_lift",
        help="The 95% confidence interval of the lift excludes zero.",
    )
    incremental_revenue = fields.Monetary(
        compute="_compute_lift",
        help="(Treated revenue per customer - holdout revenue per customer) "
        "x treated customers: what the campaign earned beyond what those "
        "customers would have spent anyway.",
    )

    treated_replied = fields.Integer("Treated replied", readonly=True)
    cost = fields.Monetary(
        "Messaging cost",
        readonly=True,
        help="What Meta charged for the messages delivered, by the rate card.",
    )
    incremental_conversions = fields.Float(
        compute="_compute_lift",
        digits=(16, 1),
        help="Conversions the messages added: the lift x treated customers.",
    )
    discount = fields.Monetary(
        "Discount granted",
        compute="_compute_lift",
        help="What the campaign's coupons took off the customers' orders.",
    )
    cost_per_reply = fields.Monetary(
        "Cost per reply",
        compute="_compute_lift",
        help="Messaging cost / treated customers who replied.",
    )
    cost_per_conversion = fields.Monetary(
        "Cost per conversion",
        compute="_compute_lift",
        help="Messaging cost / treated customers who converted.",
    )
    cost_per_incremental = fields.Monetary(
        "Cost per incremental conversion",
        compute="_compute_lift",
        help="Messaging cost / conversions beyond the holdout group's rate; "
        "empty when the messages added none.",
    )
    roi = fields.Float(
        "ROI (%)",
        compute="_compute_lift",
        digits=(16, 1),
        help="(Incremental revenue - messaging cost - discount granted) / "
        "(messaging cost + discount granted), in percent.",
    )

    @property
    def _table_query(self):
        return """
            SELECT MIN(e.id) AS id,
                   e.campaign_id,
                   e.segment_id,
                   e.company_id,
                   c.currency_id,
                   COUNT(*) FILTER (WHERE NOT COALESCE(e.is_holdout, FALSE))
                       AS treated_count,
                   COUNT(*) FILTER (WHERE NOT COALESCE(e.is_holdout, FALSE)
                       AND (e.state = 'converted' OR e.order_id IS NOT NULL))
                       AS treated_converted,
                   COALESCE(SUM(e.revenue) FILTER (
                       WHERE NOT COALESCE(e.is_holdout, FALSE)), 0)
                       AS treated_revenue,
                   COUNT(*) FILTER (WHERE e.is_holdout) AS holdout_count,
                   COUNT(*) FILTER (WHERE e.is_holdout
                       AND (e.state = 'converted' OR e.order_id IS NOT NULL))
                       AS holdout_converted,
                   COALESCE(SUM(e.revenue) FILTER (WHERE e.is_holdout), 0)
                       AS holdout_revenue,
                   COUNT(*) FILTER (WHERE NOT COALESCE(e.is_holdout, FALSE)
                       AND (e.state = 'replied' OR EXISTS (
                           SELECT 1 FROM winback_message i
                            WHERE i.enrollment_id = e.id
                              AND i.direction = 'inbound')))
                       AS treated_replied,
                   COALESCE(SUM(mc.cost), 0) AS cost
              FROM winback_enrollment e
              JOIN res_company c ON c.id = e.company_id
         LEFT JOIN (
                SELECT enrollment_id, SUM(cost) AS cost
                  FROM winback_message
                 WHERE direction = 'outbound' AND cost > 0
              GROUP BY enrollment_id
              ) mc ON mc.enrollment_id = e.id
          GROUP BY e.campaign_id, e.segment_id, e.company_id, c.currency_id
        """

    def _compute_lift(self):
        Cost = self.env["winback.cost"]
        discounts = Cost._discount_granted(self.campaign_id.ids)
        for row in self:
            figures = self._lift_figures(
                row.treated_converted,
                row.treated_count,
                row.holdout_converted,
                row.holdout_count,
                row.treated_revenue,
                row.holdout_revenue,
            )
            discount = discounts.get((row.campaign_id.id, row.segment_id.id), 0.0)
            costs = Cost._figures(
                row.cost,
                row.treated_replied,
                row.treated_converted,
                figures["incremental_conversions"],
                figures["incremental_revenue"],
                discount,
            )
            costs["roi"] *= 100.0  # in percent
            row.update({**figures, **costs, "discount": discount})

    def _lift_figures(self, x1, n1, x2, n2, revenue1, revenue2):
        """Lift figures of a treated group (x1 conversions out of n1, revenue1)
        against a holdout group (x2 out of n2, revenue2). Rates in percent."""
        diff, low, high = newcombe_interval(x1, n1, x2, n2)
        per_treated = revenue1 / n1 if n1 else 0.0
        per_holdout = revenue2 / n2 if n2 else 0.0
        return {
            "treated_rate": 100.0 * x1 / n1 if n1 else 0.0,
            "holdout_rate": 100.0 * x2 / n2 if n2 else 0.0,
            "lift": 100.0 * diff,
            "lift_low": 100.0 * low,
            "lift_high": 100.0 * high,
            "significant": bool(n1 and n2 and (low > 0 or high < 0)),
            "incremental_revenue": (per_treated - per_holdout) * n1 if n2 else 0.0,
            "incremental_conversions": diff * n1 if n2 else 0.0,
        }
