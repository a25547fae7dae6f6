from odoo import api, fields, models


class WinbackReport(models.Model):
    _inherit = "winback.report"

    codes_issued = fields.Integer(
        "Codes issued",
        readonly=True,
        aggregator="sum",
        help="Customers who were given their own coupon code.",
    )
    codes_redeemed = fields.Integer(
        "Codes redeemed",
        readonly=True,
        aggregator="sum",
        help="Customers who redeemed their own coupon code.",
    )
    redemption_rate = fields.Float(
        "Redemption rate (%)",
        readonly=True,
        aggregator="sum",
        help="Codes redeemed / codes issued.",
    )
    coupon_converted = fields.Integer(
        "Converted by coupon",
        readonly=True,
        aggregator="sum",
        help="Conversions by a coupon redemption, within the attribution "
        "window or after it.",
    )
    window_converted = fields.Integer(
        "Converted in window",
        readonly=True,
        aggregator="sum",
        help="Conversions by a purchase within the attribution window, "
        "without the personal code.",
    )
    discount = fields.Monetary(
        "Discount granted",
        readonly=True,
        aggregator="sum",
        help="The discounts the personal codes gave, untaxed: the cost of the "
        "offer, next to the revenue.",
    )

    @property
    def _table_query(self):
        return f"""
            SELECT r.*,
                   CASE WHEN card.id IS NULL THEN 0 ELSE 1 END AS codes_issued,
                   CASE WHEN e.coupon_redeemed_at IS NULL THEN 0 ELSE 1 END
                       AS codes_redeemed,
                   0.0::float AS redemption_rate,
                   CASE WHEN r.converted = 1 AND e.conversion_kind = 'coupon'
                        THEN 1 ELSE 0 END AS coupon_converted,
                   CASE WHEN r.converted = 1
                             AND e.conversion_kind IS DISTINCT FROM 'coupon'
                        THEN 1 ELSE 0 END AS window_converted,
                   COALESCE(e.coupon_discount, 0) AS discount
              FROM ({super()._table_query}) r
              JOIN winback_enrollment e ON e.id = r.enrollment_id
         LEFT JOIN loyalty_card card ON card.winback_enrollment_id = e.id
        """

    @api.model
    def _rates(self):
        return {
            **super()._rates(),
            "redemption_rate": ("codes_redeemed", "codes_issued"),
        }
