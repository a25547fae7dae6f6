from odoo import api, fields, models
from odoo.tools import SQL


class CrmLead(models.Model):
    _inherit = "crm.lead"

    winback_enrollment_id = fields.Many2one(
        "winback.enrollment",
        "Win-back enrollment",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        copy=False,
        help="The win-back the customer answered as interested. Won, the "
        "opportunity converts it, with its expected revenue.",
    )

    def init(self):
        # One opportunity per enrollment, whichever webhook deliveries of the
        # same tap are processed at the same time: the database refuses the
        # second one.
        self.env.cr.execute(
            SQL(
                """
                CREATE UNIQUE INDEX IF NOT EXISTS crm_lead_winback_enrollment_uniq
                    ON crm_lead (winback_enrollment_id)
                 WHERE winback_enrollment_id IS NOT NULL
                """
            )
        )

    @api.model_create_multi
    def create(self, vals_list):
        leads = super().create(vals_list)
        leads._winback_register_won()
        return leads

    def write(self, vals):
        result = super().write(vals)
        if "stage_id" in vals:
            self._winback_register_won()
        return result

    def _winback_register_won(self):
        """Won opportunities of a win-back convert it (the conversion path of
        purchases: ``winback.enroller``)."""
        won = self.filtered(
            lambda lead: lead.winback_enrollment_id and lead.stage_id.is_won
        )
        if won:
            self.env["winback.enroller"]._register_won_leads(won)
