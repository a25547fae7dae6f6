from datetime import timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import Form, new_test_user, tagged

from .test_send import WinbackSendCase


@tagged("post_install", "-at_install")
class TestComposerWindow(WinbackSendCase):
    """The WhatsApp composer of the partner form and WhatsApp's 24-hour
    customer service window, as a salesperson (real groups) sees them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = new_test_user(
            cls.env,
            "wb_reply_sales",
            groups="sales_team.group_sale_salesman,winback_whatsapp.group_winback_user",
        )

    def _inbound(self, when, partner=None):
        partner = partner or self.roberta
        return self.env["winback.message"].create(
            {
                "direction": "inbound",
                "partner_id": partner.id,
                "account_id": self.account.id,
                "phone_e164": partner.phone_sanitized,
                "body": "Until when is it valid?",
                "state": "received",
                "received_at": when,
            }
        )

    def _composer(self, partner=None):
        return Form(
            self.env["winback.composer"]
            .with_user(self.salesman)
            .with_context(default_partner_id=(partner or self.roberta).id)
        )

    def test_outside_the_window_no_free_text_box(self):
        """Regression: outside the window the composer offered a free-text
        box, then the client failed with "Invalid fields: Template"."""
        self._inbound(fields.Datetime.now() - timedelta(hours=30))
        form = self._composer()
        self.assertFalse(form.window_open)
        self.assertTrue(
            form._get_modifier("body", "invisible"),
            "outside the window there is no free-text box",
        )
        self.assertFalse(
            form._get_modifier("template_id", "required"),
            "no 'Invalid fields: Template' from the client: the server explains",
        )
