import re

from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user, tagged

from odoo.addons.winback_whatsapp.tools.eligibility import INELIGIBLE_REASONS

MODULE = "winback_whatsapp"
# Words and names an Italian screen shows as they are in English.
# "Marketing": Meta's category, which Odoo's own Italian (crm, event) keeps.
SAME_IN_ITALIAN = {
    "WhatsApp",
    "Win-back",
    "Meta",
    "Cloud API",
    "Token",
    "ID",
    "STOP",
    "Marketing",
}


@tagged("post_install", "-at_install")
class TestItalian(TransactionCase):
    def test_italian_user_sees_italian_reporting(self):
        """With Italian active, the Reporting menu, the report's measures and
        the settings read in Italian (i18n/it.po)."""
        self.env["res.lang"]._activate_lang("it_IT")
        module = self.env["ir.module.module"].search(
            [("name", "=", "winback_whatsapp")]
        )
        module._update_translations("it_IT", overwrite=True)
        env_it = self.env(context={"lang": "it_IT"})
        menu = env_it.ref("winback_whatsapp.menu_winback_reporting")
        self.assertEqual(menu.name, "Analisi")
        fields_it = env_it["winback.report"].fields_get(
            ["conversion_rate", "is_holdout"], ["string"]
        )
        self.assertEqual(
            fields_it["conversion_rate"]["string"], "Tasso di conversione (%)"
        )
        self.assertEqual(fields_it["is_holdout"]["string"], "Gruppo di controllo")
        action = env_it.ref("winback_whatsapp.winback_lift_action")
        self.assertEqual(action.name, "Incremento sul gruppo di controllo")
        # The webhook side reads in Italian too.
        self.assertEqual(
            env_it.ref("winback_whatsapp.menu_winback_unmatched").name,
            "Risposte non abbinate",
        )
        self.assertEqual(
            env_it["winback.message"].fields_get(["inbound_type"], ["string"])[
                "inbound_type"
            ]["string"],
            "Tipo di messaggio WhatsApp",
        )
        # English stays the source language.
        self.assertEqual(
            self.env(context={"lang": "en_US"})
            .ref("winback_whatsapp.menu_winback_reporting")
            .name,
            "Reporting",
        )

    def test_italian_user_sees_new_labels_and_refusals(self):
        """An Italian salesperson reads the newer strings in Italian: the
        enrollment state of a purchase outside the attribution window, the
        template's quick-reply buttons and their STOP toggle, the data
        retention setting, and the server's refusal of a manager-only button."""
        self.env["res.lang"]._activate_lang("it_IT")
        module = self.env["ir.module.module"].search(
            [("name", "=", "winback_whatsapp")]
        )
        module._update_translations("it_IT", overwrite=True)
        env_it = self.env(context={"lang": "it_IT"})
        states = dict(
            env_it["winback.enrollment"].fields_get(["state"], ["selection"])["state"][
                "selection"
            ]
        )
        self.assertEqual(states["bought"], "Acquisto (non attribuito)")
        self.assertEqual(states["converted"], "Convertiti")
        self.assertEqual(
            env_it["winback.template"].fields_get(["button_ids"], ["string"])[
                "button_ids"
            ]["string"],
            "Pulsanti di risposta rapida",
        )
        self.assertIn(
            "disiscrive dai messaggi promozionali",
            env_it["winback.template.button"].fields_get(["is_stop"], ["help"])[
                "is_stop"
            ]["help"],
        )
        self.assertEqual(
            env_it["res.config.settings"].fields_get(
                ["winback_message_retention_days"], ["string"]
            )["winback_message_retention_days"]["string"],
            "Conserva i contenuti dei messaggi (giorni)",
        )
        # A Win-back user (not administrator) clicks "Recompute now": the
        # server refuses, in the user's language, naming the group needed.
        salesperson = new_test_user(
            self.env,
            login="i18n_sales_it",
            groups="winback_whatsapp.group_winback_user",
            lang="it_IT",
        )
        segment = self.env["winback.segment"].search(
            [("company_id", "=", self.env.company.id)], limit=1
        )
        self.assertTrue(segment)
        with self.assertRaises(AccessError) as refusal:
            segment.with_user(salesperson).with_context(
                lang=salesperson.lang
            ).action_recompute()
        self.assertIn("Solo il gruppo", str(refusal.exception))
        self.assertIn("Amministratore può farlo", str(refusal.exception))


@tagged("post_install", "-at_install")
class TestEverythingInItalian(TransactionCase):
    """Every string of the addon an Italian user sees on its menus, its views
    and its eligibility reasons is translated (i18n/it.po)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("it_IT")
        cls.env["ir.module.module"]._load_module_terms(
            [MODULE], ["it_IT"], overwrite=True
        )
        cls.env_it = cls.env(context={"lang": "it_IT"})

    def _records(self, model):
        return self.env[model].browse(
            self.env["ir.model.data"]
            .search([("module", "=", MODULE), ("model", "=", model)])
            .mapped("res_id")
        )

    @staticmethod
    def _same_in_italian(term):
        """A term that needs no translation: only digits, signs, the allowed
        words, placeholders and field names."""
        text = re.sub(r"<[^>]+>", " ", term)  # the words of a markup term
        text = re.sub(r"%\(\w+\)s|\{\{\w+\}\}|\b[a-z]+(_[a-z0-9]+)+\b", " ", text)
        for word in sorted(SAME_IN_ITALIAN, key=len, reverse=True):
            text = text.replace(word, " ")
        return not re.search(r"[A-Za-z]{2,}", text)

    def _untranslated(self, pairs):
        return sorted(
            {
                english
                for english, italian in pairs
                if english.strip() == (italian or "").strip()
                and not self._same_in_italian(english)
            }
        )

    def test_menus_are_in_italian(self):
        menus = self._records("ir.ui.menu")
        self.assertGreater(len(menus), 10)
        pairs = [(m.name, m.with_env(self.env_it).name) for m in menus]
        self.assertEqual(self._untranslated(pairs), [])

    def test_views_are_in_italian(self):
        """Term by term, the Italian arch of each view of the addon differs
        from the English one, but for names that are the same in Italian."""
        views = self._records("ir.ui.view")
        self.assertGreater(len(views), 20)
        field = self.env["ir.ui.view"]._fields["arch_db"]
        pairs = []
        for view in views:
            stored = field._get_stored_translations(view) or {}
            english = stored.get("en_US")
            if not english:
                continue
            terms = field.get_translation_dictionary(
                english, {"it_IT": stored.get("it_IT", english)}
            )
            pairs += [(term, by_lang["it_IT"]) for term, by_lang in terms.items()]
        self.assertGreater(len(pairs), 100)
        self.assertEqual(self._untranslated(pairs), [])

    def test_eligibility_reasons_are_in_italian(self):
        pairs = [
            (self.env._(label), self.env_it._(label))
            for _c, label in INELIGIBLE_REASONS
        ]
        self.assertEqual(self._untranslated(pairs), [])
        labels = dict(INELIGIBLE_REASONS)
        code = "no_consent"
        self.assertEqual(
            self.env_it._(labels[code]), "Nessun consenso al marketing WhatsApp"
        )

    def test_segment_tags_are_in_italian(self):
        """The partner tags the segments keep read "Win-back: Tiepidi" in
        Italian, "Win-back: Lukewarm" in English."""
        lukewarm = self.env.ref("winback_whatsapp.segment_lukewarm")
        self.assertTrue(lukewarm.tag_id)
        self.assertEqual(lukewarm.tag_id.name, "Win-back: Lukewarm")
        self.assertEqual(
            lukewarm.tag_id.with_env(self.env_it).name, "Win-back: Tiepidi"
        )
        # A tag created while Italian is installed reads in both languages.
        other = self.env["res.company"].create({"name": "Negozio due"})
        cold = self.env["winback.segment"].search(
            [("company_id", "=", other.id), ("min_days", "=", 180)]
        )
        cold._ensure_tags()
        self.assertEqual(cold.tag_id.name, "Win-back: Cold")
        self.assertEqual(cold.tag_id.with_env(self.env_it).name, "Win-back: Freddi")
