from odoo import api, models

# A Point of Sale order is a purchase once paid: paid, then posted when its
# session closes ("done"), or invoiced. A refund (a negative total, as Odoo
# tells them apart) is no purchase.
COUNTED_STATES = ("paid", "done", "invoiced")


def _is_purchase(order):
    return order.state in COUNTED_STATES and order.amount_total >= 0


class PosOrder(models.Model):
    _inherit = "pos.order"

    @api.model_create_multi
    def create(self, vals_list):
        orders = super().create(vals_list)
        orders._winback_purchases_changed(orders.filtered(_is_purchase))
        return orders

    def write(self, vals):
        if not {"state", "partner_id", "date_order", "company_id"} & set(vals):
            return super().write(vals)
        counted_before = self.filtered(_is_purchase)
        partners_before = counted_before.partner_id
        res = super().write(vals)
        counted = self.filtered(_is_purchase)
        # Paid or cancelled, or a paid order moved to another customer or
        # date (paid -> posted -> invoiced changes nothing: one purchase).
        changed = (counted - counted_before) | (counted_before - counted)
        if vals.keys() - {"state"}:
            changed |= counted
        if changed:
            changed._winback_recompute(partners_before)
        self._winback_purchases_changed(counted - counted_before, recompute=False)
        return res

    def _winback_purchases_changed(self, paid, recompute=True):
        """``paid`` orders just became purchases: their customers' last
        purchase and segment are brought up to date at once, and a running
        win-back enrollment of theirs ends (converted, with the revenue,
        within the attribution window). An order paid then invoiced is one
        purchase: only its payment counts."""
        paid = paid.filtered("partner_id")
        if not paid:
            return
        if recompute:
            paid._winback_recompute(paid.partner_id)
        self.env["winback.enroller"]._register_purchases(
            [
                order._winback_purchase()
                for order in paid
                if order.company_id.winback_count_pos_orders
            ]
        )

    def _winback_purchase(self):
        """This order as a purchase of ``winback.enroller``: its customer,
        company, date and untaxed amount, linked to it."""
        self.ensure_one()
        return {
            "partner": self.partner_id,
            "company": self.company_id,
            "date": self.date_order,
            "amount": self.amount_total - self.amount_tax,
            "currency": self.currency_id,
            "link": {"pos_order_id": self.id},
        }

    def _winback_recompute(self, partners):
        """Bring the win-back segment of these orders' customers (and of
        ``partners``, their customers before a change) up to date, in the
        orders' companies only."""
        Recompute = self.env["winback.segment.recompute"]
        for company in self.company_id:
            orders = self.filtered(lambda o, c=company: o.company_id == c)
            Recompute._recompute_partners(
                orders.partner_id | partners, companies=company
            )
