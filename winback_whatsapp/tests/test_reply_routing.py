import time
from datetime import datetime, timedelta

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import Form, HttpCase, freeze_time, new_test_user, tagged

from ..tools import webhook_simulator as simulator
from . import test_webhook
from .test_send import WinbackSendCase
from .test_webhook import PNID, SECRET


def reply_activities(partner):
    return partner.activity_ids.filtered(
        lambda a: a.activity_type_id
        == partner.env.ref("winback_whatsapp.mail_activity_type_winback_reply")
    )


@tagged("post_install", "-at_install")
class TestReplyRouting(HttpCase):
    """A customer's reply, over Meta's signed webhook, asks the right person
    to answer it; answering from the composer closes the loop."""

    # Meta's signed POST, then the processing cron (tests/test_webhook.py).
    _post = test_webhook.TestWebhook._post
    _value = test_webhook.TestWebhook._value

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Main number",
                "phone_number_id": PNID,
                "app_secret": SECRET,
                "verify_token": "verify-me",
            }
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"
        groups = "sales_team.group_sale_salesman,winback_whatsapp.group_winback_user"
        cls.salesman = new_test_user(
            cls.env, "wb_route_sales", groups=groups, name="Sally Sales"
        )
        cls.responsible = new_test_user(
            cls.env, "wb_route_resp", groups=groups, name="Rita Responsible"
        )
        cls.fallback = new_test_user(
            cls.env, "wb_route_default", groups=groups, name="Dora Default"
        )
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Mario Rossi",
                "mobile": "+393331234567",
                "user_id": cls.salesman.id,
            }
        )
        cls.template = cls.env["winback.template"].create(
            {
                "name": "winback_90",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "We miss you",
            }
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {
                "name": "Cold customers",
                "account_id": cls.account.id,
                "user_id": cls.responsible.id,
                "step_ids": [
                    (0, 0, {"name": "Offer", "template_id": cls.template.id}),
                    (0, 0, {"name": "Last call", "template_id": cls.template.id,
                            "delay_days": 3}),
                ],
            }
        )  # fmt: skip
        cls.offer, cls.last_call = cls.campaign.step_ids.sorted("sequence")
        cls.enrollment = cls.env["winback.enrollment"].create(
            {
                "partner_id": cls.partner.id,
                "campaign_id": cls.campaign.id,
                "phone_e164": "+393331234567",
            }
        )
        for step, wamid in ((cls.offer, "wamid.OUT1"), (cls.last_call, "wamid.OUT2")):
            cls.env["winback.message"].create(
                {
                    "direction": "outbound",
                    "state": "read",
                    "enrollment_id": cls.enrollment.id,
                    "step_id": step.id,
                    "partner_id": cls.partner.id,
                    "account_id": cls.account.id,
                    "template_id": cls.template.id,
                    "phone_e164": "+393331234567",
                    "wamid": wamid,
                }
            )

    def _reply(self, text, wamid, context=None, sender="393331234567"):
        """The customer's text message, sent now, answering ``context``."""
        msg = simulator.message(
            sender,
            wamid,
            "text",
            {"body": text},
            time.time(),
            context=context and ("15550001111", context),
        )
        self._post(
            self._value(contacts=[simulator.contact(sender, "Mario")], messages=[msg])
        )

    def test_activity_goes_to_the_salesperson_naming_campaign_and_step(self):
        self._reply("Is the offer still valid?", "wamid.IN1", context="wamid.OUT1")
        activity = reply_activities(self.partner)
        self.assertEqual(len(activity), 1)
        self.assertEqual(activity.user_id, self.salesman)
        self.assertIn("Cold customers", activity.summary)
        self.assertIn("Offer", activity.summary)
        self.assertIn("Is the offer still valid?", str(activity.note))

    def test_step_answered_without_context_is_the_last_one_sent(self):
        self._reply("Hello?", "wamid.IN1")
        self.assertEqual(
            reply_activities(self.partner).summary,
            "Answer the WhatsApp reply to Cold customers, step Last call",
        )

    def test_salesperson_of_the_customer_company(self):
        """A contact of a company customer: the company's salesperson."""
        company = self.env["res.partner"].create(
            {"name": "Rossi SRL", "is_company": True, "user_id": self.salesman.id}
        )
        self.partner.write({"parent_id": company.id, "user_id": False})
        self._reply("ciao", "wamid.IN1", context="wamid.OUT2")
        self.assertEqual(reply_activities(self.partner).user_id, self.salesman)

    def test_without_salesperson_the_campaign_responsible(self):
        self.partner.user_id = False
        self._reply("ciao", "wamid.IN1", context="wamid.OUT2")
        activity = reply_activities(self.partner)
        self.assertEqual(activity.user_id, self.responsible)
        self.assertIn("Last call", activity.summary)

    def test_archived_responsible_then_the_company_default(self):
        """Campaigns created at install belong to OdooBot (archived): its
        to-do would be seen by nobody. The company's default gets it."""
        self.partner.user_id = False
        self.campaign.user_id = self.env.ref("base.user_root")
        self.env.company.winback_reply_user_id = self.fallback
        self._reply("ciao", "wamid.IN1", context="wamid.OUT2")
        self.assertEqual(reply_activities(self.partner).user_id, self.fallback)

    def test_no_default_then_the_administrator(self):
        self.partner.user_id = False
        self.campaign.user_id = False
        self.env.company.winback_reply_user_id = False
        self._reply("ciao", "wamid.IN1", context="wamid.OUT2")
        self.assertEqual(
            reply_activities(self.partner).user_id, self.env.ref("base.user_admin")
        )

    def test_answer_from_the_composer_marks_the_activity_done(self):
        self._reply("Is the offer still valid?", "wamid.IN1", context="wamid.OUT1")
        activity = reply_activities(self.partner)
        self.assertEqual(activity.user_id, self.salesman)
        activity_type = activity.activity_type_id
        form = Form(
            self.env["winback.composer"]
            .with_user(self.salesman)
            .with_context(default_partner_id=self.partner.id)
        )
        self.assertTrue(form.window_open)
        self.assertEqual(form.reply_activity_id, activity)
        form.body = "Yes, until Sunday!"
        form.save().action_send()
        self.assertFalse(reply_activities(self.partner), "the to-do is done")
        done = self.partner.message_ids.filtered(
            lambda m: m.mail_activity_type_id == activity_type
        )
        self.assertEqual(len(done), 1)
        self.assertEqual(done.author_id, self.salesman.partner_id)
        self.assertIn("Yes, until Sunday!", str(done.body))
        self.assertIn("Cold customers", str(done.body))
        # The next reply asks again.
        self._reply("Great, thanks", "wamid.IN2")
        self.assertEqual(reply_activities(self.partner).user_id, self.salesman)


@tagged("post_install", "-at_install")
class TestComposerWindow(WinbackSendCase):
    """The WhatsApp composer of the partner form and WhatsApp's 24-hour
    customer service window, as a salesperson (real groups) sees them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.salesman = new_test_user(
            cls.env,
            "wb_reply_sales",
            groups="sales_team.group_sale_salesman,winback_whatsapp.group_winback_user",
        )

    def _inbound(self, when, partner=None):
        partner = partner or self.roberta
        return self.env["winback.message"].create(
            {
                "direction": "inbound",
                "partner_id": partner.id,
                "account_id": self.account.id,
                "phone_e164": partner.phone_sanitized,
                "body": "Until when is it valid?",
                "state": "received",
                "received_at": when,
            }
        )

    def _composer(self, partner=None):
        return Form(
            self.env["winback.composer"]
            .with_user(self.salesman)
            .with_context(default_partner_id=(partner or self.roberta).id)
        )

    def test_outside_the_window_no_free_text_box(self):
        """Regression: outside the window the composer offered a free-text
        box, then the client failed with "Invalid fields: Template"."""
        self._inbound(fields.Datetime.now() - timedelta(hours=30))
        form = self._composer()
        self.assertFalse(form.window_open)
        self.assertTrue(
            form._get_modifier("body", "invisible"),
            "outside the window there is no free-text box",
        )
        self.assertFalse(
            form._get_modifier("template_id", "required"),
            "no 'Invalid fields: Template' from the client: the server explains",
        )

    def test_free_text_outside_the_window_refused_on_the_server(self):
        """Over RPC there is no view: the server refuses free text, saying
        why and since when, not "Invalid fields: Template"."""
        self._inbound(datetime(2026, 11, 20, 10, 0))
        with freeze_time("2026-11-21 12:00:00"):
            composer = (
                self.env["winback.composer"]
                .with_user(self.salesman)
                .create(
                    {
                        "partner_id": self.roberta.id,
                        "account_id": self.account.id,
                        "body": "Free text",
                    }
                )
            )
            with self.assertRaisesRegex(UserError, "closed on 11/21/2026 10:00") as e:
                composer.action_send()
            self.assertIn("approved template", str(e.exception))
        self.assertFalse(
            self.env["winback.message"].search(
                [("partner_id", "=", self.roberta.id), ("direction", "=", "outbound")]
            )
        )

    def test_never_wrote_says_so(self):
        form = self._composer()
        self.assertFalse(form.window_open)
        self.assertIn("never written", form.window_note)

    def test_only_approved_templates(self):
        draft = self.env["winback.template"].create(
            {
                "name": "winback_draft",
                "account_id": self.account.id,
                "status": "draft",
                "category": "utility",
                "body": "Draft text",
            }
        )
        form = self._composer()
        offered = (
            self.env["winback.template"]
            .with_user(self.salesman)
            .name_search(
                "winback", args=[("account_id", "=", self.account.id),
                                 ("status", "=", "approved")]
            )
        )  # fmt: skip
        self.assertNotIn(draft.id, [t[0] for t in offered])
        form.template_id = draft  # Form does not apply the domain: RPC could
        with self.assertRaisesRegex(UserError, "not an approved template"):
            form.save().action_send()

    def test_inside_the_window_shows_the_time_left(self):
        self._inbound(datetime(2026, 11, 20, 10, 0))
        with freeze_time("2026-11-20 15:30:00"):
            form = self._composer()
            self.assertTrue(form.window_open)
            self.assertFalse(form._get_modifier("body", "invisible"))
            self.assertIn("18 h 30 min", form.window_note)
            self.assertIn("11/21/2026 10:00", form.window_note)

    def test_template_preview_renders_the_customer(self):
        self._inbound(fields.Datetime.now() - timedelta(hours=30))
        form = self._composer()
        self.assertFalse(form.preview)
        form.template_id = self.last_call
        self.assertEqual(form.preview, "Ciao Roberta, ultima chiamata.")
        # A value the customer does not have is said before sending.
        form.template_id = self.offer
        self.assertIn("cannot be sent", form.preview)
        with self.assertRaisesRegex(UserError, "no value for"):
            form.save().action_send()

    def test_template_answer_marks_the_reply_activity_done(self):
        self._inbound(fields.Datetime.now() - timedelta(hours=30))
        self.roberta.activity_schedule(
            "winback_whatsapp.mail_activity_type_winback_reply",
            summary="Answer the WhatsApp reply to Cold win-back, step Offer",
            user_id=self.salesman.id,
        )
        form = self._composer()
        form.template_id = self.last_call
        form.save().action_send()
        self.assertFalse(reply_activities(self.roberta))
        done = self.roberta.message_ids[0]
        self.assertEqual(done.author_id, self.salesman.partner_id)
        self.assertIn("Ciao Roberta, ultima chiamata.", str(done.body))
        self._send()
        self.assertEqual(self.stub.state.sent()[0]["type"], "template")


@tagged("post_install", "-at_install")
class TestReplyTour(HttpCase):
    def test_reply_tour(self):
        """In a real browser, on a simulator account: the customer replies,
        the salesperson finds the activity assigned to them, answers from
        the customer's form, and the activity is done."""
        sally = new_test_user(
            self.env,
            "wb_tour_sally",
            name="Sally Sales",
            groups="sales_team.group_sale_salesman,"
            "winback_whatsapp.group_winback_manager",
        )
        account = self.env["winback.account"].create(
            {"name": "Simulator", "provider": "simulator", "phone_number_id": "SIM1"}
        )
        template = self.env["winback.template"].create(
            {"name": "winback_tour_reply", "account_id": account.id,
             "status": "approved", "body": "We miss you, {{1}}",
             "param_ids": [(0, 0, {"position": 1, "source": "first_name"})]}
        )  # fmt: skip
        campaign = self.env["winback.campaign"].create(
            {
                "name": "Tour campaign",
                "account_id": account.id,
                "step_ids": [
                    (0, 0, {"name": "Offer", "template_id": template.id}),
                    (0, 0, {"name": "Last call", "template_id": template.id,
                            "delay_days": 3}),
                ],
            }
        )  # fmt: skip
        partner = self.env["res.partner"].create(
            {"name": "Mario Rossi", "mobile": "+393331234567", "user_id": sally.id}
        )
        enrollment = self.env["winback.enrollment"].create(
            {
                "partner_id": partner.id,
                "campaign_id": campaign.id,
                "phone_e164": "+393331234567",
            }
        )
        self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "read",
                "enrollment_id": enrollment.id,
                "step_id": campaign.step_ids.sorted("sequence")[-1].id,
                "partner_id": partner.id,
                "account_id": account.id,
                "template_id": template.id,
                "phone_e164": "+393331234567",
                "wamid": "wamid.TOUR1",
            }
        )
        self.start_tour(
            f"/odoo/action-winback_whatsapp.winback_enrollment_action/{enrollment.id}",
            "winback_whatsapp_reply_tour",
            login="wb_tour_sally",
        )
        self.assertEqual(enrollment.state, "replied")
        self.assertFalse(reply_activities(partner))
        answer = self.env["winback.message"].search(
            [("partner_id", "=", partner.id), ("direction", "=", "outbound"),
             ("state", "=", "queued")]
        )  # fmt: skip
        self.assertEqual(answer.body, "Yes, the offer holds until Sunday!")
