from odoo import models


class SaleOrder(models.Model):
    _inherit = "sale.order"

    def action_confirm(self):
        res = super().action_confirm()
        self._winback_orders_changed()
        self.env["winback.enroller"]._register_orders(
            self.filtered(lambda o: o.company_id.winback_count_sale_orders)
        )
        return res

    def _action_cancel(self):
        res = super()._action_cancel()
        self._winback_orders_changed()
        return res

    def _winback_orders_changed(self):
        """Bring the win-back segment of these orders' customers up to date,
        in the orders' companies only."""
        for company in self.company_id:
            orders = self.filtered(lambda o, c=company: o.company_id == c)
            self.env["winback.segment.recompute"]._recompute_partners(
                orders.partner_id, companies=company
            )
