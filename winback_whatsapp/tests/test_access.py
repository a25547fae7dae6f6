from psycopg2 import IntegrityError

from odoo.exceptions import AccessError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from .common import WinbackReportCase


@tagged("post_install", "-at_install")
class TestAccess(WinbackReportCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.enrollment = cls._enroll(
            cls.segment_warm, "replied", messages=[(cls.step1, "read")]
        )
        cls.env.flush_all()
        cls.user = new_test_user(
            cls.env,
            login="winback_sales",
            groups="winback_whatsapp.group_winback_user",
        )
        # The Win-back Administrator is no system administrator: what truly
        # needs one (Settings, secrets) is tested with its own user.
        cls.manager = new_test_user(
            cls.env,
            login="winback_boss",
            groups="winback_whatsapp.group_winback_manager",
        )
        cls.sysadmin = new_test_user(
            cls.env,
            login="winback_sysadmin",
            groups="winback_whatsapp.group_winback_manager,base.group_system",
        )
        cls.other_company = cls.env["res.company"].create({"name": "Other shop"})
        cls.other_user = new_test_user(
            cls.env,
            login="winback_other",
            groups="winback_whatsapp.group_winback_user",
            company_id=cls.other_company.id,
            company_ids=[(6, 0, cls.other_company.ids)],
        )

    def test_user_reads_campaigns_and_results(self):
        """Sales staff see the campaign, its enrollments, messages and results."""
        env = self.env(user=self.user)
        self.assertEqual(env["winback.campaign"].search([]).ids, self.campaign.ids)
        enrollment = env["winback.enrollment"].browse(self.enrollment.id)
        self.assertEqual(enrollment.state, "replied")
        self.assertEqual(len(enrollment.message_ids), 1)
        groups = env["winback.report"].read_group(
            [("campaign_id", "=", self.campaign.id)],
            ["replied:sum", "sent:sum"],
            [],
            lazy=False,
        )
        self.assertEqual((groups[0]["replied"], groups[0]["sent"]), (1, 1))
        self.assertEqual(env["winback.lift"].search([]).mapped("treated_count"), [1])

    def test_user_replies_but_does_not_configure(self):
        """Sales staff reply through the composer (tested there), never by
        writing a message record directly, and do not change campaigns,
        segments, accounts, templates or the company's win-back settings."""
        env = self.env(user=self.user)
        with self.assertRaises(AccessError):
            env["winback.message"].create(
                {
                    "direction": "outbound",
                    "partner_id": self.enrollment.partner_id.id,
                    "account_id": self.account.id,
                    "company_id": self.company.id,
                    "phone_e164": "+393331000001",
                    "body": "Thanks, see you soon!",
                }
            )
        with self.assertRaises(AccessError):
            env["winback.campaign"].browse(self.campaign.id).write({"name": "Mine"})
        with self.assertRaises(AccessError):
            env["winback.campaign"].create(
                {"name": "New", "account_id": self.account.id}
            )
        with self.assertRaises(AccessError):
            env["winback.segment"].browse(self.segment_warm.id).write({"min_days": 1})
        with self.assertRaises(AccessError):
            env["winback.template"].browse(self.template.id).write({"body": "x"})
        with self.assertRaises(AccessError):
            env["winback.account"].create({"name": "Rogue"})
        with self.assertRaises(AccessError):
            env["res.config.settings"].create({"winback_grace_days": 3})
        with self.assertRaises(AccessError):
            env["winback.enrollment"].browse(self.enrollment.id).unlink()
        # The access token of the WhatsApp account stays hidden.
        with self.assertRaises(AccessError):
            env["winback.account"].browse(self.account.id).read(["access_token"])

    def test_manager_configures(self):
        """A Win-back Administrator creates segments and campaigns; the
        company's default thresholds are in Settings, for system
        administrators."""
        env = self.env(user=self.manager)
        segment = env["winback.segment"].create(
            {"name": "Manager warm", "min_days": 45, "max_days": 59}
        )
        campaign = env["winback.campaign"].create(
            {
                "name": "Manager campaign",
                "account_id": self.account.id,
                "segment_ids": [(6, 0, segment.ids)],
            }
        )
        self.assertEqual(campaign.company_id, self.company)
        # Settings, the secrets and where they go are not theirs.
        with self.assertRaises(AccessError):
            env["res.config.settings"].create({"winback_grace_days": 5})
        account = env["winback.account"].browse(self.account.id)
        for field in ("access_token", "app_secret", "api_base_url", "webhook_url"):
            with self.assertRaises(AccessError):
                account.read([field])
        settings = self.env(user=self.sysadmin)["res.config.settings"].create(
            {
                "winback_lukewarm_days": 45,
                "winback_cooling_days": 100,
                "winback_cold_days": 200,
                "winback_grace_days": 5,
                "winback_cooldown_days": 21,
            }
        )
        settings.execute()
        self.assertEqual(
            (
                self.company.winback_lukewarm_days,
                self.company.winback_cooling_days,
                self.company.winback_cold_days,
                self.company.winback_grace_days,
                self.company.winback_cooldown_days,
            ),
            (45, 100, 200, 5, 21),
        )

    def test_company_defaults_and_thresholds_order(self):
        """A new company gets 60/90/180 days, 7 grace days and a 14-day
        cooldown; thresholds that are not increasing are refused."""
        company = self.other_company
        self.assertEqual(
            (
                company.winback_lukewarm_days,
                company.winback_cooling_days,
                company.winback_cold_days,
                company.winback_grace_days,
                company.winback_cooldown_days,
            ),
            (60, 90, 180, 7, 14),
        )
        with (
            self.assertRaises(IntegrityError),
            mute_logger("odoo.sql_db"),
            self.cr.savepoint(),
        ):
            company.write({"winback_cooling_days": 200})
            company.flush_recordset()

    def test_multi_company_isolation(self):
        """A user of another company sees none of this company's campaigns,
        enrollments, messages or results."""
        env = self.env(user=self.other_user)
        self.assertFalse(env["winback.campaign"].search([]))
        self.assertFalse(env["winback.enrollment"].search([]))
        self.assertFalse(env["winback.message"].search([]))
        self.assertFalse(env["winback.report"].search([]))
        self.assertFalse(env["winback.lift"].search([]))
        self.assertFalse(env["winback.account"].search([]))
        with self.assertRaises(AccessError):
            env["winback.campaign"].browse(self.campaign.id).read(["name"])
        with self.assertRaises(AccessError):
            env["winback.report"].browse(self.enrollment.id).read(["revenue"])

    def test_no_access_without_group(self):
        """An internal user outside the Win-back groups sees no results."""
        outsider = new_test_user(self.env, login="winback_outsider")
        with self.assertRaises(AccessError):
            self.env(user=outsider)["winback.report"].search([])
        with self.assertRaises(AccessError):
            self.env(user=outsider)["winback.lift"].search([])
