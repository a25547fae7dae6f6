"""What a win-back costs, and whether it paid: Meta's rate card, the cost
of each message from its status callbacks, the campaign's estimate before
it starts, and the return on investment against the holdout group."""

from datetime import date, datetime, timedelta
from unittest.mock import patch

from psycopg2 import IntegrityError

from odoo import fields
from odoo.tests import HttpCase, TransactionCase, new_test_user, tagged
from odoo.tools import formatLang, mute_logger

from ..models.winback_cost import WinbackCost
from ..tools import webhook_simulator as simulator
from ..tools.webhook_parser import parse_status
from .common import WinbackDataMixin, post_webhook
from .test_send import WinbackSendCase

SECRET = "cost-app-secret"
PNID = "106540352249999"
NUMBER = "393331234567"
DELIVERED_ON = datetime(2026, 1, 1, 9, 0)
MARKETING = {
    "billable": True,
    "pricing_model": "PMP",
    "category": "marketing",
    "type": "regular",
}
FREE = {
    "billable": False,
    "pricing_model": "PMP",
    "category": "service",
    "type": "free_customer_service",
}


def _ts(when):
    return str(int((when - datetime(1970, 1, 1)).total_seconds()))


@tagged("post_install", "-at_install")
class TestMessageCost(HttpCase):
    """Meta's status callbacks, posted over HTTP and signed, give each
    message its billable flag and its cost at the rate card's price."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.currency = cls.env.company.currency_id
        cls.account = cls.env["winback.account"].create(
            {"name": "Cost number", "phone_number_id": PNID, "app_secret": SECRET}
        )
        cls.partner = cls.env["res.partner"].create(
            {"name": "Mario Costa", "mobile": "+" + NUMBER}
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {"name": "Cost campaign", "account_id": cls.account.id}
        )
        cls.template = cls.env["winback.template"].create(
            {"name": "winback_cost", "account_id": cls.account.id, "body": "Hi"}
        )
        cls.enrollment = cls.env["winback.enrollment"].create(
            {
                "partner_id": cls.partner.id,
                "campaign_id": cls.campaign.id,
                "phone_e164": "+" + NUMBER,
            }
        )
        # This year's Italian price, in the company's currency: it takes
        # over from the card shipped with the addon.
        cls.env["winback.rate"].create(
            {
                "market": "Italy",
                "country_id": cls.env.ref("base.it").id,
                "category": "marketing",
                "price": 0.0691,
                "currency_id": cls.currency.id,
                "date_start": date(2026, 1, 1),
                "source": "Test card",
            }
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    def _message(self, wamid, partner=None, number="+" + NUMBER):
        return self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "sent",
                "enrollment_id": self.enrollment.id,
                "partner_id": (partner or self.partner).id,
                "account_id": self.account.id,
                "company_id": self.env.company.id,
                "template_id": self.template.id,
                "phone_e164": number,
                "wamid": wamid,
            }
        )

    def _post(self, *statuses):
        payload = simulator.envelope(
            simulator.change_value(
                simulator.metadata(PNID, "15550001111"), statuses=list(statuses)
            ),
            waba_id="WABA_ID",
        )
        post_webhook(self, self.url, payload, SECRET)

    def _status(self, wamid, state, pricing=None, when=DELIVERED_ON, **extra):
        if pricing:
            extra["pricing"] = pricing
        return simulator.status(wamid, state, _ts(when), NUMBER, **extra)

    def test_the_number_gives_the_country(self):
        message = self._message("wamid.COUNTRY")
        self.assertEqual(message.country_id, self.env.ref("base.it"))

    def test_cost_only_for_billable_delivered_messages(self):
        delivered = self._message("wamid.DELIVERED")
        only_sent = self._message("wamid.SENT")
        free = self._message("wamid.FREE")
        self._post(
            self._status("wamid.DELIVERED", "sent", MARKETING),
            self._status("wamid.DELIVERED", "delivered", MARKETING),
            self._status("wamid.SENT", "sent", MARKETING),
            self._status("wamid.FREE", "delivered", FREE),
        )
        self.assertEqual(delivered.state, "delivered")
        self.assertTrue(delivered.billable)
        self.assertEqual(delivered.pricing_category, "marketing")
        self.assertEqual(delivered.pricing_model, "PMP")
        self.assertAlmostEqual(delivered.cost, 0.0691, places=4)
        self.assertEqual(delivered.rate_id.source, "Test card")
        # Billable, but never delivered: nothing to pay.
        self.assertTrue(only_sent.billable)
        self.assertEqual(only_sent.cost, 0.0)
        # Delivered, free (a reply inside the customer service window).
        self.assertFalse(free.billable)
        self.assertEqual(free.pricing_type, "free_customer_service")
        self.assertEqual(free.cost, 0.0)
        # Read later: still charged once.
        self._post(
            self._status(
                "wamid.DELIVERED", "read", MARKETING, DELIVERED_ON + timedelta(hours=1)
            )
        )
        self.assertEqual(delivered.state, "read")
        self.assertAlmostEqual(delivered.cost, 0.0691, places=4)
        self.assertAlmostEqual(self.campaign.cost, 0.0691, places=2)

    def test_cost_on_the_one_by_one_path(self):
        """A call holding a failed status is applied status by status: the
        delivered one of the same call is priced all the same, the failed
        one costs nothing."""
        delivered = self._message("wamid.ONE")
        failed = self._message("wamid.TWO")
        error = {"code": 131026, "title": "Message undeliverable"}
        self._post(
            self._status("wamid.ONE", "delivered", MARKETING),
            self._status("wamid.TWO", "failed", errors=[error]),
        )
        self.assertEqual(failed.state, "failed")
        self.assertEqual(failed.cost, 0.0)
        self.assertEqual(delivered.state, "delivered")
        self.assertAlmostEqual(delivered.cost, 0.0691, places=4)

    def test_price_in_force_on_the_day_of_delivery(self):
        """Meta changes its prices: a message delivered before the new
        price pays the old one; the card's Other line prices a country the
        card does not list, converted into the company's currency."""
        self.env["winback.rate"].create(
            {
                "market": "Italy",
                "country_id": self.env.ref("base.it").id,
                "category": "marketing",
                "price": 0.0900,
                "currency_id": self.currency.id,
                "date_start": date(2026, 2, 1),
            }
        )
        january = self._message("wamid.JAN")
        february = self._message("wamid.FEB")
        self._post(
            self._status("wamid.JAN", "delivered", MARKETING),
            self._status(
                "wamid.FEB", "delivered", MARKETING, DELIVERED_ON + timedelta(days=40)
            ),
        )
        self.assertAlmostEqual(january.cost, 0.0691, places=4)
        self.assertAlmostEqual(february.cost, 0.0900, places=4)

    def test_other_market_in_another_currency(self):
        other = self.env.ref("base.EUR" if self.currency.name != "EUR" else "base.USD")
        other.active = True
        self.env["res.currency.rate"].create(
            {
                "currency_id": other.id,
                "name": date(2025, 12, 1),
                "rate": 0.5,  # one unit of the company's currency buys 0.5
                "company_id": self.env.company.id,
            }
        )
        self.env["winback.rate"].create(
            {
                "market": "Other",
                "category": "marketing",
                "price": 0.03,
                "currency_id": other.id,
                "date_start": date(2026, 1, 1),
            }
        )
        egypt = self.env["res.partner"].create(
            {"name": "Amira", "mobile": "+201001234567"}
        )
        message = self._message("wamid.EG", egypt, "+201001234567")
        self.assertEqual(message.country_id, self.env.ref("base.eg"))
        self._post(self._status("wamid.EG", "delivered", MARKETING))
        self.assertAlmostEqual(message.cost, 0.06, places=4)

    def test_parser_reads_pricing(self):
        event = parse_status(self._status("wamid.P", "sent", MARKETING))
        self.assertTrue(event.pricing.charged)
        self.assertEqual(event.pricing.category, "marketing")
        # Without billable (deprecated with per-message pricing): the type.
        event = parse_status(
            self._status("wamid.P", "sent", {"type": "free_entry_point"})
        )
        self.assertFalse(event.pricing.charged)
        self.assertIsNone(parse_status(self._status("wamid.P", "sent")).pricing)


@tagged("post_install", "-at_install")
class TestReturnOnInvestment(WinbackDataMixin, TransactionCase):
    """A worked example. Four treated customers, two holdout customers:

    - treated: two converted (100 each), one replied, one silent; each
      received both steps, delivered, marketing at 2.50: cost 8 x 2.50 = 20;
    - holdout: nobody converted.

    Incremental revenue = (200 / 4 - 0 / 2) x 4 = 200; incremental
    conversions = (2/4 - 0/2) x 4 = 2; cost per reply = 20 / 1 = 20; cost per
    conversion = 20 / 2 = 10; cost per incremental conversion = 20 / 2 = 10;
    ROI = (200 - 20 - 0) / (20 + 0) = 900 %; with 30 of discount granted,
    (200 - 20 - 30) / (20 + 30) = 300 %."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls.env["winback.rate"].create(
            {
                "market": "Italy",
                "country_id": cls.env.ref("base.it").id,
                "category": "marketing",
                "price": 2.5,
                "currency_id": cls.env.company.currency_id.id,
                "date_start": date(2026, 1, 1),
            }
        )
        delivered = [(cls.step1, "delivered"), (cls.step2, "delivered")]
        warm = cls.segment_warm
        cls._enroll(warm, "converted", revenue=100.0, messages=delivered)
        cls._enroll(warm, "converted", revenue=100.0, messages=delivered)
        cls._enroll(warm, "replied", messages=delivered)
        cls._enroll(warm, "running", messages=delivered)
        cls._enroll(warm, "running", holdout=True)
        cls._enroll(warm, "running", holdout=True)
        messages = cls.campaign.enrollment_ids.message_ids
        messages.sudo().write(
            {
                "billable": True,
                "pricing_category": "marketing",
                "delivered_at": datetime(2026, 1, 2, 10, 0),
            }
        )
        cls.env["winback.cost"]._price_messages(messages.ids)
        cls.user = new_test_user(
            cls.env, login="roi_user", groups="winback_whatsapp.group_winback_user"
        )

    def test_worked_example_on_the_lift_report(self):
        row = (
            self.env["winback.lift"]
            .with_user(self.user)
            .search([("campaign_id", "=", self.campaign.id)])
        )
        self.assertEqual(len(row), 1)
        self.assertAlmostEqual(row.cost, 20.0)
        self.assertAlmostEqual(row.incremental_revenue, 200.0)
        self.assertAlmostEqual(row.incremental_conversions, 2.0)
        self.assertAlmostEqual(row.cost_per_reply, 20.0)
        self.assertAlmostEqual(row.cost_per_conversion, 10.0)
        self.assertAlmostEqual(row.cost_per_incremental, 10.0)
        self.assertAlmostEqual(row.discount, 0.0)
        self.assertAlmostEqual(row.roi, 900.0)

    def test_worked_example_on_the_campaign(self):
        campaign = self.campaign.with_user(self.user)
        self.assertAlmostEqual(campaign.cost, 20.0)
        self.assertAlmostEqual(campaign.cost_per_reply, 20.0)
        self.assertAlmostEqual(campaign.cost_per_conversion, 10.0)
        self.assertAlmostEqual(campaign.cost_per_incremental, 10.0)
        self.assertAlmostEqual(campaign.roi, 900.0)

    def test_discount_granted_by_the_coupon_module(self):
        """The loyalty glue module overrides the hook: its discount counts
        with the messaging cost."""
        key = (self.campaign.id, self.segment_warm.id)
        with patch.object(
            WinbackCost, "_discount_granted", lambda self, ids: {key: 30.0}
        ):
            campaign = self.campaign.with_user(self.user)
            self.assertAlmostEqual(campaign.discount_granted, 30.0)
            self.assertAlmostEqual(campaign.roi, 300.0)
        self.assertEqual(
            self.env["winback.cost"]._figures(20.0, 1, 2, 2.0, 200.0, 30.0)["roi"],
            3.0,
        )

    def test_cost_per_campaign_and_segment_in_the_results(self):
        groups = (
            self.env["winback.report"]
            .with_user(self.user)
            .read_group(
                [("campaign_id", "=", self.campaign.id)],
                ["cost:sum", "cost_per_reply", "cost_per_conversion"],
                ["segment_id"],
            )
        )
        self.assertEqual(len(groups), 1)
        self.assertAlmostEqual(groups[0]["cost"], 20.0)
        self.assertAlmostEqual(groups[0]["cost_per_reply"], 20.0)
        self.assertAlmostEqual(groups[0]["cost_per_conversion"], 10.0)


@tagged("post_install", "-at_install")
class TestEstimateBeforeStart(WinbackSendCase):
    """Before the campaign starts, the marketer sees what it will cost:
    eligible customers x steps x the rate of their country."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Rate = cls.env["winback.rate"]
        yesterday = fields.Date.today() - timedelta(days=1)
        for country, price in (("base.it", 0.05), ("base.de", 0.10)):
            Rate.create(
                {
                    "market": country,
                    "country_id": cls.env.ref(country).id,
                    "category": "marketing",
                    "price": price,
                    "currency_id": cls.env.company.currency_id.id,
                    "date_start": yesterday,
                }
            )
        # Roberta (+39) is eligible; so are Luca (+39) and Jonas, an Italian
        # customer with a German number; Anna gave no consent.
        cls._customer("Luca Verdi", "+39 333 765 4321")
        cls._customer("Jonas Weber", "+49 151 23456789")
        cls._customer("Anna Neri", "+39 333 111 2222", consent=False)
        cls.marketer = new_test_user(
            cls.env,
            login="cost_marketer",
            groups="sales_team.group_sale_salesman,"
            "winback_whatsapp.group_winback_manager",
        )

    def test_estimate_is_shown_before_start(self):
        campaign = self.campaign.with_user(self.marketer)
        campaign.action_preview()
        self.assertEqual(campaign.state, "draft")
        self.assertEqual(campaign.eligible_count, 3)
        # First message: 2 x 0.05 + 1 x 0.10; every step: twice that.
        self.assertAlmostEqual(campaign.cost_estimate, 0.20)
        self.assertAlmostEqual(campaign.cost_estimate_max, 0.40)
        notification = campaign.action_start()
        message = notification["params"]["message"]
        currency = campaign.currency_id
        self.assertIn(formatLang(self.env, 0.20, currency_obj=currency), message)
        self.assertIn(formatLang(self.env, 0.40, currency_obj=currency), message)

    def test_holdout_receives_nothing(self):
        self.campaign.holdout_percent = 50
        campaign = self.campaign.with_user(self.marketer)
        campaign.action_preview()
        self.assertAlmostEqual(campaign.cost_estimate, 0.10)
        self.assertAlmostEqual(campaign.cost_estimate_max, 0.20)


@tagged("post_install", "-at_install")
class TestRateCard(TransactionCase):
    """The card ships with its date and source, and Meta's card is imported
    from a CSV file with Odoo's import."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env,
            login="rate_manager",
            groups="winback_whatsapp.group_winback_manager",
        )

    def test_shipped_card_states_date_and_source(self):
        italy = self.env.ref("winback_whatsapp.rate_it_marketing")
        self.assertEqual(italy.date_start, date(2025, 7, 1))
        self.assertIn("SAMPLE", italy.source)
        other = self.env.ref("winback_whatsapp.rate_other_marketing")
        self.assertFalse(other.country_id)

    def test_one_price_per_market_category_and_date(self):
        italy = self.env.ref("winback_whatsapp.rate_it_marketing")
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            italy.copy()
        other = self.env.ref("winback_whatsapp.rate_other_marketing")
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"):
            other.copy()
        later = italy.with_user(self.manager).copy({"date_start": date(2026, 7, 1)})
        self.assertEqual(later.price, italy.price)

    def test_csv_import(self):
        csv = (
            "Market,Country,Category,Price,Currency,Effective from,Source\n"
            "Italy,Italy,Marketing,0.0700,USD,2026-07-01,Meta card 2026-07\n"
            "Rest of Western Europe,Austria,marketing,0.0600,USD,2026-07-01,"
            "Meta card 2026-07\n"
            "Other,,Utility,0.0080,USD,2026-07-01,Meta card 2026-07\n"
        )
        importer = (
            self.env["base_import.import"]
            .with_user(self.manager)
            .create(
                {
                    "res_model": "winback.rate",
                    "file": csv.encode(),
                    "file_name": "meta_rates.csv",
                    "file_type": "text/csv",
                }
            )
        )
        columns = [
            "market",
            "country_id",
            "category",
            "price",
            "currency_id",
            "date_start",
            "source",
        ]
        result = importer.execute_import(
            columns,
            columns,
            {
                "quoting": '"',
                "separator": ",",
                "has_headers": True,
                "date_format": "%Y-%m-%d",
                "float_decimal_separator": ".",
                "float_thousand_separator": ",",
            },
        )
        self.assertFalse(result["messages"], result["messages"])
        rates = self.env["winback.rate"].browse(result["ids"])
        self.assertEqual(
            rates.mapped("country_id"),
            self.env.ref("base.it") | self.env.ref("base.at"),
        )
        italy = rates.filtered(lambda r: r.country_id.code == "IT")
        self.assertEqual(italy.category, "marketing")
        self.assertAlmostEqual(italy.price, 0.07)
        self.assertEqual(italy.date_start, date(2026, 7, 1))
        other = rates.filtered(lambda r: not r.country_id)
        self.assertEqual(other.category, "utility")
        # From July, Italy's new price; before it, the shipped one.
        Cost = self.env["winback.cost"]
        company = self.env.company
        it = self.env.ref("base.it")
        self.assertAlmostEqual(
            Cost._rate_price(company, it, "marketing", date(2026, 7, 2)),
            self.env.ref("base.USD")._convert(
                0.07, company.currency_id, company, date(2026, 7, 2), round=False
            ),
        )
