from odoo import fields, models


class WinbackSequence(models.Model):
    _name = "winback.sequence"
    _description = "Win-back Sequence"
    _inherit = ["mail.thread"]
    _order = "id desc"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    account_id = fields.Many2one(
        "winback.account",
        "WhatsApp account",
        required=True,
        check_company=True,
        domain="[('company_id', '=', company_id)]",
    )
    segment_ids = fields.Many2many(
        "winback.segment",
        string="Segments",
        check_company=True,
        domain="[('company_id', '=', company_id)]",
    )
    step_ids = fields.One2many("winback.step", "sequence_id", "Steps", copy=True)
    state = fields.Selection(
        [
            ("draft", "Draft"),
            ("running", "Running"),
            ("paused", "Paused"),
            ("done", "Done"),
        ],
        default="draft",
        required=True,
        copy=False,
        tracking=True,
    )
    user_id = fields.Many2one(
        "res.users",
        "Responsible",
        default=lambda self: self.env.user,
        tracking=True,
        help="Gets the follow-up activities: replies without a salesperson, "
        "template errors.",
    )
    # Send window, in the customer's time zone.
    window_start = fields.Float("Send from", default=9.0, required=True)
    window_end = fields.Float("Send until", default=19.0, required=True)
    window_monday = fields.Boolean("Monday", default=True)
    window_tuesday = fields.Boolean("Tuesday", default=True)
    window_wednesday = fields.Boolean("Wednesday", default=True)
    window_thursday = fields.Boolean("Thursday", default=True)
    window_friday = fields.Boolean("Friday", default=True)
    window_saturday = fields.Boolean("Saturday", default=True)
    window_sunday = fields.Boolean("Sunday", default=False)
    daily_cap = fields.Integer(
        default=200,
        help="At most this many new customers enter the sequence each day, so "
        "sends are staggered over several days. 0 means no cap.",
    )
    cooldown_days = fields.Integer(
        default=14,
        help="Customers contacted by any win-back within this many days are "
        "left out.",
    )
    reentry_days = fields.Integer(
        "Re-entry after (days)",
        default=90,
        help="A customer who bought and lapsed again may re-enter after this "
        "many days from their previous enrollment.",
    )
    holdout_percent = fields.Float(
        "Holdout (%)",
        default=10.0,
        help="A random control group that receives nothing, kept to measure lift.",
    )
    holdout_seed = fields.Integer(
        default=0, help="Seed of the holdout draw; the draw is reproducible."
    )
    attribution_days = fields.Integer(
        default=14,
        help="A confirmed order within this many days of the last message counts "
        "as a conversion.",
    )
    grace_days = fields.Integer(
        default=7,
        help="Days to wait after the last step before a silent customer becomes "
        "dormant.",
    )
    coupon_code = fields.Char(help="Value of the coupon code placeholder.")
    deadline_days = fields.Integer(
        default=14,
        help="The deadline placeholder is the enrollment date plus this many days.",
    )
    enrollment_ids = fields.One2many("winback.enrollment", "sequence_id")
