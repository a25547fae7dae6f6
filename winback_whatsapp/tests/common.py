from datetime import datetime, time, timedelta

from odoo import fields
from odoo.tests import TransactionCase


class WinbackCase(TransactionCase):
    """Customers and orders created the way a shop would, in the main company
    (time zone UTC unless a test says otherwise)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company.partner_id.tz = "UTC"
        cls.product = cls.env["product.product"].create(
            {"name": "Espresso beans", "list_price": 25.0, "type": "consu"}
        )
        Segment = cls.env["winback.segment"]
        cls.lukewarm = cls.env.ref("winback_whatsapp.segment_lukewarm")
        cls.cooling = cls.env.ref("winback_whatsapp.segment_cooling")
        cls.cold = cls.env.ref("winback_whatsapp.segment_cold")
        cls.Segment = Segment

    @classmethod
    def _today(cls):
        return fields.Date.context_today(cls.env["res.partner"].with_context(tz="UTC"))

    @classmethod
    def _partner(cls, name, **vals):
        return cls.env["res.partner"].create({"name": name, **vals})

    @classmethod
    def _order(cls, partner, days_ago=0, confirm=True, company=None, amount=1):
        """A sale order placed ``days_ago`` days ago (at noon UTC)."""
        order = (
            cls.env["sale.order"]
            .with_company(company or cls.company)
            .create(
                {
                    "partner_id": partner.id,
                    "company_id": (company or cls.company).id,
                    "order_line": [
                        (
                            0,
                            0,
                            {"product_id": cls.product.id, "product_uom_qty": amount},
                        )
                    ],
                }
            )
        )
        if confirm:
            order.action_confirm()
        order.date_order = cls._days_ago(days_ago)
        return order

    @classmethod
    def _days_ago(cls, days):
        return datetime.combine(cls._today() - timedelta(days=days), time(12, 0))
