from odoo.tests import TransactionCase, tagged


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
