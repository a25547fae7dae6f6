from odoo import api, fields, models

# Rates shown by the pivot, list and graph views: (rate, numerator, denominator).
# They are ratios of sums, recomputed for every group by read_group; averaging
# per-row ratios would weigh small groups like large ones.
RATES = {
    "reply_rate": ("replied", "treated"),
    "conversion_rate": ("converted", "enrolled"),
    "delivery_rate": ("delivered", "sent"),
}
# Costs per outcome, ratios of sums in the same way: (numerator, denominator).
COST_RATIOS = {
    "cost_per_reply": ("cost", "replied"),
    "cost_per_conversion": ("cost", "converted"),
}


class WinbackReport(models.Model):
    """Win-back results, one row per enrollment.

    The grain is the enrollment, so every measure is additive: a pivot by
    segment, campaign, holdout flag or company sums rows without counting a
    customer twice. "Step" is the last step whose message left (empty for the
    holdout group, who receive nothing).
    """

    _name = "winback.report"
    _description = "Win-back Results"
    _auto = False
    _order = "enrolled_on desc"
    _rec_name = "campaign_id"

    enrollment_id = fields.Many2one("winback.enrollment", readonly=True)
    partner_id = fields.Many2one("res.partner", "Customer", readonly=True)
    campaign_id = fields.Many2one("winback.campaign", "Campaign", readonly=True)
    segment_id = fields.Many2one("winback.segment", "Segment", readonly=True)
    step_id = fields.Many2one("winback.step", "Last step sent", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    is_holdout = fields.Boolean("Holdout group", readonly=True)
    audience = fields.Selection(
        [("treated", "Treated"), ("holdout", "Holdout")],
        "Group",
        readonly=True,
        help="Treated: customers who receive the messages. Holdout: the random "
        "control group who receive nothing, to measure the lift.",
    )
    state = fields.Selection(
        lambda self: self.env["winback.enrollment"]._fields["state"].selection,
        readonly=True,
    )
    enrolled_on = fields.Datetime("Enrolled on", readonly=True)
    enrolled = fields.Integer(readonly=True, aggregator="sum")
    treated = fields.Integer(
        "Treated",
        readonly=True,
        aggregator="sum",
        help="Enrolled customers outside the holdout group.",
    )
    sent = fields.Integer("Messages sent", readonly=True, aggregator="sum")
    delivered = fields.Integer("Messages delivered", readonly=True, aggregator="sum")
    read_count = fields.Integer("Messages read", readonly=True, aggregator="sum")
    replied = fields.Integer(readonly=True, aggregator="sum")
    converted = fields.Integer(readonly=True, aggregator="sum")
    opted_out = fields.Integer("Opted out", readonly=True, aggregator="sum")
    reply_intent = fields.Selection(
        lambda self: self.env["winback.enrollment"]._fields["reply_intent"].selection,
        "Reply intent",
        readonly=True,
    )
    interested = fields.Integer(
        readonly=True,
        aggregator="sum",
        help="Customers who said they are interested: an opportunity each.",
    )
    snoozed = fields.Integer(
        readonly=True, aggregator="sum", help="Customers who answered Not now."
    )
    stopped = fields.Integer(
        readonly=True, aggregator="sum", help="Customers whose reply opted out."
    )
    question = fields.Integer(
        readonly=True,
        aggregator="sum",
        help="Replies of no other intent: a to-do for the salesperson.",
    )
    revenue = fields.Monetary(readonly=True, aggregator="sum")
    reply_rate = fields.Float(
        "Reply rate (%)",
        readonly=True,
        aggregator="sum",
        help="Replied / treated customers (the holdout group gets no message).",
    )
    conversion_rate = fields.Float(
        "Conversion rate (%)",
        readonly=True,
        aggregator="sum",
        help="Converted / enrolled customers.",
    )
    cost = fields.Monetary(
        "Messaging cost",
        readonly=True,
        aggregator="sum",
        help="What Meta charged for the customer's messages delivered, by the "
        "rate card.",
    )
    cost_per_reply = fields.Monetary(
        "Cost per reply",
        readonly=True,
        aggregator="sum",
        help="Messaging cost / customers who replied, in each group.",
    )
    cost_per_conversion = fields.Monetary(
        "Cost per conversion",
        readonly=True,
        aggregator="sum",
        help="Messaging cost / customers who converted, in each group.",
    )
    delivery_rate = fields.Float(
        "Delivery rate (%)",
        readonly=True,
        aggregator="sum",
        help="Delivered / sent messages.",
    )

    @property
    def _table_query(self):
        return """
            SELECT e.id AS id,
                   e.id AS enrollment_id,
                   e.partner_id,
                   e.campaign_id,
                   e.segment_id,
                   last_step.step_id,
                   e.company_id,
                   c.currency_id,
                   COALESCE(e.is_holdout, FALSE) AS is_holdout,
                   CASE WHEN COALESCE(e.is_holdout, FALSE) THEN 'holdout'
                        ELSE 'treated' END AS audience,
                   e.state,
                   e.create_date AS enrolled_on,
                   1 AS enrolled,
                   CASE WHEN COALESCE(e.is_holdout, FALSE) THEN 0 ELSE 1 END
                       AS treated,
                   COALESCE(m.sent, 0) AS sent,
                   COALESCE(m.delivered, 0) AS delivered,
                   COALESCE(m.read, 0) AS read_count,
                   CASE WHEN e.state IN ('replied', 'snoozed') THEN 1 ELSE 0 END
                       AS replied,
                   CASE WHEN e.state = 'converted' OR e.order_id IS NOT NULL
                        THEN 1 ELSE 0 END AS converted,
                   CASE WHEN e.state = 'opted_out' THEN 1 ELSE 0 END AS opted_out,
                   e.reply_intent,
                   CASE WHEN e.reply_intent = 'interested' THEN 1 ELSE 0 END
                       AS interested,
                   CASE WHEN e.reply_intent = 'not_now' THEN 1 ELSE 0 END
                       AS snoozed,
                   CASE WHEN e.reply_intent = 'stop' THEN 1 ELSE 0 END AS stopped,
                   CASE WHEN e.reply_intent = 'question' THEN 1 ELSE 0 END
                       AS question,
                   COALESCE(e.revenue, 0) AS revenue,
                   0.0::float AS reply_rate,
                   0.0::float AS conversion_rate,
                   0.0::float AS delivery_rate,
                   COALESCE(m.cost, 0) AS cost,
                   0.0::numeric AS cost_per_reply,
                   0.0::numeric AS cost_per_conversion
              FROM winback_enrollment e
              JOIN res_company c ON c.id = e.company_id
         LEFT JOIN (
                SELECT enrollment_id,
                       COUNT(*) FILTER (
                           WHERE sent_at IS NOT NULL
                              OR state IN ('sent', 'delivered', 'read')) AS sent,
                       COUNT(*) FILTER (
                           WHERE delivered_at IS NOT NULL
                              OR state IN ('delivered', 'read')) AS delivered,
                       COUNT(*) FILTER (
                           WHERE read_at IS NOT NULL OR state = 'read') AS read,
                       SUM(cost) AS cost
                  FROM winback_message
                 WHERE direction = 'outbound' AND enrollment_id IS NOT NULL
              GROUP BY enrollment_id
              ) m ON m.enrollment_id = e.id
         LEFT JOIN LATERAL (
                SELECT msg.step_id
                  FROM winback_message msg
                  JOIN winback_step s ON s.id = msg.step_id
                 WHERE msg.enrollment_id = e.id
                   AND msg.direction = 'outbound'
                   AND (msg.sent_at IS NOT NULL
                        OR msg.state IN ('sent', 'delivered', 'read'))
              ORDER BY s.sequence DESC, s.id DESC
                 LIMIT 1
              ) last_step ON TRUE
        """

    @api.model
    def _rates(self):
        """``{rate: (numerator, denominator)}`` of the rates recomputed for
        every group (RATES; modules extending the report add theirs)."""
        return dict(RATES)

    @api.model
    def read_group(
        self, domain, fields, groupby, offset=0, limit=None, orderby=False, lazy=True
    ):
        """Rates are ratios of the group's sums, not sums or averages of rows.
        Grouped by group, the treated customers come before the holdout."""
        rates = self._rates()
        names = {spec.split(":")[0].split("(")[0].strip() for spec in fields}
        ratios = {**rates, **COST_RATIOS}
        wanted = [rate for rate in ratios if rate in names]
        extra = []
        for rate in wanted:
            for part in ratios[rate]:
                if part not in names:
                    extra.append(f"{part}:sum")
                    names.add(part)
        specs = [groupby] if isinstance(groupby, str) else list(groupby or [])
        specs = specs[:1] if lazy else specs
        if not orderby and "audience" in specs:
            # Treated before holdout, as they are read: a pivot's columns.
            orderby = ", ".join(
                f"{spec} desc" if spec == "audience" else spec for spec in specs
            )
        groups = super().read_group(
            domain, list(fields) + extra, groupby, offset, limit, orderby, lazy
        )
        for group in groups:
            for rate in wanted:
                numerator, denominator = ratios[rate]
                total = group.get(denominator) or 0
                scale = 100.0 if rate in rates else 1.0
                group[rate] = (
                    scale * (group.get(numerator) or 0) / total if total else 0.0
                )
        return groups
