from odoo import api, models


class ResCompany(models.Model):
    _inherit = "res.company"

    @api.model_create_multi
    def create(self, vals_list):
        companies = super().create(vals_list)
        companies._winback_create_default_segments()
        return companies

    def _winback_create_default_segments(self):
        """Every company starts with the three default segments: 60, 90 and
        180+ days without a confirmed purchase."""
        Segment = self.env["winback.segment"].sudo()
        for company in self:
            if Segment.with_context(active_test=False).search_count(
                [("company_id", "=", company.id)], limit=1
            ):
                continue
            Segment.create(
                [
                    {
                        "name": self.env._("Lukewarm"),
                        "min_days": 60,
                        "max_days": 89,
                        "lever": "news",
                        "company_id": company.id,
                    },
                    {
                        "name": self.env._("Cooling"),
                        "min_days": 90,
                        "max_days": 179,
                        "lever": "benefit",
                        "company_id": company.id,
                    },
                    {
                        "name": self.env._("Cold"),
                        "min_days": 180,
                        "max_days": 0,
                        "lever": "offer",
                        "company_id": company.id,
                    },
                ]
            )
