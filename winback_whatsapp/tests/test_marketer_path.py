"""A marketer runs a campaign without help, end to end: the first messages
go out minutes after Start, as the cron workers run them; and the whole
path in a real browser, as a salesperson who is also the marketer."""

from datetime import date, datetime, time, timedelta

from dateutil.relativedelta import relativedelta

from odoo import fields
from odoo.tests import HttpCase, TransactionCase, freeze_time, new_test_user, tagged
from odoo.tools import convert_file, format_datetime

from .common import run_job
from .test_demo import DEMO_FILES
from .test_enroll_safety import process_cron

MODULE = "winback_whatsapp"
CRONS = ("recompute", "enroll", "advance", "send", "webhook_process", "media_download")
SENT = ("sent", "delivered", "read")
# The scheduled actions that take a campaign from Start to its first sends.
WOKEN = {f"{MODULE}.ir_cron_winback_{name}" for name in ("enroll", "advance", "send")}


def settle_crons(case, rounds=10):
    """Run the Win-back scheduled actions as the cron workers do, for as long
    as one of them is ready now (its next call or one of its triggers is
    due), each in cursors of its own. Returns the xmlids run, in order."""
    crons = case.env["ir.cron"].browse(
        case.env.ref(f"{MODULE}.ir_cron_winback_{name}").id for name in CRONS
    )
    ran = []
    for _round in range(rounds):
        case.env.flush_all()
        now = fields.Datetime.now()
        due = case.env["ir.cron.trigger"].search([("call_at", "<=", now)]).cron_id
        ready = crons.filtered(lambda c, now=now: c.nextcall <= now) | (crons & due)
        if not ready:
            return ran
        for cron in ready:
            xmlid = cron.get_external_id()[cron.id]
            process_cron(case, xmlid)
            ran.append(xmlid)
    return ran


def crons_just_ran(case):
    """Every Win-back scheduled action as just after its run: next call one
    interval from now, no trigger pending."""
    now = fields.Datetime.now()
    for name in CRONS:
        cron = case.env.ref(f"{MODULE}.ir_cron_winback_{name}")
        cron.nextcall = now + relativedelta(
            **{cron.interval_type: cron.interval_number}
        )
        case.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]).unlink()


@tagged("post_install", "-at_install")
class TestFirstSendAfterStart(TransactionCase):
    """`make demo`: Start on the first demo campaign, and its first messages
    are sent within minutes, whatever the hour, by the crons Start wakes up:
    enroll, then queue, then send."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        idref = {}
        for filename in DEMO_FILES:
            convert_file(cls.env, MODULE, filename, idref, mode="init", kind="demo")
        cls.env.flush_all()
        cls.marketer = new_test_user(
            cls.env,
            "wb_first_send",
            groups=f"sales_team.group_sale_salesman,{MODULE}.group_winback_manager",
        )

    def _start_at(self, hour):
        """Start the first demo campaign of the campaigns kanban at ``hour``
        (UTC) today, then run the crons that are ready a minute later.
        Returns the campaign, the messages of the customers who entered, and
        the crons run."""
        demo = self.env["winback.campaign"].browse(
            self.env.ref(f"{MODULE}.sequence_{name}").id
            for name in ("lukewarm", "cooling", "cold")
        )
        campaign = demo.sorted()[0]
        self.assertEqual(campaign, self.env.ref(f"{MODULE}.sequence_cold"))
        before = campaign.enrollment_ids
        with freeze_time(datetime.combine(date.today(), time(hour, 0))):
            crons_just_ran(self)
            start = fields.Datetime.now()
            campaign.with_user(self.marketer).action_start()
            with freeze_time(start + timedelta(minutes=1)):
                ran = settle_crons(self)
        entered = campaign.enrollment_ids - before
        self.assertTrue(entered.filtered(lambda e: not e.is_holdout))
        messages = entered.message_ids.filtered(lambda m: m.direction == "outbound")
        return campaign, messages, ran

    def test_first_messages_go_minutes_after_start_at_night(self):
        """Started at 02:00 UTC (03:00 in Milan, the demo shop): the crons
        Start wakes up enroll, queue and send, and the simulator records the
        first messages sent within the next minute."""
        campaign, messages, ran = self._start_at(2)
        self.assertLessEqual(WOKEN, set(ran))
        self.assertTrue(messages, "no message queued after Start")
        self.assertEqual(
            messages.filtered(lambda m: m.state not in SENT).mapped("error_message"),
            [],
        )

    def test_start_says_when_the_first_messages_go(self):
        """The demo's first campaign already had customers: Start says when
        the newly eligible get their first message (now: its window is
        open), not when an old queued message was due, nor an empty space."""
        campaign = self.env.ref(f"{MODULE}.sequence_cold")
        self.assertTrue(campaign.enrolled_count)
        start = datetime.combine(date.today(), time(11, 0))
        with freeze_time(start):
            result = campaign.with_user(self.marketer).action_start()
        when = format_datetime(self.env(user=self.marketer), start)
        self.assertIn(
            f"customers eligible; the first messages go out from {when}.",
            result["params"]["message"],
        )

    def test_first_messages_go_minutes_after_start_by_day(self):
        campaign, messages, _ran = self._start_at(11)
        self.assertTrue(messages)
        self.assertEqual(set(messages.mapped("state")) - set(SENT), set())


@tagged("post_install", "-at_install")
class TestMarketerPathTour(HttpCase):
    def test_marketer_path_tour(self):
        """In a real browser, as a salesperson who is also the marketer (Sales
        and Win-back Administrator, not a system administrator): create a
        campaign from the kanban, preview its first message on the phone
        panel, start it and see the progress; the crons enroll, queue and
        send on the simulator account; the customer replies, the salesperson
        finds the activity assigned to them, answers from the chatter, the
        activity is done and the funnel counts one sent, one replied."""
        sally = new_test_user(
            self.env,
            "wb_path_sally",
            name="Sally Sales",
            groups=f"sales_team.group_sale_salesman,{MODULE}.group_winback_manager",
        )
        self.assertFalse(sally.has_group("base.group_system"))
        # This shop sends at any hour and keeps no holdout on its campaigns
        # (its defaults, set by an administrator): the path does not wait
        # for a send window whatever the hour the test runs, and its one
        # customer is not drawn into the holdout group.
        Default = self.env["ir.default"]
        Default.set("winback.campaign", "window_start", 0.0)
        Default.set("winback.campaign", "window_end", 24.0)
        Default.set("winback.campaign", "window_sunday", True)
        Default.set("winback.campaign", "holdout_percent", 0.0)
        account = self.env["winback.account"].create(
            {"name": "Path simulator", "provider": "simulator",
             "phone_number_id": "SIMPATH1"}
        )  # fmt: skip
        for name, body in [
            ("winback_path_hello", "Hi {{1}}, we have news for you."),
            ("winback_path_last_call", "Hi {{1}}, a last call."),
        ]:
            self.env["winback.template"].create(
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
                "user_id": sally.id,
                "winback_consent_date": fields.Datetime.now(),
                "winback_consent_source": "Shop counter",
            }
        )
        lukewarm = self.env.ref(f"{MODULE}.segment_lukewarm")
        product = self.env["product.product"].create(
            {"name": "Path beans", "list_price": 9.0}
        )
        order = self.env["sale.order"].create(
            {
                "partner_id": customer.id,
                "order_line": [(0, 0, {"product_id": product.id})],
            }
        )
        order.action_confirm()
        order.date_order = fields.Datetime.now() - timedelta(days=lukewarm.min_days + 5)
        self.env["winback.segment.recompute"]._recompute_partners(customer)
        run_job(self, "winback.segment.recompute", "_cron_recompute")
        self.assertEqual(customer.winback_segment_id, lukewarm)
        crons_just_ran(self)

        self.start_tour(
            "/odoo", "winback_whatsapp_marketer_path_tour", login=sally.login
        )
        campaign = self.env["winback.campaign"].search([("name", "=", "Marketer path")])
        self.assertEqual(campaign.state, "running")
        # What the cron workers do next, woken up by Start: enroll, queue,
        # send (the simulator records the message sent, delivered, read).
        ran = settle_crons(self)
        self.assertLessEqual(WOKEN, set(ran))
        sent = campaign.enrollment_ids.message_ids
        self.assertEqual(len(sent), 1)
        self.assertIn(sent.state, SENT)
        self.assertEqual(sent.partner_id, customer)

        self.start_tour(
            "/odoo", "winback_whatsapp_marketer_reply_tour", login=sally.login
        )
        enrollment = campaign.enrollment_ids
        self.assertEqual(enrollment.state, "replied")
        self.assertEqual((campaign.sent_count, campaign.replied_count), (1, 1))
        activity_type = self.env.ref(f"{MODULE}.mail_activity_type_winback_reply")
        self.assertFalse(
            customer.activity_ids.filtered(
                lambda a: a.activity_type_id == activity_type
            )
        )
        answer = self.env["winback.message"].search(
            [("partner_id", "=", customer.id), ("direction", "=", "outbound"),
             ("body", "=", "Thank you Giulia, see you on Saturday!")]
        )  # fmt: skip
        self.assertEqual(answer.create_uid, sally)
