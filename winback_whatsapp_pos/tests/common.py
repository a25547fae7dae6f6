from odoo.addons.winback_whatsapp.tests.common import WinbackCase, WinbackDataMixin


class WinbackPosCase(WinbackDataMixin, WinbackCase):
    """The report campaign, and a shop counter: a Point of Sale with an open
    session and a cash payment method."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        Journal = cls.env["account.journal"]
        company_domain = [("company_id", "=", cls.company.id)]
        cls.pos_config = cls.env["pos.config"].create(
            {
                "name": "Shop counter",
                "journal_id": Journal.search(
                    [*company_domain, ("type", "=", "sale")], limit=1
                ).id,
                "invoice_journal_id": Journal.search(
                    [*company_domain, ("type", "=", "sale")], limit=1
                ).id,
            }
        )
        cls.cash = cls.env["pos.payment.method"].create(
            {
                "name": "Cash",
                "journal_id": Journal.search(
                    [*company_domain, ("type", "=", "cash")], limit=1
                ).id,
                "company_id": cls.company.id,
            }
        )
        cls.pos_config.payment_method_ids = [(4, cls.cash.id)]
        cls.product.available_in_pos = True
        cls.pos_config.open_ui()
        cls.session = cls.pos_config.current_session_id

    def _pos_order(self, partner, days_ago=0, pay=True, quantity=1):
        """An order at the counter ``days_ago`` days ago, paid in cash."""
        order = self.env["pos.order"].create(
            {
                "company_id": self.company.id,
                "session_id": self.session.id,
                "partner_id": partner.id,
                "date_order": self._days_ago(days_ago),
                "lines": [
                    (
                        0,
                        0,
                        {
                            "name": "Counter sale",
                            "product_id": self.product.id,
                            "price_unit": 25.0,
                            "qty": quantity,
                            "price_subtotal": 25.0 * quantity,
                            "price_subtotal_incl": 25.0 * quantity,
                        },
                    )
                ],
                "amount_total": 25.0 * quantity,
                "amount_tax": 0.0,
                "amount_paid": 0.0,
                "amount_return": 0.0,
            }
        )
        if pay:
            self._pay(order)
        return order

    def _pay(self, order):
        context = {"active_ids": order.ids, "active_id": order.id}
        payment = (
            self.env["pos.make.payment"]
            .with_context(**context)
            .create({"amount": order.amount_total, "payment_method_id": self.cash.id})
        )
        payment.with_context(**context).check()
        self.assertEqual(order.state, "paid")
