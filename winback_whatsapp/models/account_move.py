from datetime import datetime, time

from odoo import fields, models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        invoices = posted._winback_purchase_invoices()
        if invoices:
            invoices._winback_invoices_changed()
            self.env["winback.enroller"]._register_purchases(
                [
                    {
                        "partner": invoice.partner_id,
                        "company": invoice.company_id,
                        "date": invoice._winback_purchase_datetime(),
                        "amount": invoice.amount_untaxed,
                        "currency": invoice.currency_id,
                        "link": {"move_id": invoice.id},
                    }
                    for invoice in invoices
                    if invoice.company_id.winback_count_invoices
                ]
            )
        return posted

    def button_draft(self):
        invoices = self._winback_purchase_invoices()
        res = super().button_draft()
        invoices._winback_invoices_changed()
        return res

    def button_cancel(self):
        invoices = self._winback_purchase_invoices()
        res = super().button_cancel()
        invoices._winback_invoices_changed()
        return res

    def _winback_purchase_invoices(self):
        """The customer invoices among these moves that are purchases of
        their own: made from no order (an invoice of a sale order is that
        order's purchase)."""
        return self.filtered(
            lambda move: move.move_type == "out_invoice"
            and move.partner_id
            and not move._winback_from_order()
        )

    def _winback_from_order(self):
        """Whether an order produced this invoice (glue modules add their
        orders)."""
        self.ensure_one()
        return bool(self.sudo().invoice_line_ids.sale_line_ids)

    def _winback_purchase_datetime(self):
        """The moment of the purchase: now for an invoice dated today, the
        start of its invoice date otherwise."""
        self.ensure_one()
        now = fields.Datetime.now()
        if not self.invoice_date or self.invoice_date >= now.date():
            return now
        return datetime.combine(self.invoice_date, time.min)

    def _winback_invoices_changed(self):
        """Bring the win-back segment of these invoices' customers up to
        date, in the invoices' companies only."""
        Recompute = self.env["winback.segment.recompute"]
        for company in self.company_id:
            invoices = self.filtered(lambda m, c=company: m.company_id == c)
            Recompute._recompute_partners(invoices.partner_id, companies=company)
