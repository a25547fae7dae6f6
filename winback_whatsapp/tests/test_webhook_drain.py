import json
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import SUPERUSER_ID, api
from odoo.tests import HttpCase, TransactionCase, tagged

from ..tools import webhook_simulator as simulator
from ..tools.webhook_parser import is_status_only, parse_payload
from .common import post_webhook, run_job

SECRET = "drain-app-secret"
PNID = "106540352299001"
T0 = 1767225600  # 2026-01-01 00:00:00 UTC


def _at(offset):
    return datetime(2026, 1, 1) + timedelta(seconds=offset)


@tagged("post_install", "-at_install")
class TestWebhookDrain(HttpCase):
    """Statuses at campaign volume: applied many at once, replies first."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Drain number",
                "phone_number_id": PNID,
                "app_secret": SECRET,
                "verify_token": "drain",
            }
        )
        cls.template = cls.env["winback.template"].create(
            {
                "name": "winback_drain",
                "account_id": cls.account.id,
                "language": "en",
                "status": "approved",
                "body": "We miss you. Reply STOP to opt out.",
            }
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {"name": "Drain campaign", "account_id": cls.account.id}
        )
        cls.step1, cls.step2 = cls.env["winback.step"].create(
            [
                {
                    "campaign_id": cls.campaign.id,
                    "sequence": 1,
                    "name": "First",
                    "template_id": cls.template.id,
                },
                {
                    "campaign_id": cls.campaign.id,
                    "sequence": 2,
                    "name": "Second",
                    "delay_days": 3,
                    "template_id": cls.template.id,
                },
            ]
        )
        cls.salesman = cls.env["res.users"].create(
            {"name": "Dana Drain", "login": "dana_drain", "email": "dana@example.com"}
        )
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Carla Bianchi",
                "mobile": "+393337654321",
                "user_id": cls.salesman.id,
            }
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    # helpers ---------------------------------------------------------

    def _post(self, payload, process=True):
        """A signed POST as Meta makes it; then, unless told otherwise, a
        run of the processing cron (in a cursor of its own, as ir.cron)."""
        return post_webhook(self, self.url, payload, SECRET, process=process)

    def _statuses(self, *statuses, pnid=PNID):
        return simulator.envelope(
            simulator.change_value(
                simulator.metadata(pnid, "15550001111"),
                statuses=[
                    simulator.status(wamid, state, T0 + offset, "393337654321", **extra)
                    for wamid, state, offset, extra in statuses
                ],
            ),
            waba_id="WABA_ID",
        )

    def _message(self, state, wamid=None, enrolled=False, **vals):
        enrollment = self.env["winback.enrollment"]
        if enrolled:
            partner = self.env["res.partner"].create(
                {"name": f"Enrolled {wamid or state}", "mobile": "+393330000001"}
            )
            enrollment = enrollment.create(
                {
                    "partner_id": partner.id,
                    "campaign_id": self.campaign.id,
                    "step_id": self.step1.id,
                    "phone_e164": "+393330000001",
                }
            )
        return self.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": state,
                "wamid": wamid,
                "account_id": self.account.id,
                "partner_id": self.partner.id,
                "phone_e164": "+393337654321",
                "enrollment_id": enrollment.id,
                "step_id": enrolled and self.step1.id,
                **vals,
            }
        )

    def _scenario(self, tag):
        """Messages in every state, and the status calls Meta would make for
        them: out of order, several in a call, matched on callback data
        only, a replayed call, an unknown wamid."""
        sent = self._message("sent", f"wamid.{tag}1", sent_at=_at(0))
        unsent = self._message(
            "sending",
            f"wamid.{tag}2",
            enrolled=True,
            error_code="timeout",
            error_message="Outcome unknown",
        )
        opaque = self._message("sending", enrolled=True)
        delivered = self._message(
            "delivered", f"wamid.{tag}4", sent_at=_at(1), delivered_at=_at(2)
        )
        read = self._message("read", f"wamid.{tag}5", sent_at=_at(1), read_at=_at(3))
        failed = self._message("failed", error_code="131026")
        by_opaque = {"biz_opaque_callback_data": f"winback:{opaque.id}"}
        failed_opaque = {"biz_opaque_callback_data": f"winback:{failed.id}"}
        first = self._statuses(
            (f"wamid.{tag}1", "read", 50, {}), (f"wamid.{tag}2", "delivered", 20, {})
        )
        calls = [
            first,
            self._statuses(
                (f"wamid.{tag}1", "delivered", 40, {}),
                (f"wamid.{tag}3", "sent", 10, by_opaque),
            ),
            self._statuses(
                (f"wamid.{tag}3", "read", 30, by_opaque),
                (f"wamid.{tag}4", "read", 60, {}),
                (f"wamid.{tag}9", "delivered", 61, {}),
            ),
            self._statuses(
                (f"wamid.{tag}2", "sent", 5, {}),
                (f"wamid.{tag}5", "delivered", 70, {}),
                (f"wamid.{tag}F", "delivered", 80, failed_opaque),
            ),
            first,  # Meta retries a call
            self._statuses(
                (f"wamid.{tag}4", "delivered", 65, {}),
                (f"wamid.{tag}2", "read", 90, {}),
                (f"wamid.{tag}3", "delivered", 35, by_opaque),
            ),
        ]
        return sent | unsent | opaque | delivered | read | failed, calls

    def _observed(self, messages, tag):
        fields = ["state", "sent_at", "delivered_at", "read_at"]
        fields += ["error_code", "error_message"]
        return [
            {
                **{name: message[name] for name in fields},
                "wamid": (message.wamid or "").replace(tag, "*"),
                "enrollment": message.enrollment_id
                and (
                    message.enrollment_id.step_id,
                    message.enrollment_id.last_sent_at,
                    message.enrollment_id.next_send_at,
                ),
            }
            for message in messages
        ]

    # statuses --------------------------------------------------------

    def test_statuses_together_give_the_one_by_one_result(self):
        # Reference: each status applied on its own, in the order received.
        reference, calls = self._scenario("ONE")
        Status = self.env["winback.status"].sudo()
        for payload in calls:
            for change in parse_payload(payload):
                for status in change.statuses:
                    Status._apply_status(self.account, status)
        # The same calls over HTTP, stored, then processed by one cron run.
        together, calls = self._scenario("ALL")
        for payload in calls:
            self._post(payload, process=False)
        events = self.env["winback.webhook.event"].search(
            [("account_id", "=", self.account.id)]
        )
        self.assertEqual(len(events), 6)
        self.assertTrue(all(events.mapped("status_only")))
        with patch.object(
            type(Status), "_apply_status", side_effect=AssertionError("one by one")
        ):
            run_job(self, "winback.webhook.event", "_cron_process")
        self.assertEqual(set(events.mapped("state")), {"done"})
        self.assertEqual(
            self._observed(together, "ALL"), self._observed(reference, "ONE")
        )
        # What a user reads on the messages.
        sent, unsent, opaque, delivered, read, failed = together
        self.assertEqual(
            (sent.state, sent.delivered_at, sent.read_at),
            ("read", _at(50), _at(50)),
            "a late 'delivered' never undoes a 'read'",
        )
        self.assertEqual(
            (unsent.state, unsent.sent_at, unsent.delivered_at, unsent.read_at),
            ("read", _at(20), _at(20), _at(90)),
        )
        self.assertFalse(unsent.error_code, "the unknown outcome is settled")
        self.assertEqual(
            (opaque.state, opaque.wamid, opaque.sent_at, opaque.read_at),
            ("read", "wamid.ALL3", _at(10), _at(30)),
            "matched on the callback data, and given its wamid",
        )
        self.assertEqual(
            (opaque.enrollment_id.step_id, opaque.enrollment_id.last_sent_at),
            (self.step2, _at(10)),
            "a settled send moves its enrollment on",
        )
        self.assertEqual((delivered.state, delivered.read_at), ("read", _at(60)))
        self.assertEqual((read.state, read.delivered_at), ("read", False))
        self.assertEqual((failed.state, failed.wamid), ("failed", "wamid.ALLF"))
        # Replayed once more: nothing changes.
        before = self._observed(together, "ALL")
        self._post(calls[0])
        self.assertEqual(self._observed(together, "ALL"), before)

    def test_other_than_plain_statuses_go_one_by_one(self):
        message = self._message("sent", "wamid.ODD1")
        failed = self._statuses(
            ("wamid.ODD1", "failed", 5, {"errors": [{"code": 131026, "title": "x"}]})
        )
        self.assertFalse(is_status_only(failed), "failed statuses keep their order")
        self.assertFalse(is_status_only({"entry": "not-a-list"}))
        self.assertTrue(is_status_only(self._statuses(("w", "read", 1, {}))))
        # A status-only call for another business number is refused.
        self._post(self._statuses(("wamid.ODD1", "read", 9, {}), pnid="999"))
        refused = self.env["winback.webhook.event"].search(
            [("account_id", "=", self.account.id)]
        )
        self.assertTrue(refused.status_only)
        self.assertEqual(refused.state, "refused")
        self.assertEqual(message.state, "sent")
        self._post(failed)
        self.assertEqual((message.state, message.error_code), ("failed", "131026"))

    # replies first ---------------------------------------------------

    def test_reply_behind_thousands_of_statuses_is_processed_first(self):
        Event = self.env["winback.webhook.event"].sudo()
        self._message("sent", "wamid.CAMPAIGN")
        backlog = self._statuses(("wamid.CAMPAIGN", "delivered", 1, {}))
        for _call in range(3000):
            Event._store(self.account, json.dumps(backlog), status_only=True)
        reply = simulator.envelope(
            simulator.change_value(
                simulator.metadata(PNID, "15550001111"),
                contacts=[simulator.contact("393337654321", "Carla")],
                messages=[
                    simulator.message(
                        "393337654321",
                        "wamid.REPLY",
                        "text",
                        {"body": "Yes, tell me more"},
                        T0 + 100,
                        context=("15550001111", "wamid.CAMPAIGN"),
                    )
                ],
            ),
            waba_id="WABA_ID",
        )
        self._post(reply, process=False)
        # One pass of the cron, smaller than the backlog.
        run_job(self, "winback.webhook.event", "_cron_process", batch_size=100)
        chatter = self.partner.message_ids.filtered(
            lambda m: "Yes, tell me more" in (m.body or "")
        )
        self.assertEqual(len(chatter), 1, "the reply is in the chatter at once")
        self.assertTrue(
            self.partner.activity_ids.filtered(
                lambda a: a.activity_type_id
                == self.env.ref("winback_whatsapp.mail_activity_type_winback_reply")
            ),
            "the salesperson has the reply's activity",
        )
        events = Event.search([("account_id", "=", self.account.id)])
        self.assertEqual(len(events.filtered(lambda e: e.state == "done")), 100)
        self.assertEqual(events.filtered(lambda e: not e.status_only).state, "done")


@tagged("post_install", "-at_install")
class TestWebhookWakeUp(TransactionCase):
    """The cron and a webhook call on real, committing cursors: an event
    stored while the cron runs is never left for the cron's schedule."""

    def _env(self, cr):
        return api.Environment(cr, SUPERUSER_ID, {})

    def test_event_stored_while_the_cron_ends_wakes_it_again(self):
        registry = self.registry
        cron_id = self.env.ref("winback_whatsapp.ir_cron_winback_webhook_process").id
        with registry.cursor() as cr:
            env = self._env(cr)
            cron = env["ir.cron"].browse(cron_id)
            saved = (cron.nextcall, cron.lastcall or None)
            account = env["winback.account"].create(
                {"name": "Wake-up", "phone_number_id": "555000111", "app_secret": "s"}
            )
            account_id = account.id
            # The cron runs because of a trigger a minute old, not its schedule.
            cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [cron_id])
            cron.nextcall = datetime.now() + timedelta(days=1)
            cron._trigger(at=datetime.now() - timedelta(minutes=1))
            cr.execute("SELECT coalesce(max(id), 0) FROM ir_cron_progress")
            progress_before = cr.fetchone()[0]
            payload = simulator.status_update(
                "555000111", "wamid.NOBODY", "delivered", T0, "393330000000"
            )
            env["winback.webhook.event"]._store(
                account, json.dumps(payload), status_only=True
            )

        def cleanup():
            with registry.cursor() as cr:
                env = self._env(cr)
                env["winback.account"].browse(account_id).unlink()
                cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [cron_id])
                cr.execute(
                    "DELETE FROM ir_cron_progress WHERE cron_id = %s AND id > %s",
                    [cron_id, progress_before],
                )
                cr.execute(
                    "UPDATE ir_cron SET nextcall = %s, lastcall = %s WHERE id = %s",
                    [*saved, cron_id],
                )

        self.addCleanup(cleanup)

        IrCron = type(self.env["ir.cron"])
        notify_progress = IrCron._notify_progress
        late = []

        def webhook_call_at_the_end(cron_self, **progress):
            # A webhook call commits its event after the run counted what
            # remains, while the run's wake-up trigger is still there.
            if not late:
                with registry.cursor() as cr:
                    Event = self._env(cr)["winback.webhook.event"]
                    late.append(
                        Event._store(
                            Event.env["winback.account"].browse(account_id),
                            json.dumps(payload),
                            status_only=True,
                        ).id
                    )
                    Event._wake_after_commit()
            return notify_progress(cron_self, **progress)

        def run_the_cron():
            with registry.cursor() as cron_cr:
                job = registry["ir.cron"]._acquire_one_job(cron_cr, cron_id)
                if not job:
                    return False
                registry["ir.cron"]._process_job(registry.db_name, cron_cr, job)
            return True

        def states():
            with registry.cursor() as cr:
                cr.execute(
                    "SELECT state FROM winback_webhook_event"
                    " WHERE account_id = %s ORDER BY id",
                    [account_id],
                )
                return [state for (state,) in cr.fetchall()]

        notifydb = IrCron._notifydb
        notified = []

        def notify_the_workers(cron_self):
            notified.append(cron_self.id)
            return notifydb(cron_self)

        with (
            patch.object(IrCron, "_notify_progress", webhook_call_at_the_end),
            patch.object(IrCron, "_notifydb", notify_the_workers),
        ):
            self.assertTrue(run_the_cron())
        self.assertEqual(states(), ["done", "pending"])
        self.assertEqual(notified, [cron_id], "the cron workers are woken up")
        # The cron is due again at once: the worker the call notified runs it.
        self.assertTrue(run_the_cron(), "the late event waits for no schedule")
        self.assertEqual(states(), ["done", "done"])
