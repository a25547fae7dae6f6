from datetime import timedelta

from odoo.tests import tagged

from odoo.addons.winback_whatsapp.tests.common import run_job

from .common import WinbackPosCase


@tagged("post_install", "-at_install")
class TestPosPurchases(WinbackPosCase):
    """Paid Point of Sale orders are purchases, dated at the order, counted
    once whether invoiced or not."""

    def _recompute(self):
        run_job(self, "winback.segment.recompute", "_cron_recompute")

    def test_in_store_customer_of_last_week_is_in_no_segment(self):
        """A regular who last ordered online 200 days ago but bought at the
        counter last week is not lapsed: at once when paying, and after the
        nightly recompute."""
        regular = self._partner("In-store regular")
        self._order(regular, days_ago=200)
        self._recompute()
        self.assertEqual(regular.winback_segment_id, self.cold)
        self._pos_order(regular, days_ago=7)
        self.assertFalse(regular.winback_segment_id)
        self.assertEqual(regular.winback_days_inactive, 7)
        self.assertNotIn(self.cold.tag_id, regular.category_id)
        self._recompute()
        self.assertFalse(regular.winback_segment_id)
        self.assertEqual(
            regular.winback_last_order_date, self._today() - timedelta(days=7)
        )
        self.assertNotIn(
            regular,
            self.env["res.partner"].search(
                [("winback_segment_id", "!=", False), ("id", "=", regular.id)]
            ),
        )

    def test_only_paid_orders_count(self):
        """A counter customer is segmented by their paid orders; an unpaid or
        cancelled order is no purchase."""
        counter = self._partner("Counter only")
        self._pos_order(counter, days_ago=100)
        self.assertEqual(counter.winback_segment_id, self.cooling)
        unpaid = self._pos_order(counter, days_ago=3, pay=False)
        self._recompute()
        self.assertEqual(counter.winback_segment_id, self.cooling)
        unpaid.action_pos_order_cancel()
        self.assertEqual(unpaid.state, "cancel")
        self._recompute()
        self.assertEqual(counter.winback_days_inactive, 100)

    def test_a_refund_is_no_purchase(self):
        """Refunding at the counter today does not make a lapsed customer
        active, nor convert their win-back."""
        customer = self._partner("Brings it back")
        order = self._pos_order(customer, days_ago=200)
        self.assertEqual(customer.winback_segment_id, self.cold)
        enrollment = self.env["winback.enrollment"].create(
            {
                "partner_id": customer.id,
                "campaign_id": self.campaign.id,
                "segment_id": self.segment_cold.id,
            }
        )
        refund = self.env["pos.order"].browse(order.refund()["res_id"])
        self.assertLess(refund.amount_total, 0)
        self._pay(refund)
        self.assertEqual(customer.winback_segment_id, self.cold)
        self.assertEqual(enrollment.state, "running")
        self._recompute()
        self.assertEqual(customer.winback_days_inactive, 200)

    def test_paying_a_pos_order_converts_a_running_enrollment(self):
        enrollment = self._enroll(self.segment_cold, "running")
        order = self._pos_order(enrollment.partner_id, pay=False, quantity=3)
        self.assertEqual(enrollment.state, "running")
        self._pay(order)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.pos_order_id, order)
        self.assertEqual(enrollment.revenue, 75.0)
        self.assertEqual(self.campaign.converted_count, 1)
        self.assertFalse(enrollment.partner_id.winback_segment_id)

    def test_pos_order_invoiced_later_counts_once(self):
        """An order paid at the counter 100 days ago and invoiced today is one
        purchase, 100 days ago; its invoice converts nothing again."""
        customer = self._partner("Wants an invoice")
        order = self._pos_order(customer, days_ago=100, quantity=2)
        self.assertEqual(customer.winback_segment_id, self.cooling)
        enrollment = self._enroll(self.segment_warm, "running")
        enrollment.partner_id.parent_id = customer
        order.action_pos_order_invoice()
        self.assertEqual(order.state, "invoiced")
        invoice = order.account_move
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(enrollment.state, "running")
        # The accountant dates the invoice today: still the order's purchase.
        invoice.button_draft()
        invoice.invoice_date = self._today()
        invoice.action_post()
        self.assertEqual(enrollment.state, "running")
        self.assertFalse(enrollment.move_id)
        self.assertEqual(customer.winback_segment_id, self.cooling)
        self._recompute()
        self.assertEqual(customer.winback_segment_id, self.cooling)
        self.assertEqual(
            customer.winback_last_order_date, self._today() - timedelta(days=100)
        )
        # Its invoice is no purchase of its own: without the Point of Sale
        # source, the customer has bought nothing.
        self.company.winback_count_pos_orders = False
        self._recompute()
        self.assertFalse(customer.winback_last_order_date)
        self.assertFalse(customer.winback_segment_id)

    def test_pos_source_is_chosen_per_company(self):
        """A company that does not count its Point of Sale segments in-store
        customers by their other purchases only."""
        self.assertTrue(self.company.winback_count_pos_orders)
        regular = self._partner("In-store regular")
        self._order(regular, days_ago=200)
        self._pos_order(regular, days_ago=7)
        self.assertFalse(regular.winback_segment_id)
        settings = self.env["res.config.settings"].create({})
        settings.winback_count_pos_orders = False
        settings.execute()
        self.assertFalse(self.company.winback_count_pos_orders)
        self._recompute()
        self.assertEqual(regular.winback_segment_id, self.cold)
        enrollment = self._enroll(self.segment_cold, "running")
        self._pos_order(enrollment.partner_id)
        self.assertEqual(enrollment.state, "running")
