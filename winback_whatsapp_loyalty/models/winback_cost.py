# Copyright 2026 winback_whatsapp contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import api, models


class WinbackCost(models.AbstractModel):
    _inherit = "winback.cost"

    @api.model
    def _discount_granted(self, campaign_ids):
        """What the personal codes took off the orders that redeemed them,
        per campaign and segment (untaxed, as the enrollments record it):
        the cost of the offer beside the cost of the messages in the ROI."""
        granted = super()._discount_granted(campaign_ids)
        if not campaign_ids:
            return granted
        self.env["winback.enrollment"].flush_model(
            ["campaign_id", "segment_id", "is_holdout", "coupon_discount"]
        )
        self.env.cr.execute(
            """
            SELECT campaign_id, segment_id, SUM(coupon_discount)
              FROM winback_enrollment
             WHERE campaign_id IN %s AND NOT is_holdout
               AND coupon_discount > 0
             GROUP BY campaign_id, segment_id
            """,
            (tuple(campaign_ids),),
        )
        for campaign_id, segment_id, discount in self.env.cr.fetchall():
            key = (campaign_id, segment_id)
            granted[key] = granted.get(key, 0.0) + discount
        return granted
