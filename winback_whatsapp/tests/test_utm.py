"""Attribution through Odoo's UTM: each campaign has its marketing campaign
(medium WhatsApp, source Win-back), the orders it converts carry it, and the
links of its messages are short links of Odoo's link tracker whose clicks
count on the campaign and show on the customer's enrollment."""

from urllib.parse import parse_qs, urlsplit

from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, new_test_user, tagged

from .test_send import WinbackSendCase

MODULE = "winback_whatsapp"
USER = f"{MODULE}.group_winback_user"
MANAGER = f"{MODULE}.group_winback_manager"
SHOP_URL = "https://shop.example.com/spring?ref=whatsapp"


class UtmCase(WinbackSendCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env, login="utm_manager", groups=f"{MANAGER},base.group_user"
        )
        cls.user = new_test_user(cls.env, login="utm_user", groups=USER)
        cls.salesman = new_test_user(
            cls.env, login="utm_salesman", groups="sales_team.group_sale_salesman"
        )
        cls.whatsapp = cls.env.ref(f"{MODULE}.utm_medium_whatsapp")
        cls.winback = cls.env.ref(f"{MODULE}.utm_source_winback")

    def _start_and_queue(self, campaign=None):
        campaign = (campaign or self.campaign).with_user(self.manager)
        campaign.action_start()
        self.env["winback.enroller"]._enroll(campaign)
        self.env["winback.enrollment"]._queue_due_messages()
        return campaign.enrollment_ids

    def _sell(self, partner, **vals):
        """A salesperson sells to ``partner`` and confirms the order."""
        order = (
            self.env["sale.order"]
            .with_user(self.salesman)
            .create(
                {
                    "partner_id": partner.id,
                    "order_line": [
                        (0, 0, {"product_id": self.product.id, "product_uom_qty": 3})
                    ],
                    **vals,
                }
            )
        )
        order.action_confirm()
        return order


@tagged("post_install", "-at_install")
class TestUtmAttribution(UtmCase):
    def test_campaign_gets_its_utm_campaign(self):
        campaign = (
            self.env["winback.campaign"]
            .with_user(self.manager)
            .create({"name": "Autumn win-back", "account_id": self.account.id})
        )
        utm_campaign = campaign.utm_campaign_id
        self.assertTrue(utm_campaign)
        self.assertEqual(utm_campaign.title, "Autumn win-back")
        self.assertFalse(utm_campaign.is_auto_campaign)
        self.assertEqual(campaign.utm_medium_id, self.whatsapp)
        self.assertEqual(self.whatsapp.name, "WhatsApp")
        self.assertEqual(campaign.utm_source_id, self.winback)
        self.assertEqual(self.winback.name, "Win-back")
        campaign.name = "Autumn win-back 2026"
        self.assertEqual(utm_campaign.title, "Autumn win-back 2026")
        # A new version is a campaign of its own.
        copy = campaign.copy()
        self.assertTrue(copy.utm_campaign_id)
        self.assertNotEqual(copy.utm_campaign_id, utm_campaign)

    def test_converting_order_carries_the_campaign_utm(self):
        enrollment = self._start_and_queue()
        self._send()
        order = self._sell(self.roberta)
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.order_id, order)
        self.assertEqual(order.campaign_id, self.campaign.utm_campaign_id)
        self.assertEqual(order.medium_id, self.whatsapp)
        self.assertEqual(order.source_id, self.winback)
        # Odoo's own sales analysis, grouped by campaign and medium, shows the
        # win-back revenue to the salesperson.
        self.env.flush_all()
        rows = (
            self.env["sale.report"]
            .with_user(self.salesman)
            ._read_group(
                [("order_reference", "=", f"sale.order,{order.id}")],
                ["campaign_id", "medium_id"],
                ["price_subtotal:sum"],
            )
        )
        self.assertEqual(
            rows,
            [(self.campaign.utm_campaign_id, self.whatsapp, order.amount_untaxed)],
        )

    def test_order_with_its_own_utm_keeps_them(self):
        enrollment = self._start_and_queue()
        self._send()
        newsletter = self.env.ref("utm.utm_source_newsletter")
        email = self.env.ref("utm.utm_medium_email")
        spring = self.env["utm.campaign"].create({"title": "Spring newsletter"})
        order = self._sell(
            self.roberta,
            campaign_id=spring.id,
            medium_id=email.id,
            source_id=newsletter.id,
        )
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.order_id, order)
        self.assertEqual(order.campaign_id, spring)
        self.assertEqual(order.medium_id, email)
        self.assertEqual(order.source_id, newsletter)

    def test_holdout_order_is_not_the_campaign_s(self):
        enrollment = self._start_and_queue()
        # Roberta drew the holdout group: she is sent nothing.
        enrollment.write({"is_holdout": True, "state": "holdout", "step_id": False})
        enrollment.message_ids.unlink()
        order = self._sell(self.roberta)
        self.assertEqual(enrollment.state, "converted")
        self.assertFalse(order.campaign_id)
        self.assertFalse(order.medium_id)


@tagged("post_install", "-at_install")
class TestTrackedLinks(UtmCase, HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.news = cls.env["winback.template"].create(
            {
                "name": "winback_spring_news",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "Ciao {{1}}, la primavera è arrivata: {{2}}",
                "param_ids": [
                    (0, 0, {"position": 1, "source": "first_name"}),
                    (0, 0, {"position": 2, "source": "link", "url": SHOP_URL}),
                ],
            }
        )
        cls.campaign.step_ids[0].template_id = cls.news
        cls.marco = cls._customer("Marco Rossi", "+39 333 765 4321")

    def _sent_links(self):
        """The link each customer received, by number."""
        return {
            request["to"]: request["template"]["components"][0]["parameters"][1]["text"]
            for request in self.stub.state.sent()
        }

    def test_a_click_counts_on_the_campaign_and_shows_on_the_enrollment(self):
        enrollments = self._start_and_queue()
        self.assertEqual(self._send(), 2)
        links = self._sent_links()
        roberta = enrollments.filtered(lambda e: e.partner_id == self.roberta)
        marco = enrollments - roberta
        # One tracker for the campaign's link, a suffix per message.
        tracker = self.env["link.tracker"].search(
            [("campaign_id", "=", self.campaign.utm_campaign_id.id)]
        )
        self.assertEqual(len(tracker), 1)
        self.assertEqual(tracker.url, SHOP_URL)
        self.assertEqual(tracker.medium_id, self.whatsapp)
        self.assertEqual(tracker.source_id, self.winback)
        self.assertEqual(
            links["+393331234567"], f"{tracker.short_url}/w/{roberta.message_ids.id}"
        )
        self.assertEqual(
            links["+393337654321"], f"{tracker.short_url}/w/{marco.message_ids.id}"
        )
        self.assertIn(links["+393331234567"], roberta.message_ids.body)

        # WhatsApp fetching a preview of the link is no click.
        path = urlsplit(links["+393331234567"]).path
        preview = self.url_open(
            path, allow_redirects=False, headers={"User-Agent": "WhatsApp/2.24.1 A"}
        )
        self.assertEqual(preview.status_code, 301)
        self.assertEqual(self.campaign.click_count, 0)

        # Roberta taps it: she lands on the shop with the campaign's UTM.
        response = self.url_open(path, allow_redirects=False)
        self.assertEqual(response.status_code, 301)
        target = urlsplit(response.headers["Location"])
        self.assertEqual(target.netloc, "shop.example.com")
        query = parse_qs(target.query)
        self.assertEqual(query["utm_campaign"], [self.campaign.utm_campaign_id.name])
        self.assertEqual(query["utm_medium"], ["WhatsApp"])
        self.assertEqual(query["utm_source"], ["Win-back"])
        self.assertEqual(query["ref"], ["whatsapp"])

        self.env.invalidate_all()
        campaign = self.campaign.with_user(self.user)
        self.assertEqual(campaign.click_count, 1)
        self.assertEqual(campaign.clicked_count, 1)
        action = campaign.with_context(winback_stat="clicked").action_view_stat()
        self.assertEqual(
            self.env["winback.enrollment"]
            .with_user(self.user)
            .search(action["domain"]),
            roberta,
        )
        roberta = roberta.with_user(self.user)
        self.assertTrue(roberta.link_clicked_at)
        self.assertEqual(roberta.link_click_count, 1)
        self.assertFalse(marco.with_user(self.user).link_clicked_at)

        # A second tap counts; the first click's time stays.
        first = roberta.link_clicked_at
        self.url_open(path, allow_redirects=False)
        self.env.invalidate_all()
        self.assertEqual(roberta.link_click_count, 2)
        self.assertEqual(roberta.link_clicked_at, first)
        self.assertEqual(campaign.click_count, 2)

    def test_a_message_id_typed_by_hand_counts_for_nobody(self):
        enrollments = self._start_and_queue()
        self._send()
        path = urlsplit(self._sent_links()["+393331234567"]).path
        code = path.split("/")[2]
        # A message of no campaign (a test send, a reply) is nobody's click.
        reply = self.env["winback.message"].create(
            {"direction": "inbound", "partner_id": self.roberta.id, "body": "Ciao"}
        )
        response = self.url_open(f"/r/{code}/w/{reply.id}", allow_redirects=False)
        self.assertEqual(response.status_code, 301)
        self.env.invalidate_all()
        self.assertEqual(self.campaign.click_count, 1)
        self.assertFalse(enrollments.link_click_ids)
        self.assertFalse(any(enrollments.mapped("link_clicked_at")))
        self.assertEqual(self.url_open("/r/nope/w/1").status_code, 404)

    def test_a_link_placeholder_is_a_web_address(self):
        with self.assertRaises(ValidationError):
            self.news.param_ids[1].url = "shop.example.com spring"
