import json
import time
import uuid

from odoo import api, fields, models

ENROLLMENT_STATES = [
    ("holdout", "Holdout"),
    ("running", "Running"),
    ("replied", "Replied"),
    ("converted", "Converted"),
    ("opted_out", "Opted out"),
    ("dormant", "Dormant"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class WinbackEnrollment(models.Model):
    _name = "winback.enrollment"
    _description = "Win-back Enrollment"
    _order = "id desc"

    partner_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )
    sequence_id = fields.Many2one(
        "winback.sequence", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="sequence_id.company_id", store=True)
    segment_id = fields.Many2one(
        "winback.segment", "Segment at entry", readonly=True, ondelete="set null"
    )
    state = fields.Selection(
        ENROLLMENT_STATES, default="running", required=True, index=True
    )
    is_holdout = fields.Boolean(
        "Holdout group",
        readonly=True,
        help="In the control group: receives nothing, measured for lift.",
    )
    phone_e164 = fields.Char("WhatsApp number", readonly=True)
    step_id = fields.Many2one(
        "winback.step", "Next step", ondelete="set null", readonly=True
    )
    next_send_at = fields.Datetime("Next send", index=True, readonly=True)
    last_sent_at = fields.Datetime(readonly=True)
    outcome_date = fields.Datetime(readonly=True)
    order_id = fields.Many2one(
        "sale.order", "Converted order", readonly=True, ondelete="set null"
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    revenue = fields.Monetary(readonly=True)
    message_ids = fields.One2many("winback.message", "enrollment_id", "Messages")

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _register_orders(self, orders):
        """Purchase exit: confirmed ``orders`` convert the running enrollments
        of their customers within the attribution window."""
        return True

    def _queue_due_messages(self):
        """Queue the next step's message of running enrollments that are due,
        scheduled inside the sequence's send window in the customer's time
        zone."""
        return True

    def _on_message_sent(self, messages):
        """A step's message left: advance these enrollments to their next step
        (or, after the last step, start the grace period before dormancy)."""
        return True

    # WEBHOOK

    def _mark_replied(self, message):
        """The customer answered: leave the sequence, stop remaining steps."""
        running = self.filtered(lambda e: e.state == "running")
        if not running:
            return False
        running.write(
            {
                "state": "replied",
                "outcome_date": message.received_at or fields.Datetime.now(),
                "next_send_at": False,
            }
        )
        self.env["winback.message"].sudo().search(
            [
                ("enrollment_id", "in", running.ids),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
            ]
        ).write({"state": "cancelled"})
        return True

    def action_simulate_reply(self, text=None):
        """Simulator demo: build a Meta-shaped inbound payload answering the
        last message and run it through the webhook's processing."""
        self.ensure_one()
        account = self.sequence_id.account_id
        last = self.message_ids.filtered(
            lambda m: m.direction == "outbound" and m.wamid
        )[:1]
        number = (self.phone_e164 or self.partner_id.phone_sanitized or "").lstrip("+")
        msg = {
            "from": number,
            "id": f"wamid.SIM{uuid.uuid4().hex}",
            "timestamp": str(int(time.time())),
            "type": "text",
            "text": {"body": text or self.env._("Hello, I am interested!")},
        }
        if last:
            msg["context"] = {"from": account.phone_number_id, "id": last.wamid}
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": account.waba_id or "0",
                    "changes": [
                        {
                            "field": "messages",
                            "value": {
                                "messaging_product": "whatsapp",
                                "metadata": {
                                    "display_phone_number": number,
                                    "phone_number_id": account.phone_number_id,
                                },
                                "contacts": [
                                    {
                                        "profile": {"name": self.partner_id.name},
                                        "wa_id": number,
                                    }
                                ],
                                "messages": [msg],
                            },
                        }
                    ],
                }
            ],
        }
        event = (
            self.env["winback.webhook.event"]
            .sudo()
            ._store(account, json.dumps(payload))
        )
        event._process()
        return True
