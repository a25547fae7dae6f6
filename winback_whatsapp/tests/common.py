import hashlib
import hmac
import json
from datetime import datetime, time, timedelta
from urllib.parse import urlsplit

from odoo import api, fields, models
from odoo.tests import TransactionCase
from odoo.tools import SQL

from .cloud_api_stub import CloudApiStub


def run_job(case, model, method, *args, **kwargs):
    """Run ``env[model].method(*args, **kwargs)`` the way ``ir.cron`` runs a
    job: in a cursor of its own, which commits at the job's checkpoints.

    Inside a test that cursor is Odoo's ``TestCursor`` on the test's
    transaction (the registry's test mode, as Odoo's own cron tests use): the
    job's commits are real commit points of the code, turned into savepoints
    that the test rolls back at its end. Returns the job's result, with
    records read back in the test's environment."""
    registry = case.registry
    entered = registry.test_cr is None
    if entered:
        registry.enter_test_mode(case.cr)
    try:
        case.env.flush_all()
        with registry.cursor() as cr:
            env = api.Environment(cr, case.env.uid, dict(case.env.context))
            result = getattr(env[model], method)(*args, **kwargs)
            if isinstance(result, models.BaseModel):
                result = case.env[result._name].browse(result.ids)
    finally:
        if entered:
            registry.leave_test_mode()
    case.env.invalidate_all()
    return result


def start_cloud_api_stub(cls):
    """Meta's Cloud API played by a local server, for the test class; the
    local server is not Meta, so a system administrator lists it as an
    allowed API host. Returns the stub."""
    stub = CloudApiStub().start()
    cls.addClassCleanup(stub.stop)
    cls.env["ir.config_parameter"].set_param(
        "winback_whatsapp.api_host_allowlist", urlsplit(stub.base_url).netloc
    )
    return stub


def post_webhook(case, url, payload, secret, process=True):
    """A webhook call as Meta makes it, over real HTTP: the JSON body signed
    with the app secret (``X-Hub-Signature-256``), answered 200; then, unless
    ``process`` is False, a run of the processing cron the call wakes (in a
    cursor of its own, as ir.cron runs it). Returns the response."""
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    response = case.url_open(
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Hub-Signature-256": "sha256=" + digest,
        },
    )
    case.assertEqual(response.status_code, 200)
    if process:
        run_job(case, "winback.webhook.event", "_cron_process")
    return response


class WinbackCase(TransactionCase):
    """Customers and orders created the way a shop would, in the main company
    (time zone UTC unless a test says otherwise)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env.company
        cls.company.partner_id.tz = "UTC"
        cls.product = cls.env["product.product"].create(
            {"name": "Espresso beans", "list_price": 25.0, "type": "consu"}
        )
        Segment = cls.env["winback.segment"]
        cls.lukewarm = cls.env.ref("winback_whatsapp.segment_lukewarm")
        cls.cooling = cls.env.ref("winback_whatsapp.segment_cooling")
        cls.cold = cls.env.ref("winback_whatsapp.segment_cold")
        cls.Segment = Segment

    @classmethod
    def _today(cls):
        return fields.Date.context_today(cls.env["res.partner"].with_context(tz="UTC"))

    @classmethod
    def _partner(cls, name, **vals):
        return cls.env["res.partner"].create({"name": name, **vals})

    @classmethod
    def _order(cls, partner, days_ago=0, confirm=True, company=None, amount=1):
        """A sale order placed ``days_ago`` days ago (at noon UTC)."""
        order = (
            cls.env["sale.order"]
            .with_company(company or cls.company)
            .create(
                {
                    "partner_id": partner.id,
                    "company_id": (company or cls.company).id,
                    "order_line": [
                        (
                            0,
                            0,
                            {"product_id": cls.product.id, "product_uom_qty": amount},
                        )
                    ],
                }
            )
        )
        if confirm:
            order.action_confirm()
        order.date_order = cls._days_ago(days_ago)
        return order

    @classmethod
    def _days_ago(cls, days):
        return datetime.combine(cls._today() - timedelta(days=days), time(12, 0))

    def _next_night(self):
        """Everything written ten days ago, as in a real shop; then the
        nightly recompute of tomorrow, run as ir.cron runs it. Returns how
        many customers it changed (the time stays frozen at tomorrow)."""
        self.env.flush_all()
        for table in ("res_partner", "sale_order", "winback_segment"):
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET write_date = write_date - interval '10 days'",
                    SQL.identifier(table),
                )
            )
        return run_job(self, "winback.segment.recompute", "_cron_recompute")


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
        cls.segment_warm = cls.env.ref("winback_whatsapp.segment_lukewarm")
        cls.segment_cold = cls.env.ref("winback_whatsapp.segment_cold")
        cls.campaign = cls.env["winback.campaign"].create(
            {
                "name": "Report campaign",
                "account_id": cls.account.id,
                "segment_ids": [(6, 0, (cls.segment_warm | cls.segment_cold).ids)],
            }
        )
        cls.step1, cls.step2 = cls.env["winback.step"].create(
            [
                {
                    "campaign_id": cls.campaign.id,
                    "sequence": 1,
                    "name": "News",
                    "template_id": cls.template.id,
                },
                {
                    "campaign_id": cls.campaign.id,
                    "sequence": 2,
                    "name": "Last call",
                    "delay_days": 3,
                    "template_id": cls.template.id,
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
                "campaign_id": cls.campaign.id,
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
