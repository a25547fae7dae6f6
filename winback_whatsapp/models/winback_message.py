from odoo import fields, models

OPT_OUT_ERROR = "131050"

MESSAGE_STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("received", "Received"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class WinbackMessage(models.Model):
    _name = "winback.message"
    _description = "WhatsApp Message"
    _order = "id desc"
    _rec_name = "phone_e164"

    direction = fields.Selection(
        [("outbound", "Outbound"), ("inbound", "Inbound")],
        required=True,
        default="outbound",
    )
    enrollment_id = fields.Many2one(
        "winback.enrollment", index=True, ondelete="cascade"
    )
    step_id = fields.Many2one("winback.step", ondelete="set null")
    sequence_id = fields.Many2one(
        related="enrollment_id.sequence_id", store=True, index=True
    )
    account_id = fields.Many2one("winback.account", index=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", index=True)
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null")
    template_id = fields.Many2one("winback.template", ondelete="set null")
    phone_e164 = fields.Char("Number", index=True)
    body = fields.Text()
    wamid = fields.Char("WhatsApp message ID", index=True, copy=False)
    biz_opaque_callback_data = fields.Char(copy=False)
    context_wamid = fields.Char(
        "In reply to", help="For an inbound reply: the wamid it answers."
    )
    state = fields.Selection(
        MESSAGE_STATES, default="queued", required=True, index=True
    )
    error_code = fields.Char()
    error_message = fields.Text()
    attempt_count = fields.Integer(default=0)
    scheduled_at = fields.Datetime(
        "Send after", index=True, help="Not sent before this time."
    )
    sent_at = fields.Datetime()
    delivered_at = fields.Datetime()
    read_at = fields.Datetime()
    failed_at = fields.Datetime()
    received_at = fields.Datetime()

    def init(self):
        # At most one outbound message per (enrollment, step): the database
        # itself refuses a second one, whatever the number of workers.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS winback_message_enrollment_step_uniq
                ON winback_message (enrollment_id, step_id)
             WHERE direction = 'outbound'
            """
        )
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS winback_message_wamid_uniq
                ON winback_message (account_id, wamid)
             WHERE wamid IS NOT NULL
            """
        )

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _apply_error(self, code, text):
        """Apply the error policy to messages Meta (or the send) failed.

        ``code`` is Meta's error code as a string, ``text`` its title/details.
        """
        now = fields.Datetime.now()
        self.write(
            {
                "state": "failed",
                "error_code": code,
                "error_message": text,
                "failed_at": now,
            }
        )
        if code == OPT_OUT_ERROR:
            self.partner_id._winback_opt_out(
                self.env._("WhatsApp error 131050: the customer stopped marketing.")
            )
        return True
