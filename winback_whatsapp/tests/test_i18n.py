from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, new_test_user, tagged


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
