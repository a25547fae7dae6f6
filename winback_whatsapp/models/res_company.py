from odoo import fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    winback_lukewarm_days = fields.Integer(
        "Lukewarm after (days)",
        default=60,
        help="Default start of the first win-back segment: days since the last "
        "confirmed purchase.",
    )
    winback_cooling_days = fields.Integer(
        "Cooling after (days)",
        default=90,
        help="Default start of the second win-back segment.",
    )
    winback_cold_days = fields.Integer(
        "Cold after (days)",
        default=180,
        help="Default start of the open-ended last win-back segment.",
    )
    winback_grace_days = fields.Integer(
        "Grace period (days)",
        default=7,
        help="Default for new campaigns: days to wait after the last call before "
        "a silent customer becomes dormant.",
    )
    winback_cooldown_days = fields.Integer(
        "Cooldown (days)",
        default=14,
        help="Default for new campaigns: customers contacted by any win-back "
        "within this many days are left out.",
    )

    _sql_constraints = [
        (
            "winback_thresholds_ordered",
            "CHECK(winback_lukewarm_days > 0 "
            "AND winback_cooling_days > winback_lukewarm_days "
            "AND winback_cold_days > winback_cooling_days)",
            "Win-back thresholds must be positive and increasing: "
            "lukewarm < cooling < cold.",
        ),
        (
            "winback_grace_cooldown_positive",
            "CHECK(winback_grace_days >= 0 AND winback_cooldown_days >= 0)",
            "Win-back grace and cooldown days cannot be negative.",
        ),
    ]
