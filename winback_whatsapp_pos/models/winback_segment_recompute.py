from odoo import api, models
from odoo.tools import SQL

from .pos_order import COUNTED_STATES


class WinbackSegmentRecompute(models.AbstractModel):
    _inherit = "winback.segment.recompute"

    @api.model
    def _purchase_sources(self, company):
        """Paid Point of Sale orders (paid, posted at the session's closing,
        or invoiced), dated at the order; refunds are no purchase."""
        sources = super()._purchase_sources(company)
        if company.winback_count_pos_orders:
            tz = company.partner_id.tz or "UTC"
            sources.append(
                {
                    "table": SQL.identifier("pos_order"),
                    "date": SQL(
                        "timezone(%s, src.date_order AT TIME ZONE 'UTC')::date", tz
                    ),
                    "counted": SQL(
                        "src.state IN %s AND src.amount_total >= 0", COUNTED_STATES
                    ),
                }
            )
        return sources

    @api.model
    def _invoice_from_order_sql(self):
        """An invoice of a Point of Sale order is that order's purchase."""
        return [
            *super()._invoice_from_order_sql(),
            SQL("EXISTS (SELECT 1 FROM pos_order po WHERE po.account_move = src.id)"),
        ]
