import time
from datetime import timedelta
from types import SimpleNamespace

import psycopg2

from odoo import api, fields
from odoo.exceptions import AccessError
from odoo.tests import Form, HttpCase, freeze_time, new_test_user, tagged
from odoo.tools import mute_logger

from ..tools import webhook_simulator as simulator
from . import test_webhook
from .cloud_api_stub import PHONE_NUMBER_ID
from .common import WinbackCase
from .test_send import WinbackSendCase


@tagged("post_install", "-at_install")
class TestReplyIntents(WinbackSendCase, HttpCase):
    """A reply is an intent: the administrator gives each quick-reply button
    and a few keywords their meaning; the customers tap or write over Meta's
    signed webhook; the salesperson gets an opportunity, a to-do or nothing,
    and the report counts each intent."""

    _post = test_webhook.TestWebhook._post

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("it_IT")
        cls.account.app_secret = test_webhook.SECRET
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"
        cls.admin_user = new_test_user(
            cls.env, "wb_intent_admin", groups="winback_whatsapp.group_winback_manager"
        )
        cls.salesman = new_test_user(
            cls.env,
            "wb_intent_sales",
            groups="sales_team.group_sale_salesman,winback_whatsapp.group_winback_user",
            name="Sally Sales",
        )
        cls.offer.button_ids = [
            (5, 0, 0),
            (0, 0, {"index": 0, "text": "Dimmi di più", "payload": "P_MORE"}),
            (0, 0, {"index": 1, "text": "Non ora", "payload": "P_LATER"}),
            (0, 0, {"index": 2, "text": "Stop", "payload": "P_STOP"}),
        ]
        cls.roberta.write({"lang": "it_IT", "user_id": cls.salesman.id})

    def _configure(self):
        """The administrator, in the template form and in Configuration >
        Reply intents, as they would."""
        template = self.offer.with_user(self.admin_user)
        with Form(template) as form:
            with form.button_ids.edit(0) as line:
                self.assertEqual(line.intent, "question", "the default")
                line.intent = "interested"
            with form.button_ids.edit(1) as line:
                line.intent = "not_now"
        self.assertEqual(
            self.offer.button_ids.sorted("index").mapped("intent"),
            ["interested", "not_now", "stop"],
        )
        Rule = self.env["winback.intent.rule"].with_user(self.admin_user)
        for lang, intent, keywords in (
            ("it_IT", "stop", "non mi interessa, non scrivetemi"),
            ("it_IT", "not_now", "non ora, più avanti"),
            ("it_IT", "interested", "mi interessa, volentieri"),
            ("en_US", "interested", "interested"),
        ):
            with Form(Rule) as form:
                form.lang = lang
                form.intent = intent
                form.keywords = keywords

    def _sent(self):
        """Roberta (and whoever else is in the segment) enrolled, the first
        step sent through the Cloud API stub; their enrollments."""
        enrollments = self._start_and_queue()
        self.assertEqual(self._send(), len(enrollments))
        return enrollments

    def _reply(self, enrollment, msg_type, content, wamid):
        """The customer's message now, answering the step sent."""
        sent = enrollment.message_ids.filtered(lambda m: m.direction == "outbound")
        number = enrollment.partner_id.phone_sanitized.lstrip("+")
        msg = simulator.message(
            number,
            wamid,
            msg_type,
            content,
            time.time(),
            context=("390212345678", sent.wamid),
        )
        value = simulator.change_value(
            metadata={
                "display_phone_number": "390212345678",
                "phone_number_id": PHONE_NUMBER_ID,
            },
            contacts=[simulator.contact(number, enrollment.partner_id.name)],
            messages=[msg],
        )
        response = self._post(simulator.envelope(value, waba_id="WABA_ID"))
        self.assertEqual(response.status_code, 200)
        self.env.invalidate_all()

    def _tap(self, enrollment, payload, text, wamid):
        self._reply(enrollment, "button", {"payload": payload, "text": text}, wamid)

    def _write(self, enrollment, text, wamid):
        self._reply(enrollment, "text", {"body": text}, wamid)

    def _activities(self, partner):
        kind = self.env.ref("winback_whatsapp.mail_activity_type_winback_reply")
        return partner.activity_ids.filtered(lambda a: a.activity_type_id == kind)

    def _leads(self, partner):
        return self.env["crm.lead"].search([("partner_id", "=", partner.id)])

    # ------------------------------------------------------------

    def test_sales_users_read_rules_administrators_write_them(self):
        self._configure()
        rules = self.env["winback.intent.rule"].with_user(self.salesman).search([])
        self.assertEqual(len(rules), 4)
        with self.assertRaises(AccessError):
            rules[:1].write({"keywords": "yes"})
        with self.assertRaises(AccessError):
            self.offer.button_ids[:1].with_user(self.salesman).write(
                {"intent": "interested"}
            )

    def test_interested_makes_one_opportunity_even_tapped_twice(self):
        self._configure()
        enrollment = self._sent()
        self._tap(enrollment, "P_MORE", "Dimmi di più", "wamid.TAP.1")
        # WhatsApp users tap again when nothing seems to happen.
        self._tap(enrollment, "P_MORE", "Dimmi di più", "wamid.TAP.2")
        lead = self._leads(self.roberta)
        self.assertEqual(len(lead), 1)
        self.assertEqual(lead.type, "opportunity")
        self.assertEqual(lead.user_id, self.salesman, "the customer's salesperson")
        self.assertEqual(enrollment.lead_id, lead)
        self.assertEqual(enrollment.state, "replied")
        self.assertEqual(enrollment.reply_intent, "interested")
        notes = lead.message_ids.mapped("body")
        conversation = [b for b in notes if "WhatsApp conversation" in b]
        self.assertEqual(len(conversation), 2, "each tap is on the opportunity")
        self.assertIn("Dimmi di più", conversation[-1])
        self.assertIn("winback_cold_offer", conversation[-1], "what was answered")
        self.assertFalse(self._activities(self.roberta), "the opportunity is the to-do")
        # The salesperson sees it in their pipeline.
        mine = (
            self.env["crm.lead"]
            .with_user(self.salesman)
            .search([("user_id", "=", self.salesman.id)])
        )
        self.assertEqual(mine, lead)
        # However the taps race, the database keeps one per enrollment.
        with (
            self.assertRaises(psycopg2.errors.UniqueViolation),
            mute_logger("odoo.sql_db"),
            self.env.cr.savepoint(),
        ):
            self.env["crm.lead"].create(
                {"name": "Again", "winback_enrollment_id": enrollment.id}
            )

    def test_won_opportunity_is_a_conversion_with_its_revenue(self):
        self._configure()
        enrollment = self._sent()
        self._tap(enrollment, "P_MORE", "Dimmi di più", "wamid.TAP.1")
        lead = enrollment.lead_id.with_user(self.salesman)
        lead.expected_revenue = 480.0
        lead.action_set_won()
        self.assertEqual(enrollment.state, "converted")
        self.assertEqual(enrollment.revenue, 480.0)
        self.env.flush_all()  # the salesperson's request ends here
        report = self.env["winback.report"].with_user(self.salesman)
        [row] = report.read_group(
            [("campaign_id", "=", self.campaign.id)],
            ["converted:sum", "revenue:sum", "interested:sum"],
            ["campaign_id"],
        )
        self.assertEqual(
            (row["converted"], row["revenue"], row["interested"]), (1, 480.0, 1)
        )

    def test_not_now_snoozes_then_re_enrolls_after_the_snooze_not_before(self):
        self._configure()
        self.campaign.snooze_days = 30
        enrollment = self._sent()
        tapped = fields.Datetime.now()
        self._tap(enrollment, "P_LATER", "Non ora", "wamid.TAP.LATER")
        self.assertEqual(enrollment.state, "snoozed")
        self.assertEqual(enrollment.reply_intent, "not_now")
        self.assertFalse(self._activities(self.roberta), "no to-do for a not now")
        self.assertFalse(self._leads(self.roberta))
        Enroller = self.env["winback.enroller"]
        with freeze_time(tapped + timedelta(days=29)):
            self.assertEqual(
                Enroller._eligibility_counts(self.campaign).get("snoozed"), 1
            )
            self.assertEqual(Enroller._enroll(self.campaign), 0)
        with freeze_time(tapped + timedelta(days=31)):
            self.assertEqual(Enroller._enroll(self.campaign), 1)
        again = self.campaign.enrollment_ids - enrollment
        self.assertEqual(again.partner_id, self.roberta)
        self.assertEqual(again.state, "running")

    def test_free_text_in_the_customers_language(self):
        self._configure()
        mark = self._customer("Mark Brown", "+39 333 765 4321")
        mark.write({"lang": "en_US", "user_id": self.salesman.id})
        enrollments = self._sent()
        roberta = enrollments.filtered(lambda e: e.partner_id == self.roberta)
        self._write(roberta, "Grazie! Ora no, magari PIU AVANTI.", "wamid.IT.1")
        self.assertEqual(roberta.state, "snoozed", "Italian keyword, Italian customer")
        self.assertFalse(self._activities(self.roberta))
        # The same words from an English-speaking customer mean nothing.
        mark_enrollment = enrollments - roberta
        self._write(mark_enrollment, "più avanti", "wamid.EN.1")
        self.assertEqual(mark_enrollment.state, "replied")
        self.assertEqual(mark_enrollment.reply_intent, "question")
        self.assertEqual(self._activities(mark).user_id, self.salesman)

    def test_unmatched_text_is_a_question_for_the_salesperson(self):
        self._configure()
        enrollment = self._sent()
        self._write(enrollment, "A che ora aprite sabato?", "wamid.Q.1")
        self.assertEqual(enrollment.state, "replied")
        self.assertEqual(enrollment.reply_intent, "question")
        activity = self._activities(self.roberta)
        self.assertEqual(activity.user_id, self.salesman)
        self.assertIn("A che ora aprite sabato?", str(activity.note))
        self.assertFalse(self._leads(self.roberta))

    def test_report_counts_intents_per_campaign_and_segment(self):
        self._configure()
        customers = [
            self._customer(name, mobile)
            for name, mobile in (
                ("Luca Verdi", "+39 333 000 0001"),
                ("Anna Neri", "+39 333 000 0002"),
                ("Paolo Gialli", "+39 333 000 0003"),
            )
        ]
        customers[1].lang = "it_IT"
        enrollments = self._sent()
        of = {e.partner_id: e for e in enrollments}
        self._tap(of[self.roberta], "P_MORE", "Dimmi di più", "wamid.R.1")
        self._tap(of[customers[0]], "P_LATER", "Non ora", "wamid.R.2")
        self._write(of[customers[1]], "Non scrivetemi più, grazie", "wamid.R.3")
        self._write(of[customers[2]], "Quanto costa?", "wamid.R.4")
        self.assertEqual(of[customers[1]].state, "opted_out")
        self.assertTrue(
            self.env["phone.blacklist"].search_count(
                [("number", "=", customers[1].phone_sanitized)]
            )
        )
        report = self.env["winback.report"].with_user(self.salesman)
        [row] = report.read_group(
            [("campaign_id", "=", self.campaign.id)],
            ["interested:sum", "snoozed:sum", "stopped:sum", "question:sum",
             "replied:sum"],
            ["campaign_id", "segment_id"],
            lazy=False,
        )  # fmt: skip
        self.assertEqual(row["segment_id"][0], self.cold.id)
        self.assertEqual(
            [row[k] for k in ("interested", "snoozed", "stopped", "question")],
            [1, 1, 1, 1],
        )
        self.assertEqual(row["replied"], 3, "interested, not now and question")


@tagged("post_install", "-at_install")
class TestConcurrentInterested(WinbackCase):
    """Two deliveries of *Interested* taps processed at the same time, on two
    real connections, both committed: the database keeps one opportunity."""

    def _committed_fixture(self):
        """A customer enrolled in a campaign, who tapped twice; committed so
        that other connections see it. Removed again at the end."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            account = env["winback.account"].create(
                {"name": "Race account", "phone_number_id": "999000222"}
            )
            template = env["winback.template"].create(
                {
                    "name": "winback_race_interest",
                    "language": "en",
                    "account_id": account.id,
                    "status": "approved",
                    "body": "Hello, we miss you.",
                }
            )
            campaign = env["winback.campaign"].create(
                {
                    "name": "Race campaign",
                    "account_id": account.id,
                    "step_ids": [(0, 0, {"name": "One", "template_id": template.id})],
                }
            )
            partner = env["res.partner"].create(
                {"name": "Keen Customer", "mobile": "+39 333 987 1111"}
            )
            enrollment = env["winback.enrollment"].create(
                {"partner_id": partner.id, "campaign_id": campaign.id}
            )
            taps = env["winback.message"].create(
                [
                    {
                        "direction": "inbound",
                        "state": "received",
                        "account_id": account.id,
                        "partner_id": partner.id,
                        "enrollment_id": enrollment.id,
                        "body": "Tell me more",
                        "wamid": f"wamid.RACE.{index}",
                        "inbound_type": "button",
                    }
                    for index in (1, 2)
                ]
            )
            ids = SimpleNamespace(
                account=account.id,
                template=template.id,
                campaign=campaign.id,
                partner=partner.id,
                enrollment=enrollment.id,
                taps=taps.ids,
            )
        self.addCleanup(self._remove_fixture, ids)
        return ids

    def _remove_fixture(self, ids):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, api.SUPERUSER_ID, {})
            env["crm.lead"].with_context(active_test=False).search(
                [("partner_id", "=", ids.partner)]
            ).unlink()
            cr.execute(
                "DELETE FROM winback_message WHERE partner_id = %s", [ids.partner]
            )
            cr.execute(
                "DELETE FROM winback_enrollment WHERE partner_id = %s", [ids.partner]
            )
            env["winback.campaign"].browse(ids.campaign).unlink()
            env["winback.template"].browse(ids.template).unlink()
            env["winback.account"].browse(ids.account).unlink()
            env["res.partner"].browse(ids.partner).unlink()

    def test_two_taps_processed_at_once_make_one_opportunity(self):
        ids = self._committed_fixture()
        with self.registry.cursor() as cr1, self.registry.cursor() as cr2:
            envs = [api.Environment(cr, api.SUPERUSER_ID, {}) for cr in (cr1, cr2)]
            for env in envs:
                # Both see no opportunity yet: their snapshots are taken.
                self.assertFalse(
                    env["crm.lead"].search(
                        [("winback_enrollment_id", "=", ids.enrollment)]
                    )
                )
            leads = []
            for env, tap in zip(envs, ids.taps, strict=True):
                with mute_logger("odoo.sql_db"):
                    leads.append(
                        env["winback.reply.intent"]._opportunity(
                            env["winback.message"].browse(tap),
                            env["winback.enrollment"].browse(ids.enrollment),
                        )
                    )
                env.cr.commit()
        self.assertTrue(leads[0])
        self.assertFalse(leads[1], "the second one found the first in the way")
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT count(*) FROM crm_lead WHERE winback_enrollment_id = %s",
                [ids.enrollment],
            )
            self.assertEqual(cr.fetchone()[0], 1)
