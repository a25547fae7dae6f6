from datetime import timedelta

from odoo import api, fields, models

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

    # Demo data loader (demo/winback_pos_demo.xml), not business logic.

    @api.model
    def _winback_demo_in_store_customer(self, partner_ids, days_ago=7):
        """Demo data: the customer ``partner_ids`` bought at the counter of
        the Point of Sale demo shop ``days_ago`` days ago, a paid order, so the
        demo shows a regular in-store customer in no win-back segment.

        The order goes through Odoo's own path: a session of the shop (Odoo's
        furniture demo shop, loaded as its onboarding does when absent), an
        order with a line, paid in cash with the payment wizard, the session
        closed if this opened it. Loading it again changes nothing: a customer
        with a paid order at the counter already gets none."""
        partner = self.env["res.partner"].browse(partner_ids)
        if self.search_count(
            [("partner_id", "in", partner.ids), ("state", "in", COUNTED_STATES)]
        ):
            return self.browse()
        config = self.env.ref("point_of_sale.pos_config_main", False)
        if not config:
            self.env["pos.config"].load_onboarding_furniture_scenario()
            config = self.env.ref("point_of_sale.pos_config_main")
        cash = config.payment_method_ids.filtered("is_cash_count")[:1]
        product = self.env.ref("point_of_sale.wall_shelf")
        when = fields.Datetime.now().replace(
            hour=11, minute=0, second=0, microsecond=0
        ) - timedelta(days=days_ago)
        session = config.current_session_id
        opened = not session
        if opened:
            session = self.env["pos.session"].create(
                {
                    "config_id": config.id,
                    "user_id": self.env.ref("base.user_admin").id,
                    "start_at": when - timedelta(hours=2),
                }
            )
        price = product.lst_price
        order = self.create(
            {
                "company_id": config.company_id.id,
                "session_id": session.id,
                "partner_id": partner.id,
                "date_order": when,
                "lines": [
                    fields.Command.create(
                        {
                            "product_id": product.id,
                            "full_product_name": product.display_name,
                            "qty": 1,
                            "price_unit": price,
                            "price_subtotal": price,
                            "price_subtotal_incl": price,
                        }
                    )
                ],
                "amount_total": price,
                "amount_tax": 0.0,
                "amount_paid": 0.0,
                "amount_return": 0.0,
            }
        )
        context = {"active_ids": order.ids, "active_id": order.id}
        payment = (
            self.env["pos.make.payment"]
            .with_context(**context)
            .create({"amount": order.amount_total, "payment_method_id": cash.id})
        )
        payment.with_context(**context).check()
        if opened:
            session.post_closing_cash_details(session.cash_register_balance_end)
            session.update_closing_control_state_session("")
            session.action_pos_session_closing_control()
        return order
