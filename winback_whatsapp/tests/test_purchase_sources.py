from datetime import timedelta

from odoo.tests import new_test_user, tagged

from odoo.addons.winback_whatsapp.models import winback_segment_recompute

from .common import WinbackCase, WinbackDataMixin, run_job


@tagged("post_install", "-at_install")
class TestPurchaseSources(WinbackDataMixin, WinbackCase):
    """A purchase is a confirmed sale order or a posted customer invoice that
    no order produced, each counted once, per company's settings."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()

    def _recompute(self):
        run_job(self, "winback.segment.recompute", "_cron_recompute")

    def _invoice(self, partner, days_ago=0, post=True, quantity=1):
        """A customer invoice dated ``days_ago`` days ago, made from no order."""
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": partner.id,
                "invoice_date": self._today() - timedelta(days=days_ago),
                "invoice_line_ids": [
                    (
                        0,
                        0,
                        {
                            "product_id": self.product.id,
                            "quantity": quantity,
                            "price_unit": 25.0,
                        },
                    )
                ],
            }
        )
        if post:
            invoice.action_post()
        return invoice

    def test_invoice_only_customer_is_segmented(self):
        """A customer who only ever got invoices is segmented by the last
        posted one, at once when it is posted and in the nightly run; drafts
        and credit notes are no purchase, a cancelled invoice no longer
        counts."""
        customer = self._partner("Invoiced only")
        self._invoice(customer, days_ago=200)
        self.assertEqual(customer.winback_segment_id, self.cold)
        latest = self._invoice(customer, days_ago=100)
        self.assertEqual(customer.winback_segment_id, self.cooling)
        self.assertEqual(customer.winback_last_order_date, latest.invoice_date)
        self._invoice(customer, days_ago=10, post=False)
        self._recompute()
        self.assertEqual(customer.winback_segment_id, self.cooling)
        self.assertEqual(customer.winback_days_inactive, 100)
        self.assertIn(self.cooling.tag_id, customer.category_id)

        latest.button_cancel()
        self.assertEqual(customer.winback_segment_id, self.cold)
        self.assertEqual(customer.winback_days_inactive, 200)

        refunded = self._partner("Only a credit note")
        refund = self._invoice(refunded, days_ago=100, post=False)
        refund.move_type = "out_refund"
        refund.action_post()
        self._recompute()
        self.assertFalse(refunded.winback_last_order_date)
        self.assertFalse(refunded.winback_segment_id)

    def test_invoice_of_a_contact_counts_for_the_company(self):
        company = self._partner("Bar Centrale", is_company=True)
        contact = self._partner("Accounts", parent_id=company.id)
        self._invoice(contact, days_ago=70)
        self.assertEqual(company.winback_segment_id, self.lukewarm)
        self.assertEqual(contact.winback_segment_id, self.lukewarm)

    def test_invoice_from_a_sale_order_counts_once_at_the_order(self):
        """An order placed 100 days ago and invoiced today is one purchase,
        100 days ago: the customer stays Cooling."""
        customer = self._partner("Ordered, invoiced later")
        order = self._order(customer, days_ago=100)
        self._recompute()
        self.assertEqual(customer.winback_segment_id, self.cooling)
        invoice = order._create_invoices()
        invoice.invoice_date = self._today()
        invoice.action_post()
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(customer.winback_segment_id, self.cooling)
        self._recompute()
        self.assertEqual(customer.winback_segment_id, self.cooling)
        self.assertEqual(
            customer.winback_last_order_date, self._today() - timedelta(days=100)
        )

    def test_posting_an_invoice_converts_a_running_enrollment(self):
        enrollment = self._enroll(self.segment_cold, "running")
        invoice = self._invoice(enrollment.partner_id, quantity=4)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.move_id, invoice)
        self.assertFalse(enrollment.order_id)
        self.assertEqual(enrollment.revenue, 100.0)
        self.assertEqual(self.campaign.converted_count, 1)

    def test_invoice_of_a_sale_order_does_not_convert_twice(self):
        """The order converted the enrollment; its invoice is the same
        purchase and leaves the conversion as it is."""
        enrollment = self._enroll(self.segment_cold, "running")
        order = self._order(enrollment.partner_id, amount=2)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.order_id, order)
        second = self._enroll(self.segment_cold, "running")
        second.partner_id = enrollment.partner_id.copy()
        second.partner_id.parent_id = enrollment.partner_id
        order._create_invoices().action_post()
        self.assertEqual(second.state, "running")
        self.assertFalse(enrollment.move_id)
        self.assertEqual(enrollment.revenue, order.amount_untaxed)

    def test_sources_are_chosen_per_company(self):
        """Each company counts its own sources; both are on by default, and
        switching one recomputes everyone in full, at once, in the
        background."""
        other = self.env["res.company"].create({"name": "Second shop"})
        self.assertTrue(other.winback_count_sale_orders)
        self.assertTrue(other.winback_count_invoices)
        self.assertTrue(self.company.winback_count_sale_orders)
        self.assertTrue(self.company.winback_count_invoices)
        other_cold = self.Segment.search(
            [("company_id", "=", other.id), ("min_days", "=", 180)]
        )
        self.env.user.company_ids |= other

        invoiced = self._partner("Invoiced customer")
        self._invoice(invoiced, days_ago=200)
        ordered = self._partner("Ordering customer")
        self._order(ordered, days_ago=200)
        self._order(ordered, days_ago=200, company=other)
        self._recompute()
        self.assertEqual(invoiced.winback_segment_id, self.cold)
        self.assertEqual(ordered.winback_segment_id, self.cold)
        self.assertEqual(ordered.with_company(other).winback_segment_id, other_cold)

        manager = new_test_user(
            self.env,
            login="winback_sources_manager",
            groups="base.group_system,winback_whatsapp.group_winback_manager",
            company_ids=[(6, 0, (self.company | other).ids)],
        )
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_recompute")
        Trigger = self.env["ir.cron.trigger"]
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        # Saving the settings unchanged recomputes nothing.
        self.env["res.config.settings"].with_user(manager).create({}).execute()
        self.assertEqual(Trigger.search([("cron_id", "=", cron.id)]), triggers)
        settings = (
            self.env["res.config.settings"]
            .with_user(manager)
            .with_company(other)
            .create({})
        )
        settings.winback_count_sale_orders = False
        settings.execute()
        self.assertFalse(other.winback_count_sale_orders)
        self.assertTrue(self.company.winback_count_sale_orders)
        cron = self.env.ref("winback_whatsapp.ir_cron_winback_recompute")
        self.assertTrue(self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]))
        self.assertFalse(
            self.env["ir.config_parameter"].get_param(
                winback_segment_recompute.PARAM_LAST_FULL
            )
        )
        self.company.winback_count_invoices = False
        self._recompute()
        self.assertFalse(ordered.with_company(other).winback_segment_id)
        self.assertEqual(ordered.winback_segment_id, self.cold)
        self.assertFalse(invoiced.winback_segment_id)
        self.assertFalse(invoiced.winback_last_order_date)

        # A company that counts no invoices is not converted by one.
        enrollment = self._enroll(self.segment_cold, "running")
        self._invoice(enrollment.partner_id)
        self.assertEqual(enrollment.state, "running")
