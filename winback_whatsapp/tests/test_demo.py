"""The demo data (``make demo``), loaded as Odoo loads it: believable and
lawful. The test database has no demo data, so the test loads the addon's
demo files itself, in its own transaction (rolled back)."""

import re

import phonenumbers

from odoo.tests import TransactionCase, tagged
from odoo.tools import convert_file

MODULE = "winback_whatsapp"
DEMO_FILES = (
    "demo/winback_demo.xml",
    "demo/winback_demo_customers.xml",
    "demo/winback_intent_rule_demo.xml",
    "demo/winback_demo_rhythm.xml",
)


@tagged("post_install", "-at_install")
class TestDemoData(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        idref = {}
        for filename in DEMO_FILES:
            convert_file(cls.env, MODULE, filename, idref, mode="init", kind="demo")
        cls.env.flush_all()
        records = cls.env["ir.model.data"].search([("module", "=", MODULE)])

        def demo(model):
            return cls.env[model].browse(
                records.filtered(lambda d: d.model == model).mapped("res_id")
            )

        cls.partners = demo("res.partner")
        cls.enrollments = demo("winback.enrollment")
        cls.templates = demo("winback.template")

    def test_only_consenting_customers_are_enrolled(self):
        self.assertGreater(len(self.enrollments), 50)
        without = self.enrollments.partner_id.filtered(
            lambda p: not (p.winback_consent_date and p.winback_consent_source)
        )
        self.assertFalse(without, "enrolled without WhatsApp marketing consent")
        # Not everyone consented: the others are customers too, left out.
        self.assertTrue(
            self.partners.filtered(lambda p: not p.winback_consent_date)
            .sale_order_ids
        )  # fmt: skip

    def test_numbers_are_e164_in_the_shop_country(self):
        company = self.env.ref("base.main_company")
        self.assertEqual(company.country_id, self.env.ref("base.it"))
        customers = self.partners.filtered("sale_order_ids")
        self.assertGreater(len(customers), 150)
        for partner in customers:
            number = partner.mobile or partner.phone
            self.assertRegex(number, r"^\+\d{8,15}$", partner.name)
            self.assertEqual(number, partner.phone_sanitized, partner.name)
            parsed = phonenumbers.parse(number)
            self.assertTrue(phonenumbers.is_valid_number(parsed), number)
            self.assertEqual(
                phonenumbers.region_code_for_number(parsed),
                company.country_id.code,
                partner.name,
            )
            self.assertEqual(partner.country_id, company.country_id)
        for enrollment in self.enrollments:
            self.assertEqual(enrollment.phone_e164, enrollment.partner_id.mobile)

    def test_texts_in_italian_and_english(self):
        by_language = {}
        for template in self.templates:
            by_language.setdefault(template.language, set()).add(template.name)
        self.assertEqual(set(by_language), {"it", "en"})
        self.assertEqual(by_language["it"], by_language["en"])
        italian = self.templates.filtered(lambda t: t.language == "it")
        self.assertTrue(all(re.match(r"Ciao \{\{1\}\}", t.body) for t in italian))
        # The Italian shop's campaigns send the Italian templates.
        steps = self.enrollments.campaign_id.step_ids
        self.assertEqual(set(steps.template_id.mapped("language")), {"it"})

    def test_buttons_and_keywords_carry_reply_intents(self):
        """The offer templates, in both languages, answer with Interested,
        Not now and Stop buttons; the shop's keyword rules read English and
        Italian replies."""
        offers = self.templates.filtered(
            lambda t: "not_now" in t.button_ids.mapped("intent")
        )
        self.assertEqual(sorted(offers.mapped("language")), ["en", "it"])
        for offer in offers:
            self.assertEqual(
                offer.button_ids.sorted("index").mapped("intent"),
                ["interested", "stop", "not_now"],
            )
        Rule = self.env["winback.intent.rule"]
        company = self.env.company
        for lang, text, intent in (
            ("it_IT", "Grazie, per ora no: magari più avanti", "not_now"),
            ("it_IT", "Sì, mi interessa!", "interested"),
            ("it_IT", "Non mi interessa", "stop"),
            ("en_US", "Not now, thanks", "not_now"),
            ("en_US", "I'm interested", "interested"),
            ("en_US", "What time do you open?", "question"),
        ):
            self.assertEqual(Rule._intent_of_text(text, company, lang), intent, text)

    def test_customers_with_different_rhythms(self):
        """The demo shows the two segment modes apart: by days the weekly
        customer away 40 days is in no segment and the yearly one at 200
        days is cold; by their own rhythm it is the other way round."""
        weekly = self.env.ref("winback_whatsapp.partner_rhythm_weekly")
        monthly = self.env.ref("winback_whatsapp.partner_rhythm_monthly")
        yearly = self.env.ref("winback_whatsapp.partner_rhythm_yearly")
        twice = self.env.ref("winback_whatsapp.partner_rhythm_twice")
        lukewarm = self.env.ref("winback_whatsapp.segment_lukewarm")
        cooling = self.env.ref("winback_whatsapp.segment_cooling")
        cold = self.env.ref("winback_whatsapp.segment_cold")
        company = self.env.company
        Recompute = self.env["winback.segment.recompute"]
        Recompute._recompute_company(company)
        self.assertEqual(
            [p.winback_segment_id for p in (weekly, monthly, yearly, twice)],
            [self.env["winback.segment"], lukewarm, cold, cooling],
        )
        self.assertEqual(weekly.winback_typical_interval, 7.0)
        self.assertEqual(yearly.winback_typical_interval, 365.0)
        self.assertTrue(twice.winback_rhythm_fallback)
        company.winback_segment_mode = "factor"
        Recompute._recompute_company(company)
        self.assertEqual(
            [p.winback_segment_id for p in (weekly, monthly, yearly, twice)],
            [cold, cooling, self.env["winback.segment"], cooling],
        )
