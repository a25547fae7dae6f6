"""The Point of Sale demo data (``make demo``), loaded as Odoo loads it: a
regular of the shop counter, last seen online 200 days ago, who bought at the
counter last week. The test database has no demo data, so the test loads the
module's demo file itself (and with it Odoo's furniture demo shop, as its
onboarding does), in its own transaction (rolled back)."""

from datetime import timedelta

from odoo import fields
from odoo.tests import TransactionCase, tagged
from odoo.tools import convert_file

MODULE = "winback_whatsapp_pos"
DEMO_FILE = "demo/winback_pos_demo.xml"


@tagged("post_install", "-at_install")
class TestPosDemoData(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._load_demo()
        cls.customer = cls.env.ref(f"{MODULE}.partner_pos_regular")

    @classmethod
    def _load_demo(cls):
        convert_file(cls.env, MODULE, DEMO_FILE, {}, mode="init", kind="demo")
        cls.env.flush_all()

    def test_in_store_customer_of_last_week_is_in_no_segment(self):
        customer = self.customer
        self.assertTrue(customer.mobile)
        self.assertTrue(customer.phone)
        order = self.env["pos.order"].search([("partner_id", "=", customer.id)])
        self.assertEqual(len(order), 1)
        self.assertIn(order.state, ("paid", "done"))
        self.assertEqual(order.config_id, self.env.ref("point_of_sale.pos_config_main"))
        self.assertGreater(order.amount_total, 0)
        today = fields.Date.context_today(customer)
        self.assertEqual(order.date_order.date(), today - timedelta(days=7))
        self.assertTrue(customer.sale_order_ids)
        self.assertEqual(customer.winback_last_order_date, order.date_order.date())
        self.assertEqual(customer.winback_days_inactive, 7)
        self.assertFalse(customer.winback_segment_id)
        # The nightly recompute agrees: the counter order is her last purchase.
        self.env["winback.segment.recompute"]._recompute_company(self.env.company)
        self.assertEqual(customer.winback_last_order_date, order.date_order.date())
        self.assertFalse(customer.winback_segment_id)
        segment_tags = self.env["winback.segment"].search([]).tag_id
        self.assertFalse(customer.category_id & segment_tags)

    def test_loading_again_adds_no_order(self):
        """The demo loader is idempotent: run again (an upgrade of the demo
        database), the customer still has one order at the counter."""
        self._load_demo()
        orders = self.env["pos.order"].search([("partner_id", "=", self.customer.id)])
        self.assertEqual(len(orders), 1)
