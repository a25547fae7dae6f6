from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged

from .common import WinbackDataMixin

HEADER_URL = "https://scontent.whatsapp.net/v/t61/spring-banner.jpg"


class PreviewMixin:
    @classmethod
    def _setup_preview(cls):
        cls.account = cls.env["winback.account"].create(
            {"name": "Caffè Rossi", "phone_number_id": "100200399"}
        )
        cls.template = cls.env["winback.template"].create(
            {
                "name": "winback_preview_offer",
                "account_id": cls.account.id,
                "language": "en",
                "status": "approved",
                "header_image_url": HEADER_URL,
                "body": "Ciao {{1}}! Your code: {{2}}\nValid *this week* only.",
                "param_ids": [
                    (0, 0, {"position": 1, "source": "first_name"}),
                    (0, 0, {"position": 2, "source": "coupon_code"}),
                ],
                "button_ids": [
                    (0, 0, {"index": 0, "text": "Yes please"}),
                    (0, 0, {"index": 1, "text": "Stop promotions", "is_stop": True}),
                ],
            }
        )
        cls.giulia = cls.env["res.partner"].create(
            {"name": "Giulia Rossi", "phone": "+39 333 7654321"}
        )
        cls.preview_campaign = cls.env["winback.campaign"].create(
            {
                "name": "Phone preview campaign",
                "account_id": cls.account.id,
                "coupon_code": "SPRING10",
                "step_ids": [
                    (
                        0,
                        0,
                        {
                            "name": "Offer",
                            "sequence": 1,
                            "template_id": cls.template.id,
                        },
                    ),
                    (
                        0,
                        0,
                        {
                            "name": "Reminder",
                            "sequence": 2,
                            "delay_days": 4,
                            "template_id": cls.template.id,
                        },
                    ),
                ],
            }
        )


@tagged("post_install", "-at_install")
class TestPhonePreview(PreviewMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_preview()
        cls.user = new_test_user(
            cls.env,
            login="preview_sales",
            groups="winback_whatsapp.group_winback_user",
        )

    def test_preview_shows_the_customer_values_and_buttons(self):
        """A Win-back user picks a sample customer: every message reads as a
        WhatsApp bubble with that customer's values, the header image and the
        quick-reply buttons, under the step's name and day."""
        self.preview_campaign.preview_partner_id = self.giulia
        campaign = self.preview_campaign.with_user(self.user)
        html = str(campaign.phone_preview)
        self.assertEqual(html.count('class="o_winback_bubble"'), 2)
        self.assertIn("Ciao Giulia! Your code: SPRING10", html)
        self.assertIn("<strong>this week</strong>", html)
        self.assertEqual(html.count("Yes please"), 2)
        self.assertEqual(html.count("Stop promotions"), 2)
        self.assertIn(f'src="{HEADER_URL}"', html)
        self.assertIn("Offer · day 0", html)
        self.assertIn("Reminder · day 4", html)
        self.assertIn("Caffè Rossi", html)
        self.assertIn("to Giulia Rossi", html)
        # The step form shows its own message, for the same customer.
        step = campaign.step_ids.sorted("sequence")[1]
        step_html = str(step.phone_preview)
        self.assertEqual(step_html.count('class="o_winback_bubble"'), 1)
        self.assertIn("Ciao Giulia! Your code: SPRING10", step_html)
        self.assertIn("Reminder · day 4", step_html)
        self.assertIn("Yes please", step_html)

    def test_preview_follows_the_chosen_customer(self):
        """Choosing another customer renders the messages for them; without a
        choice, the test recipient is shown."""
        marco = self.env["res.partner"].create({"name": "Marco Bianchi"})
        self.preview_campaign.test_partner_id = marco
        self.assertIn("Ciao Marco!", str(self.preview_campaign.phone_preview))
        self.preview_campaign.preview_partner_id = self.giulia
        html = str(self.preview_campaign.phone_preview)
        self.assertIn("Ciao Giulia!", html)
        self.assertNotIn("Ciao Marco!", html)

    def test_preview_escapes_what_customers_and_users_wrote(self):
        """A customer named <script>, a template body with markup, a button
        and an account name with markup: shown as text, never as HTML."""
        evil = self.env["res.partner"].create(
            {"name": "<script>alert(1)</script> Evil"}
        )
        self.template.body = 'Hi {{1}} <img src=x onerror="alert(2)"> {{2}}'
        self.template.button_ids[0].text = "<b>Yes</b>"
        self.account.name = "<i>Shop</i>"
        self.preview_campaign.preview_partner_id = evil
        for record in (self.preview_campaign, self.preview_campaign.step_ids[0]):
            html = str(record.with_user(self.user).phone_preview)
            self.assertNotIn("<script", html)
            self.assertNotIn("<img src=x", html)
            self.assertNotIn('<img src="x"', html)
            self.assertNotIn("<b>Yes", html)
            self.assertNotIn("<i>Shop", html)
            self.assertIn("&lt;script&gt;alert(1)&lt;/script&gt;", html)
            self.assertIn("&lt;img src=x onerror=", html)
            self.assertIn("&lt;b&gt;Yes&lt;/b&gt;", html)

    def test_preview_explains_a_missing_value(self):
        """A placeholder with neither a value nor a fallback: the bubble is
        replaced by the reason nothing would be sent."""
        self.template.param_ids.filtered(
            lambda p: p.position == 2
        ).source = "salesperson"
        self.preview_campaign.preview_partner_id = self.giulia
        html = str(self.preview_campaign.phone_preview)
        self.assertIn("o_winback_bubble_error", html)
        self.assertIn("no value for {{2}}", html)
        self.assertNotIn('class="o_winback_bubble"', html)

    def test_header_image_from_meta_components(self):
        """The template sync keeps the sample image of an IMAGE header (HTTPS
        only); a text header or no header leaves none."""
        Template = self.env["winback.template"]
        body = {"type": "BODY", "text": "Hello {{1}}"}

        def remote(name, *components):
            return {
                "name": name,
                "language": "en",
                "status": "APPROVED",
                "id": name,
                "components": [*components, body],
            }

        Template._sync_from_meta(
            self.account,
            [
                remote(
                    "with_image",
                    {
                        "type": "HEADER",
                        "format": "IMAGE",
                        "example": {"header_handle": [HEADER_URL]},
                    },
                ),
                remote(
                    "with_http_image",
                    {
                        "type": "HEADER",
                        "format": "IMAGE",
                        "example": {"header_handle": ["javascript:alert(1)"]},
                    },
                ),
                remote("with_text", {"type": "HEADER", "format": "TEXT", "text": "Hi"}),
                remote("without_header"),
            ],
        )
        urls = {
            t.name: t.header_image_url
            for t in Template.search([("account_id", "=", self.account.id)])
        }
        self.assertEqual(urls["with_image"], HEADER_URL)
        self.assertFalse(urls["with_http_image"])
        self.assertFalse(urls["with_text"])
        self.assertFalse(urls["without_header"])


@tagged("post_install", "-at_install")
class TestLiftChart(WinbackDataMixin, TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls.user = new_test_user(
            cls.env,
            login="lift_sales",
            groups="winback_whatsapp.group_winback_user",
        )

    def _enroll_groups(self, treated, treated_converted, holdout, holdout_converted):
        for i in range(treated):
            self._enroll(
                self.segment_warm,
                "converted" if i < treated_converted else "dormant",
                messages=[(self.step1, "read")],
            )
        for i in range(holdout):
            self._enroll(
                self.segment_cold if i % 2 else self.segment_warm,
                "converted" if i < holdout_converted else "holdout",
                holdout=True,
            )
        self.env.flush_all()

    def test_chart_shows_both_groups_with_intervals_and_the_lift(self):
        """9 of 10 treated against 3 of 10 holdout customers converted: bars
        at 90% and 30% with their Wilson intervals, lift 60 points (95%
        interval 17.05 to 80.90): the sample is large enough to tell."""
        self._enroll_groups(10, 9, 10, 3)
        campaign = self.campaign.with_user(self.user)
        data = campaign._lift_chart_data()
        treated, holdout = data["groups"]
        self.assertEqual(
            (treated["key"], treated["label"], treated["count"], treated["converted"]),
            ("treated", "Treated", 10, 9),
        )
        self.assertEqual(
            (holdout["key"], holdout["label"], holdout["count"], holdout["converted"]),
            ("holdout", "Holdout", 10, 3),
        )
        self.assertAlmostEqual(treated["rate"], 90.0)
        self.assertAlmostEqual(holdout["rate"], 30.0)
        # Wilson 95% intervals of 9/10 and 3/10 (Newcombe 1998, Table I style).
        self.assertAlmostEqual(treated["low"], 59.58, places=2)
        self.assertAlmostEqual(treated["high"], 98.21, places=2)
        self.assertAlmostEqual(holdout["low"], 10.78, places=2)
        self.assertAlmostEqual(holdout["high"], 60.32, places=2)
        self.assertAlmostEqual(data["lift"], 60.0)
        self.assertAlmostEqual(data["lift_low"], 17.05, places=2)
        self.assertAlmostEqual(data["lift_high"], 80.90, places=2)
        self.assertFalse(data["too_small"])
        html = str(campaign.lift_chart)
        self.assertEqual(html.count("o_winback_lift_whisker"), 2)
        self.assertIn("o_winback_lift_treated", html)
        self.assertIn("o_winback_lift_holdout", html)
        self.assertIn("9 of 10 converted", html)
        self.assertIn("3 of 10 converted", html)
        self.assertIn("95% interval: 59.6% to 98.2%", html)
        self.assertIn("Lift: +60.0 points (95% interval: +17.1 to +80.9)", html)
        self.assertIn("lifts conversion", html)
        self.assertNotIn("too small", html)

    def test_small_sample_is_too_small_to_tell(self):
        """1 of 4 treated against 0 of 1 holdout: the interval of the lift
        includes zero, the chart says the sample is too small to tell."""
        self._enroll_groups(4, 1, 1, 0)
        campaign = self.campaign.with_user(self.user)
        data = campaign._lift_chart_data()
        self.assertEqual([g["count"] for g in data["groups"]], [4, 1])
        self.assertLess(data["lift_low"], 0)
        self.assertGreater(data["lift_high"], 0)
        self.assertTrue(data["too_small"])
        html = str(campaign.lift_chart)
        self.assertEqual(html.count("o_winback_lift_whisker"), 2)
        self.assertIn("o_winback_lift_too_small", html)
        self.assertIn("Sample too small to tell", html)

    def test_no_holdout_no_comparison(self):
        """Without holdout customers there is nothing to compare: the chart
        says so instead of drawing a lift."""
        self._enroll_groups(3, 1, 0, 0)
        campaign = self.campaign.with_user(self.user)
        self.assertTrue(campaign._lift_chart_data()["too_small"])
        html = str(campaign.lift_chart)
        self.assertIn("No comparison yet", html)
        self.assertNotIn("o_winback_lift_whisker", html)

    def test_pivot_columns_read_treated_and_holdout(self):
        """The results pivot splits its columns by group; a Win-back user
        reads Treated and Holdout, not No and Yes."""
        self._enroll_groups(4, 1, 2, 1)
        Report = self.env["winback.report"].with_user(self.user)
        arch = Report.get_view(
            self.env.ref("winback_whatsapp.winback_report_view_pivot").id, "pivot"
        )["arch"]
        self.assertIn('<field name="audience" type="col"', arch)
        labels = dict(Report.fields_get(["audience"])["audience"]["selection"])
        self.assertEqual(labels, {"treated": "Treated", "holdout": "Holdout"})
        groups = Report.read_group(
            [("campaign_id", "=", self.campaign.id)],
            ["enrolled:sum", "converted:sum"],
            ["audience"],
            lazy=False,
        )
        got = [(labels[g["audience"]], g["enrolled"], g["converted"]) for g in groups]
        # Treated first, as the pivot's columns read.
        self.assertEqual(got, [("Treated", 4, 1), ("Holdout", 2, 1)])
        cells = Report.read_group(
            [("campaign_id", "=", self.campaign.id)],
            ["enrolled:sum"],
            ["segment_id", "audience"],
            lazy=False,
        )
        self.assertEqual(
            [(c["segment_id"][0], c["audience"], c["enrolled"]) for c in cells],
            [
                (self.segment_warm.id, "treated", 4),
                (self.segment_warm.id, "holdout", 1),
                (self.segment_cold.id, "holdout", 1),
            ],
        )


@tagged("post_install", "-at_install")
class TestPreviewLiftTour(PreviewMixin, WinbackDataMixin, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls._setup_preview()

    def test_lift_tour(self):
        """In a real browser: the results pivot's columns read Treated and
        Holdout, every header of the lift list reads in full, and the
        campaign's Lift tab draws both groups with their intervals."""
        for i in range(6):
            self._enroll(
                self.segment_warm,
                "converted" if i < 2 else "dormant",
                messages=[(self.step1, "read")],
            )
        self._enroll(self.segment_warm, "holdout", holdout=True)
        self._enroll(self.segment_cold, "converted", holdout=True)
        self.start_tour("/odoo", "winback_whatsapp_lift_tour", login="admin")

    def test_phone_preview_tour(self):
        """In a real browser: open a campaign, pick a sample customer on the
        Phone preview tab, read the bubble with their values and buttons."""
        self.start_tour("/odoo", "winback_whatsapp_phone_preview_tour", login="admin")
        self.assertEqual(self.preview_campaign.preview_partner_id, self.giulia)
