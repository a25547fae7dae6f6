from odoo.tests import TransactionCase


class WinbackDataMixin:
    """A campaign with two steps over two segments, built record by record so
    the report's figures can be recomputed independently from the tables."""

    @classmethod
    def _setup_campaign(cls):
        cls.company = cls.env.company
        cls.account = cls.env["winback.account"].create(
            {"name": "Report test account", "phone_number_id": "100200300"}
        )
        cls.template = cls.env["winback.template"].create(
            {
                "name": "winback_report_test",
                "account_id": cls.account.id,
                "language": "en",
                "status": "approved",
                "body": "Hello {{1}}, we have news for you. Reply STOP to opt out.",
            }
        )
        cls.segment_warm = cls.env["winback.segment"].create(
            {"name": "Report warm", "min_days": 60, "max_days": 89, "lever": "news"}
        )
        cls.segment_cold = cls.env["winback.segment"].create(
            {"name": "Report cold", "min_days": 180, "lever": "offer"}
        )
        cls.sequence = cls.env["winback.sequence"].create(
            {
                "name": "Report campaign",
                "account_id": cls.account.id,
                "segment_ids": [(6, 0, (cls.segment_warm | cls.segment_cold).ids)],
            }
        )
        cls.step1, cls.step2 = cls.env["winback.step"].create(
            [
                {
                    "sequence_id": cls.sequence.id,
                    "sequence": 1,
                    "name": "News",
                    "template_id": cls.template.id,
                },
                {
                    "sequence_id": cls.sequence.id,
                    "sequence": 2,
                    "name": "Last call",
                    "delay_days": 3,
                    "template_id": cls.template.id,
                    "is_last_call": True,
                },
            ]
        )
        cls.partner_count = 0

    @classmethod
    def _enroll(cls, segment, state, holdout=False, revenue=0.0, messages=()):
        """One enrollment in ``state``; ``messages`` lists (step, message state)."""
        cls.partner_count += 1
        partner = cls.env["res.partner"].create(
            {
                "name": f"Report customer {cls.partner_count}",
                "phone": f"+39 333 {1000000 + cls.partner_count}",
            }
        )
        enrollment = cls.env["winback.enrollment"].create(
            {
                "partner_id": partner.id,
                "sequence_id": cls.sequence.id,
                "segment_id": segment.id,
                "state": state,
                "is_holdout": holdout,
                "revenue": revenue,
            }
        )
        for step, msg_state in messages:
            cls.env["winback.message"].create(
                {
                    "direction": "outbound",
                    "enrollment_id": enrollment.id,
                    "step_id": step.id,
                    "partner_id": partner.id,
                    "account_id": cls.account.id,
                    "company_id": cls.company.id,
                    "template_id": cls.template.id,
                    "phone_e164": partner.phone.replace(" ", ""),
                    "state": msg_state,
                }
            )
        return enrollment


class WinbackReportCase(WinbackDataMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
