from odoo import models


class AccountMove(models.Model):
    _inherit = "account.move"

    def _winback_from_order(self):
        """An invoice of a Point of Sale order is that order's purchase."""
        return super()._winback_from_order() or bool(self.sudo().pos_order_ids)
