"""A marketer runs a campaign without help: the campaigns kanban with its
funnel, the smart buttons, the progress after Start, readable record names,
and the campaign editor (template names, one-line previews, steps locked
while the campaign runs)."""

import ast
from datetime import timedelta

from lxml import etree

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tools import file_open

from .common import WinbackReportCase, run_job
from .test_send import WinbackSendCase
from .test_views import specification

MODULE = "winback_whatsapp"
USER = f"{MODULE}.group_winback_user"
MANAGER = f"{MODULE}.group_winback_manager"


@tagged("post_install", "-at_install")
class TestCampaignScreens(WinbackReportCase):
    """The campaign screens, read as a Win-back user."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        s1, s2 = cls.step1, cls.step2
        cls.converted = cls._enroll(
            cls.segment_warm,
            "converted",
            revenue=80.0,
            messages=[(s1, "read"), (s2, "read")],
        )
        cls.replied = cls._enroll(
            cls.segment_warm, "replied", messages=[(s1, "read"), (s2, "delivered")]
        )
        cls.delivered = cls._enroll(
            cls.segment_cold, "running", messages=[(s1, "delivered")]
        )
        cls.sent = cls._enroll(cls.segment_cold, "running", messages=[(s1, "sent")])
        cls.failed = cls._enroll(cls.segment_cold, "failed", messages=[(s1, "failed")])
        cls.waiting = cls._enroll(cls.segment_cold, "running")
        cls.holdout = cls._enroll(cls.segment_cold, "holdout", holdout=True)
        cls.holdout_bought = cls._enroll(
            cls.segment_cold, "converted", holdout=True, revenue=30.0
        )
        # The converted customer had replied before buying.
        cls.env["winback.message"].create(
            {
                "direction": "inbound",
                "enrollment_id": cls.converted.id,
                "partner_id": cls.converted.partner_id.id,
                "account_id": cls.account.id,
                "company_id": cls.company.id,
                "body": "Still open on Sunday?",
                "state": "received",
            }
        )
        cls.env.flush_all()
        cls.user = new_test_user(cls.env, login="ux_user", groups=USER)

    def test_kanban_is_the_default_view_and_shows_the_funnel(self):
        """CRM > Win-back > Campaigns opens on a kanban whose card shows the
        state, the segments, the next send, the funnel and the revenue."""
        action = self.env.ref(f"{MODULE}.winback_campaign_action")._get_action_dict()
        self.assertEqual(action["view_mode"].split(",")[0], "kanban")
        self.assertEqual(action["views"][0][1], "kanban")
        Campaign = self.env["winback.campaign"].with_user(self.user)
        views = Campaign.get_views([(False, "kanban"), (False, "search")])
        arch = etree.fromstring(views["views"]["kanban"]["arch"])
        shown = {node.get("name") for node in arch.iter("field")}
        self.assertLessEqual(
            {
                "state",
                "segment_ids",
                "next_send_at",
                "enrolled_count",
                "sent_count",
                "delivered_count",
                "read_count",
                "replied_count",
                "converted_count",
                "revenue",
            },
            shown,
        )
        spec = specification(arch, "winback.campaign", views["models"])
        read = Campaign.web_search_read([("id", "=", self.campaign.id)], spec)
        (card,) = read["records"]
        self.assertEqual(
            [
                card[f"{stat}_count"]
                for stat in ("enrolled", "sent", "delivered", "read", "replied")
            ],
            # 6 treated customers; 4 reached (the failed one was not); 3
            # delivered; 2 read; 2 replied (one of whom then bought).
            [6, 4, 3, 2, 2],
        )
        self.assertEqual(card["converted_count"], 1)
        self.assertEqual(card["revenue"], 80.0)
        self.assertEqual(card["segment_ids"][0]["display_name"], "Lukewarm")

    def test_funnel_counts_take_a_few_queries(self):
        """The counts are grouped queries, not one per enrollment: the same
        number of queries for 8 enrollments as for 108."""
        campaigns = self.env["winback.campaign"].browse(self.campaign.ids)
        campaigns.invalidate_recordset()
        with self.assertQueryCount(__system__=20) as _counter:
            campaigns.mapped("read_count")
        for _i in range(100):
            self._enroll(self.segment_cold, "running", messages=[(self.step1, "read")])
        self.env.flush_all()
        campaigns.invalidate_recordset()
        with self.assertQueryCount(__system__=20):
            self.assertEqual(campaigns.read_count, 102)

    def test_smart_buttons_open_the_records_they_count(self):
        form = etree.fromstring(
            self.env["winback.campaign"]
            .with_user(self.user)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        stats = {
            ast.literal_eval(button.get("context"))["winback_stat"]
            for button in form.iter("button")
            if button.get("name") == "action_view_stat"
        }
        self.assertLessEqual(
            {"enrolled", "sent", "replied", "converted", "lift"}, stats
        )
        campaign = self.campaign.with_user(self.user)
        expected = {
            "enrolled": self.converted
            | self.replied
            | self.delivered
            | self.sent
            | self.failed
            | self.waiting,
            "sent": self.converted | self.replied | self.delivered | self.sent,
            "replied": self.converted | self.replied,
            "converted": self.converted,
            "holdout": self.holdout | self.holdout_bought,
        }
        for stat, enrollments in expected.items():
            action = campaign.with_context(winback_stat=stat).action_view_stat()
            self.assertEqual(action["res_model"], "winback.enrollment")
            found = (
                self.env["winback.enrollment"]
                .with_user(self.user)
                .search(action["domain"])
            )
            self.assertEqual(found, enrollments, stat)
            self.assertEqual(len(found), campaign[f"{stat}_count"], stat)
        self.assertEqual(campaign.revenue, sum(expected["converted"].mapped("revenue")))
        action = campaign.with_context(winback_stat="lift").action_view_stat()
        self.assertEqual(action["res_model"], "winback.lift")
        lift = self.env["winback.lift"].with_user(self.user).search(action["domain"])
        self.assertEqual(lift.campaign_id, self.campaign)
        # 1 of 6 treated converted, 1 of 2 in the holdout group: -33.3 points.
        self.assertAlmostEqual(campaign.lift, 100 / 6 - 50, places=1)

    def test_enrollment_reads_customer_and_campaign(self):
        self.assertEqual(
            self.converted.with_user(self.user).display_name,
            f"{self.converted.partner_id.name} · Report campaign",
        )

    def test_steps_show_template_names_and_a_preview_line(self):
        """The steps list shows the template as marketers name it and the
        start of the message; the technical name stays in the template
        form."""
        step = self.step1.with_user(self.user)
        self.assertEqual(step.template_id.display_name, "Winback report test (en)")
        self.assertNotIn("winback_report_test", step.template_id.display_name)
        self.assertNotIn("\n", step.preview_line)
        self.assertTrue(step.preview_line.startswith("Hello "), step.preview_line)
        self.assertIn("we have news for you", step.preview_line)
        # Found by the name shown as well as by the technical one.
        Template = self.env["winback.template"].with_user(self.user)
        self.assertIn(
            self.template, Template.search([("display_name", "ilike", "report test")])
        )
        self.assertIn(
            self.template,
            Template.search([("display_name", "ilike", "winback_report")]),
        )
        form = etree.fromstring(
            self.env["winback.campaign"]
            .with_user(self.user)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        (steps,) = form.xpath("//field[@name='step_ids']")
        columns = [node.get("name") for node in steps.iter("field")]
        self.assertIn("template_id", columns)
        self.assertIn("preview_line", columns)
        (values,) = self.campaign.with_user(self.user).web_read(
            {
                "step_ids": {
                    "fields": {
                        "template_id": {"fields": {"display_name": {}}},
                        "preview_line": {},
                    }
                }
            }
        )
        self.assertEqual(
            values["step_ids"][0]["template_id"]["display_name"],
            "Winback report test (en)",
        )

    def test_segments_list_shows_tags(self):
        """The segments list shows each segment's partner tag with the
        many2one_tag widget, which the backend assets register."""
        Segment = self.env["winback.segment"].with_user(self.user)
        arch = etree.fromstring(
            Segment.get_views([(False, "list")])["views"]["list"]["arch"]
        )
        (tag,) = arch.xpath("//field[@name='tag_id']")
        self.assertEqual(tag.get("widget"), "many2one_tag")
        paths = [
            asset[0]
            for asset in self.env["ir.asset"]._get_asset_paths("web.assets_backend", {})
        ]
        (script,) = (p for p in paths if p.endswith("many2one_tag_field.js"))
        with file_open(script.lstrip("/")) as source:
            self.assertIn(
                'registry.category("fields").add("many2one_tag"', source.read()
            )
        self.assertTrue(
            any(p.endswith("many2one_tag_field.xml") for p in paths), "template"
        )
        read = Segment.web_search_read(
            [("id", "=", self.segment_warm.id)],
            {"tag_id": {"fields": {"display_name": {}}}, "tag_color": {}},
        )
        self.assertEqual(
            read["records"][0]["tag_id"]["display_name"],
            self.segment_warm.tag_id.display_name,
        )


@tagged("post_install", "-at_install")
class TestCampaignStart(WinbackSendCase):
    """Start, and what the marketer sees next."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(cls.env, login="ux_manager", groups=MANAGER)

    def test_start_tells_how_many_and_when(self):
        campaign = self.campaign.with_user(self.manager)
        result = campaign.action_start()
        self.assertEqual(result["params"]["type"], "success")
        self.assertIn("1 customers eligible", result["params"]["message"])
        self.assertEqual(campaign.eligible_count, 1)
        # Nobody entered yet: the first batch goes out when the window opens
        # (the window is all day long, every day: right away).
        self.assertTrue(campaign.next_send_at)
        self.env["winback.enroller"]._enroll(self.campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        campaign.invalidate_recordset()
        self.assertEqual(
            (campaign.enrolled_count, campaign.queued_count, campaign.failed_count),
            (1, 1, 0),
        )
        self._send()
        campaign.invalidate_recordset()
        self.assertEqual(
            (campaign.queued_count, campaign.message_sent_count, campaign.sent_count),
            (0, 1, 1),
        )

    def test_start_with_nobody_eligible_warns_with_the_reasons(self):
        self.env["phone.blacklist"]._add([self.roberta.phone_sanitized])
        campaign = self.campaign.with_user(self.manager)
        result = campaign.action_start()
        params = result["params"]
        self.assertEqual(params["type"], "warning")
        self.assertEqual(params["title"], "Nobody is eligible today")
        self.assertIn("Number blacklisted (STOP): 1", params["message"])
        self.assertEqual(campaign.eligible_count, 0)

    def test_start_on_empty_segments_says_so(self):
        self.campaign.segment_ids = self.lukewarm
        result = self.campaign.with_user(self.manager).action_start()
        self.assertEqual(result["params"]["type"], "warning")
        self.assertIn("have no customer yet", result["params"]["message"])
        self.assertIn("Lukewarm", result["params"]["message"])

    def test_running_campaign_steps_are_read_only(self):
        """While customers receive the messages, nobody changes them: the
        server refuses (not only the form), and says how to proceed. Paused,
        they are editable again."""
        campaign = self.campaign.with_user(self.manager)
        campaign.action_start()
        step = campaign.step_ids[0]
        message = "Pause the campaign to change them, or duplicate it as a new version"
        with self.assertRaisesRegex(UserError, message):
            step.write({"delay_days": 5})
        with self.assertRaisesRegex(UserError, message):
            campaign.write({"step_ids": [(2, step.id)]})
        with self.assertRaisesRegex(UserError, message):
            campaign.write(
                {"step_ids": [(0, 0, {"name": "Third", "template_id": self.offer.id})]}
            )
        self.assertEqual(step.delay_days, 0)
        form = etree.fromstring(
            campaign.get_views([(False, "form")])["views"]["form"]["arch"]
        )
        (steps,) = form.xpath("//field[@name='step_ids']")
        self.assertEqual(steps.get("readonly"), "state == 'running'")
        self.assertTrue(form.xpath("//div[@name='steps_locked']"))
        # A new version: a draft copy with the same messages, editable.
        action = campaign.action_new_version()
        copy = (
            self.env["winback.campaign"]
            .with_user(self.manager)
            .browse(action["res_id"])
        )
        self.assertEqual(copy.state, "draft")
        self.assertEqual(copy.step_ids.template_id, campaign.step_ids.template_id)
        copy.step_ids[0].delay_days = 2
        # Paused, the campaign's own messages can change.
        campaign.action_pause()
        step.write({"delay_days": 5})
        self.assertEqual(step.delay_days, 5)

    def test_a_campaign_created_running_keeps_its_steps_locked(self):
        """A copy made running comes with its messages; afterwards they are
        locked like any running campaign's."""
        copy = self.campaign.with_user(self.manager).copy({"state": "running"})
        self.assertEqual(len(copy.step_ids), 2)
        with self.assertRaisesRegex(UserError, "Pause the campaign"):
            copy.step_ids[0].write({"delay_days": 1})


@tagged("post_install", "-at_install")
class TestCampaignProgressTour(HttpCase):
    def test_campaign_progress_tour(self):
        """In a real browser: create a campaign from the kanban, start it and
        see the progress; the segments list shows the tags."""
        account = self.env["winback.account"].create({"name": "Progress account"})
        Template = self.env["winback.template"]
        for name, body in [
            ("winback_tour_hello", "Hi {{1}}, spring is here: come and see."),
            ("winback_tour_reminder", "Hi {{1}}, a last reminder."),
        ]:
            Template.create(
                {
                    "name": name,
                    "account_id": account.id,
                    "language": "en",
                    "status": "approved",
                    "body": body,
                    "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
                }
            )
        customer = self.env["res.partner"].create(
            {
                "name": "Giulia Neri",
                "mobile": "+39 333 765 4321",
                "country_id": self.env.ref("base.it").id,
                "winback_consent_date": fields.Datetime.now(),
                "winback_consent_source": "Shop counter",
            }
        )
        lukewarm = self.env.ref(f"{MODULE}.segment_lukewarm")
        order = self.env["sale.order"].create(
            {
                "partner_id": customer.id,
                "order_line": [
                    (0, 0, {"product_id": self.env["product.product"].create(
                        {"name": "Tour beans", "list_price": 9.0}).id})
                ],
            }
        )  # fmt: skip
        order.action_confirm()
        order.date_order = fields.Datetime.now() - timedelta(days=lukewarm.min_days + 5)
        self.env["winback.segment.recompute"]._recompute_partners(customer)
        run_job(self, "winback.segment.recompute", "_cron_recompute")
        self.assertEqual(customer.winback_segment_id, lukewarm)
        self.start_tour(
            "/odoo", "winback_whatsapp_campaign_progress_tour", login="admin"
        )
        campaign = self.env["winback.campaign"].search([("name", "=", "Spring hello")])
        self.assertEqual(campaign.state, "running")
        self.assertEqual(campaign.eligible_count, 1)
        self.assertEqual(
            campaign.step_ids.template_id.mapped("name"),
            ["winback_tour_hello", "winback_tour_reminder"],
        )


@tagged("post_install", "-at_install")
class TestRecordedMessages(WinbackReportCase):
    def test_a_message_recorded_as_sent_shows_its_text(self):
        """An outbound message recorded as already delivered (the demo data,
        an import) reads the text its step's template renders for the
        customer."""
        template = self.env["winback.template"].create(
            {
                "name": "winback_recorded",
                "account_id": self.account.id,
                "status": "approved",
                "body": "Hi {{1}}, spring is here.",
                "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
            }
        )
        self.step1.template_id = template
        enrollment = self._enroll(self.segment_warm, "running")
        enrollment.partner_id.name = "Giulia Neri"
        message = self.env["winback.message"].create(
            {
                "direction": "outbound",
                "enrollment_id": enrollment.id,
                "step_id": self.step1.id,
                "partner_id": enrollment.partner_id.id,
                "account_id": self.account.id,
                "company_id": self.company.id,
                "state": "delivered",
            }
        )
        self.assertEqual(message.body, "Hi Giulia, spring is here.")
        self.assertEqual(message.template_id, template)
        # A queued message gets its text when it is sent, not before.
        queued = self.env["winback.message"].create(
            {
                "direction": "outbound",
                "step_id": self.step2.id,
                "partner_id": enrollment.partner_id.id,
                "account_id": self.account.id,
                "state": "queued",
            }
        )
        self.assertFalse(queued.body)
