"""Who may do what, checked on the server: each test acts as the real user
(``new_test_user`` with that user's real groups), the key ones over real
JSON-RPC (``/web/dataset/call_kw``), the way a browser or a script would."""

import time
from urllib.parse import urlsplit

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import HttpCase, new_test_user, tagged
from odoo.tests.common import JsonRpcException
from odoo.tools import mute_logger

from ..tools import webhook_simulator
from ..tools.webhook_parser import parse_payload
from .cloud_api_stub import PHONE_NUMBER_ID, TOKEN, CloudApiStub
from .common import WinbackDataMixin, WinbackReportCase

ALLOWLIST = "winback_whatsapp.api_host_allowlist"
USER = "winback_whatsapp.group_winback_user"
MANAGER = "winback_whatsapp.group_winback_manager"


def _users(env):
    """A read-only Win-back user, a Win-back Administrator who is not a
    system administrator, and a system administrator."""
    return (
        new_test_user(env, login="sec_sales", password="sec_sales_pw", groups=USER),
        new_test_user(env, login="sec_boss", password="sec_boss_pw", groups=MANAGER),
        new_test_user(
            env,
            login="sec_sysadmin",
            password="sec_sysadmin_pw",
            groups=f"{MANAGER},base.group_system",
        ),
    )


def _meta_account(env, **vals):
    return env["winback.account"].create(
        {
            "name": "Real Meta number",
            "provider": "meta",
            "phone_number_id": PHONE_NUMBER_ID,
            "access_token": TOKEN,
            "app_secret": "app-secret",
            **vals,
        }
    )


def _meta_enrollment(campaign, meta_account):
    """A running enrollment in a copy of ``campaign`` on a Meta account, of
    another customer (a customer has one live enrollment at a time)."""
    env = campaign.env
    customer = env["res.partner"].create(
        {"name": "Meta customer", "mobile": "+393339990099"}
    )
    return env["winback.enrollment"].create(
        {
            "partner_id": customer.id,
            "campaign_id": campaign.copy({"account_id": meta_account.id}).id,
            "state": "running",
        }
    )


def _receive(env, account, number, body, wamid=None):
    """An inbound message the way the webhook stores it."""
    wa_id = number.lstrip("+")
    payload = webhook_simulator.text_reply(
        account.phone_number_id,
        wa_id,
        wamid or f"wamid.SEC.{number}.{time.monotonic_ns()}",
        body,
        time.time(),
        profile_name="Unknown customer",
    )
    (message,) = parse_payload(payload)[0].messages
    return env["winback.inbound"].sudo()._receive(account, message)


@tagged("post_install", "-at_install")
class TestSecurityAccess(WinbackReportCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user, cls.manager, cls.sysadmin = _users(cls.env)
        cls.enrollment = cls._enroll(
            cls.segment_warm, "running", messages=[(cls.step1, "read")]
        )
        cls.meta = _meta_account(cls.env)
        cls.env.flush_all()

    # Item 1: the token goes to Meta or to an allowlisted host, nowhere else.

    def test_win_back_admin_cannot_change_where_the_token_goes(self):
        account = self.meta.with_user(self.manager)
        for vals in (
            {"api_base_url": "https://attacker.example"},
            {"provider": "simulator"},
            {"api_version": "v1.0"},
        ):
            with self.assertRaises(AccessError), self.cr.savepoint():
                account.write(vals)
        with self.assertRaises(AccessError):
            account.read(["api_base_url"])
        self.assertEqual(self.meta.api_base_url, "https://graph.facebook.com")

    def test_unlisted_api_host_refused_even_for_system_admin(self):
        account = self.meta.with_user(self.sysadmin)
        for url in (
            "https://attacker.example",
            "http://graph.facebook.com",
            "https://graph.facebook.com@attacker.example",
            "https://graph.facebook.com:8443",
            "https://graph.facebook.com.attacker.example",
            "ftp://graph.facebook.com",
        ):
            with self.assertRaises(ValidationError), self.cr.savepoint():
                account.write({"api_base_url": url})
                account.flush_recordset()
        self.env["ir.config_parameter"].set_param(
            ALLOWLIST, "stub.internal:8443, attacker.example"
        )
        account.write({"api_base_url": "https://attacker.example/"})
        self.assertEqual(self.meta._get_api().base_url, "https://attacker.example")
        account.write({"api_base_url": "http://stub.internal:8443"})
        with self.assertRaises(ValidationError), self.cr.savepoint():
            account.write({"api_base_url": "http://stub.internal:9000"})
            account.flush_recordset()
        # Taken off the list later: the client is not built any more.
        self.env["ir.config_parameter"].set_param(ALLOWLIST, "")
        with self.assertRaises(UserError):
            self.meta._get_api()
        with self.assertRaises(UserError):
            self.meta.with_user(self.sysadmin).action_test_connection()

    # Item 3: forged replies and opt-outs.

    def test_simulate_reply_only_simulator_and_win_back_admin(self):
        meta_enrollment = _meta_enrollment(self.campaign, self.meta)
        with self.assertRaises(UserError):
            meta_enrollment.with_user(self.manager).action_simulate_reply("STOP")
        with self.assertRaises(AccessError):
            self.enrollment.with_user(self.user).action_simulate_reply("STOP")
        partner = self.enrollment.partner_id
        self.assertFalse(
            self.env["phone.blacklist"].search(
                [("number", "in", [partner.phone_sanitized, "+393339990099"])]
            )
        )
        self.assertEqual(
            (self.enrollment.state, meta_enrollment.state), ("running", "running")
        )
        # The simulator account still simulates, for its administrator.
        self.enrollment.with_user(self.manager).action_simulate_reply("Tell me more")
        self.assertEqual(self.enrollment.state, "replied")

    def test_users_cannot_create_messages(self):
        """Inbound messages come from the webhook only; outbound ones from
        the composer, the send test and the engine, after their checks."""
        for user in (self.user, self.manager):
            for direction in ("inbound", "outbound"):
                with self.assertRaises(AccessError), self.cr.savepoint():
                    self.env["winback.message"].with_user(user).create(
                        {
                            "direction": direction,
                            "state": "received",
                            "partner_id": self.enrollment.partner_id.id,
                            "account_id": self.account.id,
                            "company_id": self.company.id,
                            "phone_e164": "+393331000001",
                            "body": "STOP",
                        }
                    )

    def test_users_cannot_rewrite_messages(self):
        """A message is the record of what was sent or received: nobody
        rewrites its text, number, direction or state by hand."""
        outbound = self.enrollment.message_ids
        inbound = _receive(self.env, self.account, "+393339990001", "Hello")
        for user in (self.user, self.manager):
            for message, vals in (
                (outbound, {"state": "queued"}),
                (outbound, {"phone_e164": "+393339999999"}),
                (outbound, {"direction": "inbound"}),
                (inbound, {"body": "STOP"}),
            ):
                with self.assertRaises(AccessError), self.cr.savepoint():
                    message.with_user(user).write(vals)
        self.assertEqual(outbound.state, "read")
        self.assertEqual(inbound.body, "Hello")

    def test_link_unmatched_reply_once_and_only_to_readable_partner(self):
        partner = self.enrollment.partner_id
        message = _receive(self.env, self.account, "+393339990002", "STOP")
        self.assertFalse(message.partner_id)
        other_company = self.env["res.company"].create({"name": "Other shop"})
        hidden = self.env["res.partner"].create(
            {"name": "Other shop's customer", "company_id": other_company.id}
        )
        as_user = message.with_user(self.user)
        # A partner the user cannot read is refused.
        with self.assertRaises(AccessError), self.cr.savepoint():
            as_user.write({"partner_id": hidden.id})
            as_user.action_link_partner()
        as_user.write({"partner_id": partner.id})
        as_user.action_link_partner()
        notes = partner.message_ids.filtered(lambda m: "STOP" in (m.body or ""))
        self.assertEqual(len(notes), 2)  # the reply, and the opt-out note
        self.assertEqual(self.enrollment.state, "opted_out")
        # The confirmation went out when the STOP arrived, before anyone
        # knew the customer: linking sends none more.
        confirmations = self.env["winback.message"].search(
            [
                ("phone_e164", "=", "+393339990002"),
                ("template_id", "=", False),
                ("direction", "=", "outbound"),
            ]
        )
        self.assertEqual(len(confirmations), 1)
        # A second click changes nothing: no second post, no second opt-out.
        with self.assertRaises(UserError):
            as_user.action_link_partner()
        with self.assertRaises(AccessError), self.cr.savepoint():
            as_user.write({"partner_id": hidden.id})
        self.assertEqual(
            len(partner.message_ids.filtered(lambda m: "STOP" in (m.body or ""))), 2
        )
        self.assertEqual(
            self.env["winback.message"].search_count(
                [
                    ("phone_e164", "=", "+393339990002"),
                    ("template_id", "=", False),
                    ("direction", "=", "outbound"),
                ]
            ),
            1,
        )
        # An outbound message is no reply to link.
        with self.assertRaises(UserError):
            self.enrollment.message_ids.filtered(
                lambda m: m.direction == "outbound"
            ).with_user(self.user).action_link_partner()

    def test_create_partner_from_unmatched_reply_once(self):
        message = _receive(self.env, self.account, "+393339990003", "Hi there")
        message.with_user(self.user).action_create_partner()
        partner = message.partner_id
        self.assertEqual(partner.phone_sanitized, "+393339990003")
        self.assertEqual(
            len(partner.message_ids.filtered(lambda m: "Hi there" in (m.body or ""))),
            1,
        )
        with self.assertRaises(UserError):
            message.with_user(self.user).action_create_partner()
        self.assertEqual(
            self.env["res.partner"].search_count(
                [("phone_sanitized", "=", "+393339990003")]
            ),
            1,
        )

    def test_read_only_user_runs_no_action(self):
        """Every button of the addon checks its group on the server."""
        env = self.env(user=self.user)
        self.campaign.test_partner_id = self.enrollment.partner_id
        message = _receive(self.env, self.account, "+393339990004", "Hello")
        calls = [
            (env["winback.segment"].browse(self.segment_warm.id), "action_recompute"),
            (env["winback.campaign"].browse(self.campaign.id), "action_start"),
            (env["winback.campaign"].browse(self.campaign.id), "action_preview"),
            (env["winback.campaign"].browse(self.campaign.id), "action_pause"),
            (env["winback.campaign"].browse(self.campaign.id), "action_done"),
            (env["winback.campaign"].browse(self.campaign.id), "action_enroll_now"),
            (env["winback.campaign"].browse(self.campaign.id), "action_send_test"),
            (env["winback.account"].browse(self.account.id), "action_test_connection"),
            (env["winback.account"].browse(self.account.id), "action_resume"),
            (env["winback.account"].browse(self.account.id), "action_sync_templates"),
            (
                env["winback.enrollment"].browse(self.enrollment.id),
                "action_simulate_reply",
            ),
        ]
        for records, method in calls:
            with self.subTest(method=method), self.assertRaises(AccessError):
                with self.cr.savepoint():
                    getattr(records, method)()
        self.assertEqual(self.campaign.state, "draft")
        self.assertFalse(self.campaign.preview_date)
        self.assertEqual(self.enrollment.state, "running")
        # Outside the Win-back groups, not even the reading buttons.
        outsider = new_test_user(
            self.env, login="sec_outsider", groups="base.group_user"
        )
        with self.assertRaises(AccessError):
            message.with_user(outsider).action_create_partner()
        with self.assertRaises(AccessError):
            self.segment_warm.with_user(outsider).action_view_partners()

    def test_win_back_admin_runs_the_buttons(self):
        """The same buttons work for a Win-back Administrator who is not a
        system administrator."""
        self.template.param_ids = [(0, 0, {"position": 1, "source": "first_name"})]
        campaign = self.campaign.with_user(self.manager)
        campaign.action_preview()
        self.assertTrue(self.campaign.preview_date)
        campaign.action_start()
        self.assertEqual(self.campaign.state, "running")
        campaign.action_pause()
        self.assertEqual(self.campaign.state, "paused")
        self.segment_warm.with_user(self.manager).action_recompute()
        result = self.account.with_user(self.manager).action_test_connection()
        self.assertEqual(result["params"]["type"], "success")

    # Item 5: nothing a user writes renders unsanitised.

    def test_preview_html_is_sanitized(self):
        campaign = self.campaign.with_user(self.manager)
        evil = '<p>ok</p><img src="x" onerror="alert(1)"><script>x</script>'
        campaign.write({"preview_html": evil})
        html = str(self.campaign.preview_html)
        self.assertNotIn("onerror", html)
        self.assertNotIn("<script", html)
        # Counting again replaces it with the counts.
        campaign.action_preview()
        self.assertNotIn("<p>ok</p>", self.campaign.preview_html)
        self.assertTrue(self.campaign.preview_date)

    # Item 11: the webhook key, and consent changes in the chatter.

    def test_webhook_url_for_system_admins_only(self):
        with self.assertRaises(AccessError):
            self.meta.with_user(self.manager).read(["webhook_url"])
        with self.assertRaises(AccessError):
            self.meta.with_user(self.user).read(["webhook_url"])
        url = self.meta.with_user(self.sysadmin).webhook_url
        self.assertIn(self.meta.sudo().webhook_key, url)
        # The form still opens for a Win-back Administrator, without it.
        arch = (
            self.env["winback.account"]
            .with_user(self.manager)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        for field in ("webhook_url", "api_base_url", "api_version", "provider"):
            self.assertNotIn(f'name="{field}"', arch)

    def test_consent_changes_tracked_in_chatter(self):
        # The customer exists from an earlier transaction (Odoo does not track
        # changes in the transaction that created the record).
        self.env.flush_all()
        self.env.cr.precommit.run()
        partner = self.enrollment.partner_id.with_user(self.user)
        partner.write(
            {
                "winback_consent_date": "2026-03-01 10:00:00",
                "winback_consent_source": "Shop counter",
            }
        )
        # Tracking values are written when the transaction commits.
        partner.env.flush_all()
        partner.env.cr.precommit.run()
        tracked = (
            self.env["mail.tracking.value"]
            .search(
                [
                    ("mail_message_id.model", "=", "res.partner"),
                    ("mail_message_id.res_id", "=", partner.id),
                ]
            )
            .field_id.mapped("name")
        )
        self.assertIn("winback_consent_date", tracked)
        self.assertIn("winback_consent_source", tracked)


@tagged("post_install", "-at_install")
class TestSecurityRpc(WinbackDataMixin, HttpCase):
    """The same holes, over JSON-RPC as the browser sends it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls._setup_campaign()
        cls.user, cls.manager, cls.sysadmin = _users(cls.env)
        cls.enrollment = cls._enroll(
            cls.segment_warm, "running", messages=[(cls.step1, "read")]
        )
        cls.meta = _meta_account(cls.env)
        # The attacker's server: a local HTTP server nobody listed.
        cls.stub = CloudApiStub().start()
        cls.addClassCleanup(cls.stub.stop)

    def _call(self, login, model, method, ids, args=(), kwargs=None):
        self.authenticate(login, f"{login}_pw")
        return self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {
                "model": model,
                "method": method,
                "args": [ids, *args],
                "kwargs": kwargs or {},
            },
        )

    def _assert_refused(self, login, model, method, ids, args=(), name="AccessError"):
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException) as caught:
            self._call(login, model, method, ids, args)
        self.assertEqual(str(caught.exception), f"odoo.exceptions.{name}")

    def test_rpc_token_cannot_be_redirected(self):
        self._assert_refused(
            "sec_boss",
            "winback.account",
            "write",
            [self.meta.id],
            [{"api_base_url": self.stub.base_url}],
        )
        self.assertFalse(self.stub.state.requests, "the token reached another host")
        self.assertEqual(self.meta.api_base_url, "https://graph.facebook.com")
        # A system administrator cannot either, while the host is unlisted.
        self._assert_refused(
            "sec_sysadmin",
            "winback.account",
            "write",
            [self.meta.id],
            [{"api_base_url": self.stub.base_url}],
            name="ValidationError",
        )
        self.assertFalse(self.stub.state.requests)
        # Listed by the system administrator: staging works.
        host = urlsplit(self.stub.base_url).netloc
        self.env["ir.config_parameter"].set_param(ALLOWLIST, host)
        self._call(
            "sec_sysadmin",
            "winback.account",
            "write",
            [self.meta.id],
            [{"api_base_url": self.stub.base_url}],
        )
        result = self._call(
            "sec_boss", "winback.account", "action_test_connection", [self.meta.id]
        )
        self.assertEqual(result["params"]["type"], "success")
        self.assertEqual(len(self.stub.state.requests), 1)

    def test_rpc_simulate_reply_refused(self):
        meta_enrollment = _meta_enrollment(self.campaign, self.meta)
        self._assert_refused(
            "sec_sales",
            "winback.enrollment",
            "action_simulate_reply",
            [self.enrollment.id],
            ["STOP"],
        )
        self._assert_refused(
            "sec_boss",
            "winback.enrollment",
            "action_simulate_reply",
            [meta_enrollment.id],
            ["STOP"],
            name="UserError",
        )
        partner = self.enrollment.partner_id
        self.assertFalse(
            self.env["phone.blacklist"].search_count(
                [("number", "in", [partner.phone_sanitized, "+393339990099"])]
            )
        )
        self.assertEqual(
            (self.enrollment.state, meta_enrollment.state), ("running", "running")
        )

    def test_rpc_forged_inbound_refused(self):
        partner = self.enrollment.partner_id
        Message = self.env["winback.message"]
        domain = [
            ("direction", "=", "inbound"),
            ("phone_e164", "=", partner.phone_sanitized),
        ]
        before = Message.search_count(domain)
        with mute_logger("odoo.http"), self.assertRaises(JsonRpcException) as caught:
            self.authenticate("sec_sales", "sec_sales_pw")
            self.make_jsonrpc_request(
                "/web/dataset/call_kw",
                {
                    "model": "winback.message",
                    "method": "create",
                    "args": [
                        {
                            "direction": "inbound",
                            "state": "received",
                            "account_id": self.account.id,
                            "company_id": self.company.id,
                            "phone_e164": partner.phone_sanitized,
                            "body": "STOP",
                        }
                    ],
                    "kwargs": {},
                },
            )
        self.assertEqual(str(caught.exception), "odoo.exceptions.AccessError")
        self.assertEqual(Message.search_count(domain), before)

    def test_rpc_read_only_user_cannot_recompute(self):
        self._assert_refused(
            "sec_sales", "winback.segment", "action_recompute", [self.segment_warm.id]
        )
        self._assert_refused(
            "sec_sales", "winback.campaign", "action_enroll_now", [self.campaign.id]
        )
        # The Win-back Administrator can.
        result = self._call(
            "sec_boss", "winback.segment", "action_recompute", [self.segment_warm.id]
        )
        self.assertEqual(result["params"]["type"], "success")
