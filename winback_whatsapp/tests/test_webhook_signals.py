"""Meta's account signals (issue 13 §5), over real HTTP with signed payloads:
template status and quality, the number's quality, account updates and the
messaging limit; a field Win-back does not use; another WABA's change."""

import json
from datetime import datetime, timedelta
from pathlib import Path

from odoo import fields
from odoo.tests import BaseCase, HttpCase, new_test_user, tagged

from ..tools.webhook_parser import (
    AccountUpdateEvent,
    CapabilityEvent,
    PhoneQualityEvent,
    TemplateStatusEvent,
    parse_payload,
)
from .common import post_webhook, run_job

SECRET = "signals-app-secret"
PNID = "106540352242922"
# The WABA of Meta's own examples (and of the recorded payloads).
WABA = "102290129340398"
RECORDED = json.loads(
    (Path(__file__).parent / "data" / "meta_webhooks.json").read_text("utf-8")
)
IN_A_WEEK = int((datetime.now() + timedelta(days=7)).timestamp())


def _signal(field, value, waba_id=WABA):
    """A whole webhook call carrying one account-signal change, as Meta
    sends it: no metadata, the entry is the WhatsApp Business Account."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "time": 1751247548,
                "changes": [{"value": value, "field": field}],
            }
        ],
    }


def _template_status(event, name, language="it", template_id=None, **extra):
    value = {
        "event": event,
        "message_template_id": template_id or 1689556908120000,
        "message_template_name": name,
        "message_template_language": language,
        "reason": "NONE",
        "message_template_category": "MARKETING",
        **extra,
    }
    return _signal("message_template_status_update", value)


class TestSignalParser(BaseCase):
    """The parser reads Meta's documented shapes (pure, no database)."""

    def test_template_status_with_pause_and_disable_info(self):
        (change,) = parse_payload(
            _template_status(
                "PAUSED",
                "winback_offer",
                other_info={
                    "title": "SECOND_PAUSE",
                    "description": "Paused for 6 hours.",
                },
                disable_info={"disable_date": 1751234563},
            )
        )
        self.assertEqual(change.waba_id, WABA)
        self.assertIsNone(change.phone_number_id)
        (event,) = change.signals
        self.assertIsInstance(event, TemplateStatusEvent)
        self.assertEqual(
            (event.event, event.name, event.title, event.description),
            ("PAUSED", "winback_offer", "SECOND_PAUSE", "Paused for 6 hours."),
        )
        self.assertEqual(event.template_id, "1689556908120000")
        self.assertEqual(event.disable_date, datetime(2025, 6, 29, 22, 2, 43))

    def test_limits_read_in_both_shapes(self):
        (old,) = parse_payload(
            _signal(
                "phone_number_quality_update",
                {
                    "display_phone_number": "15550783881",
                    "event": "THROUGHPUT_UPGRADE",
                    "current_limit": "TIER_UNLIMITED",
                },
            )
        )[0].signals
        self.assertIsInstance(old, PhoneQualityEvent)
        self.assertEqual(old.limit, "TIER_UNLIMITED")
        (new,) = parse_payload(
            _signal(
                "phone_number_quality_update",
                {
                    "event": "DOWNGRADE",
                    "current_limit": "TIER_10K",
                    "max_daily_conversations_per_business": "TIER_2K",
                },
            )
        )[0].signals
        self.assertEqual(new.limit, "TIER_2K")
        (capability,) = parse_payload(
            _signal(
                "business_capability_update",
                {
                    "max_daily_conversations_per_business": 2000,
                    "max_phone_numbers_per_waba": 25,
                },
            )
        )[0].signals
        self.assertIsInstance(capability, CapabilityEvent)
        self.assertEqual(capability.limit, "TIER_2K")
        (unlimited,) = parse_payload(
            _signal(
                "business_capability_update", {"max_daily_conversation_per_phone": -1}
            )
        )[0].signals
        self.assertEqual(unlimited.limit, "TIER_UNLIMITED")

    def test_account_update_names_the_customer_waba(self):
        """Meta's partner events come under the partner's business id; the
        WABA they are about is waba_info.waba_id."""
        payload = _signal(
            "account_update",
            {
                "event": "PARTNER_ADDED",
                "waba_info": {"waba_id": "980198427658004", "owner_business_id": "1"},
            },
            waba_id="2949482758682047",
        )
        (change,) = parse_payload(payload)
        self.assertEqual(change.waba_id, "980198427658004")
        (restriction,) = parse_payload(
            _signal(
                "account_update",
                {
                    "event": "ACCOUNT_RESTRICTION",
                    "restriction_info": [
                        {
                            "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                            "expiration": 1641330498,
                        }
                    ],
                },
            )
        )[0].signals
        self.assertIsInstance(restriction, AccountUpdateEvent)
        self.assertEqual(
            restriction.restrictions[0].restriction_type,
            "RESTRICTED_BIZ_INITIATED_MESSAGING",
        )
        self.assertEqual(
            restriction.restrictions[0].expiration, datetime(2022, 1, 4, 21, 8, 18)
        )

    def test_unknown_field_is_marked_ignored_never_parsed(self):
        (change,) = parse_payload(
            _signal("template_category_update", ["not", "an", "object"])
        )
        self.assertTrue(change.ignored)
        self.assertEqual(change.field, "template_category_update")
        self.assertEqual((change.signals, change.messages), ((), ()))


@tagged("post_install", "-at_install")
class TestWebhookSignals(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.manager = new_test_user(
            cls.env,
            login="signals_manager",
            name="Marta Manager",
            groups="winback_whatsapp.group_winback_manager",
        )
        cls.responsible = new_test_user(
            cls.env,
            login="signals_responsible",
            name="Carlo Campaigns",
            groups="winback_whatsapp.group_winback_user",
        )
        cls.account = cls.env["winback.account"].create(
            {
                "name": "Shop number",
                "phone_number_id": PNID,
                "waba_id": WABA,
                "app_secret": SECRET,
                "messages_per_second": 0,
                "daily_recipient_limit": 1000,
            }
        )
        Template = cls.env["winback.template"]
        cls.offer = Template.create(
            {
                "name": "winback_90_offer",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "Ciao, ti aspettiamo con uno sconto!",
            }
        )
        cls.last_call = Template.create(
            {
                "name": "winback_90_last_call",
                "language": "it",
                "account_id": cls.account.id,
                "status": "approved",
                "body": "Ultima chiamata per lo sconto.",
            }
        )
        cls.campaign = cls.env["winback.campaign"].create(
            {
                "name": "90 days",
                "account_id": cls.account.id,
                "user_id": cls.responsible.id,
                "window_start": 0,
                "window_end": 24,
                "window_sunday": True,
                "step_ids": [
                    (0, 0, {"name": "Offer", "template_id": cls.offer.id}),
                    (0, 0, {"name": "Last call", "template_id": cls.last_call.id,
                            "delay_days": 3}),
                ],
            }
        )  # fmt: skip
        cls.campaign.state = "running"
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Mario Rossi",
                "mobile": "+393331234567",
                "winback_consent_date": fields.Datetime.now(),
                "winback_consent_source": "Shop counter",
            }
        )
        cls.enrollment = cls.env["winback.enrollment"].create(
            {
                "partner_id": cls.partner.id,
                "campaign_id": cls.campaign.id,
                "phone_e164": "+393331234567",
            }
        )
        cls.queued = cls.env["winback.message"].create(
            {
                "direction": "outbound",
                "state": "queued",
                "enrollment_id": cls.enrollment.id,
                "step_id": cls.campaign.step_ids[0].id,
                "partner_id": cls.partner.id,
                "account_id": cls.account.id,
                "company_id": cls.account.company_id.id,
                "template_id": cls.offer.id,
                "phone_e164": "+393331234567",
                "scheduled_at": fields.Datetime.now() - timedelta(minutes=1),
            }
        )
        cls.url = f"/winback_whatsapp/webhook/{cls.account.sudo().webhook_key}"

    # helpers ---------------------------------------------------------

    def _post(self, payload):
        """A signed POST, as Meta makes it, then a run of the processing
        cron (as ir.cron runs it). Returns the stored event."""
        post_webhook(self, self.url, payload, SECRET)
        return self.env["winback.webhook.event"].search(
            [("account_id", "=", self.account.id)], order="id desc", limit=1
        )

    def _send(self):
        return run_job(self, "winback.sender", "_cron_send")

    def _assert_sent(self):
        # The simulator reports every message read at once.
        self.assertEqual(self.queued.state, "read")
        self.assertTrue(self.queued.sent_at)

    def _todos(self, record, user):
        return record.activity_ids.filtered(lambda a: a.user_id == user)

    # Templates -------------------------------------------------------

    def test_real_approved_payload_approves_the_template(self):
        """Meta's own APPROVED example (recorded by pywa) approves the
        template it names, found by name and language, and stores its ID."""
        pending = self.env["winback.template"].create(
            {
                "name": "order_confirmation",
                "language": "en_US",
                "account_id": self.account.id,
                "status": "pending",
                "body": "Your order is confirmed.",
            }
        )
        event = self._post(RECORDED["template_status_update/approved"])
        self.assertEqual((event.state, event.error), ("done", False))
        self.assertEqual(pending.status, "approved")
        self.assertEqual(pending.meta_id, "1689556908129832")
        self.assertEqual(pending.meta_note, "APPROVED")

    def test_template_paused_by_meta_pauses_its_campaigns(self):
        """A first pause: the template is paused, the running campaign using
        it pauses with a to-do for its responsible, nothing is sent; Meta's
        APPROVED (the pause ends) makes the template usable again, but the
        campaign stays paused for its responsible to resume."""
        description = (
            "Your WhatsApp message template has been paused for 3 hours until "
            "Aug 31 at 12:47 AM UTC because it had issues."
        )
        event = self._post(
            _template_status(
                "PAUSED",
                "winback_90_offer",
                other_info={"title": "FIRST_PAUSE", "description": description},
            )
        )
        self.assertEqual(event.state, "done")
        self.assertEqual(self.offer.status, "paused")
        self.assertEqual(self.offer.meta_pause, "FIRST_PAUSE")
        self.assertEqual(self.offer.meta_id, "1689556908120000")
        self.assertIn(description, self.offer.meta_note)
        self.assertEqual(self.campaign.state, "paused")
        (todo,) = self._todos(self.campaign, self.responsible)
        self.assertIn("winback_90_offer", todo.note)
        self.assertIn("Paused", todo.note)
        self.assertIn("FIRST_PAUSE", todo.note)
        # The send path honours it: the message waits.
        self._send()
        self.assertEqual(self.queued.state, "queued")
        self.assertFalse(self.queued.wamid)
        # The second pause finds the campaign already paused: no new to-do.
        self._post(
            _template_status(
                "PAUSED",
                "winback_90_offer",
                template_id=1689556908120000,
                other_info={"title": "SECOND_PAUSE", "description": "6 hours."},
            )
        )
        self.assertEqual(self.offer.meta_pause, "SECOND_PAUSE")
        self.assertEqual(len(self._todos(self.campaign, self.responsible)), 1)
        # The pause ends: approved again, the campaign is the responsible's call.
        self._post(
            _template_status(
                "APPROVED",
                "winback_90_offer",
                template_id=1689556908120000,
                other_info={
                    "title": "UNPAUSE",
                    "description": "Your WhatsApp message template has been unpaused.",
                },
            )
        )
        self.assertEqual(self.offer.status, "approved")
        self.assertFalse(self.offer.meta_pause)
        self.assertEqual(self.campaign.state, "paused")
        todos = self._todos(self.campaign, self.responsible)
        self.assertEqual(len(todos), 2)
        self.assertTrue(
            any("stays paused" in (t.note or "") for t in todos), todos.mapped("note")
        )
        self._send()
        self.assertEqual(self.queued.state, "queued")

    def test_disabled_archived_and_unarchived(self):
        disabled_on = 1751234563
        self._post(
            _template_status(
                "DISABLED",
                "winback_90_last_call",
                template_id=1689556908120002,
                disable_info={"disable_date": disabled_on},
                other_info={"title": "DISABLED", "description": "Third pause."},
            )
        )
        self.assertEqual(self.last_call.status, "disabled")
        self.assertEqual(self.last_call.disable_date, datetime(2025, 6, 29, 22, 2, 43))
        self.assertEqual(self.campaign.state, "paused")
        self.assertEqual(len(self._todos(self.campaign, self.responsible)), 1)
        # Archived, then unarchived: Meta restores the previous status.
        self._post(_template_status("ARCHIVED", "winback_90_offer"))
        self.assertEqual(self.offer.status, "archived")
        self._post(_template_status("UNARCHIVED", "winback_90_offer"))
        self.assertEqual(self.offer.status, "approved")
        # Deleted at Meta: never sendable again.
        self._post(
            _template_status("PENDING_DELETION", "winback_90_offer", reason=None)
        )
        self.assertEqual(self.offer.status, "deleted")

    def test_rejected_template_with_meta_reasons(self):
        reason = "Your template has parameters placed next to each other."
        self._post(
            _template_status(
                "REJECTED",
                "winback_90_offer",
                reason="INVALID_FORMAT",
                rejection_info={
                    "reason": reason,
                    "recommendation": "Separate parameters with text.",
                },
            )
        )
        self.assertEqual(self.offer.status, "rejected")
        self.assertIn("INVALID_FORMAT", self.offer.meta_note)
        self.assertIn(reason, self.offer.meta_note)
        self.assertEqual(self.campaign.state, "paused")
        (todo,) = self._todos(self.campaign, self.responsible)
        self.assertIn(reason, todo.note)

    def test_flagged_template_is_still_sent_but_at_risk(self):
        event = self._post(
            _template_status(
                "FLAGGED", "winback_90_offer", disable_info={"disable_date": IN_A_WEEK}
            )
        )
        self.assertEqual(event.state, "done")
        self.assertEqual(self.offer.status, "approved")
        self.assertTrue(self.offer.at_risk)
        self.assertTrue(self.offer.disable_date)
        self.assertEqual(self.campaign.state, "running")
        self.assertIn(
            "flagged",
            " ".join(self.campaign.message_ids.mapped("preview")),
        )
        self._send()
        self._assert_sent()
        # Reinstated: no longer at risk.
        self._post(_template_status("REINSTATED", "winback_90_offer"))
        self.assertFalse(self.offer.at_risk)
        self.assertFalse(self.offer.disable_date)
        self.assertEqual(self.offer.status, "approved")

    def test_template_quality_follows_meta(self):
        self.offer.meta_id = "806312974732579"
        quality = {
            "previous_quality_score": "GREEN",
            "new_quality_score": "YELLOW",
            "message_template_id": 806312974732579,
            "message_template_name": "a_name_meta_changed",
            "message_template_language": "it",
        }
        event = self._post(_signal("message_template_quality_update", quality))
        self.assertEqual(event.state, "done")
        self.assertEqual(self.offer.quality, "yellow")
        self._post(
            _signal(
                "message_template_quality_update",
                dict(quality, previous_quality_score="YELLOW", new_quality_score="RED"),
            )
        )
        self.assertEqual(self.offer.quality, "red")
        odd = self._post(
            _signal(
                "message_template_quality_update",
                dict(quality, new_quality_score="PURPLE"),
            )
        )
        self.assertEqual(odd.state, "done")
        self.assertIn("PURPLE", odd.error)
        self.assertEqual(self.offer.quality, "red")

    def test_status_of_a_template_odoo_does_not_know(self):
        event = self._post(_template_status("APPROVED", "not_in_odoo", "en"))
        self.assertEqual(event.state, "done")
        self.assertIn("not_in_odoo", event.error)
        self.assertIn("Sync", event.error)

    # The number and the account ---------------------------------------

    def test_messaging_limit_in_both_shapes(self):
        """Before February 2026 Meta sends current_limit; after, only
        max_daily_conversations_per_business: both are read, the new one
        first, and the sender's daily recipients follow."""
        self._post(
            _signal(
                "phone_number_quality_update",
                {
                    "display_phone_number": "15550783881",
                    "event": "UPGRADE",
                    "old_limit": "TIER_2K",
                    "current_limit": "TIER_10K",
                },
            )
        )
        self.assertEqual(self.account.messaging_limit, "TIER_10K")
        self.assertEqual(self.account.daily_recipient_limit, 10000)
        self._post(
            _signal(
                "phone_number_quality_update",
                {
                    "display_phone_number": "15550783881",
                    "event": "DOWNGRADE",
                    "current_limit": "TIER_10K",
                    "max_daily_conversations_per_business": "TIER_2K",
                },
            )
        )
        self.assertEqual(self.account.messaging_limit, "TIER_2K")
        self.assertEqual(self.account.daily_recipient_limit, 2000)
        self._post(
            _signal(
                "business_capability_update",
                {
                    "max_daily_conversations_per_business": 100000,
                    "max_phone_numbers_per_waba": 25,
                },
            )
        )
        self.assertEqual(self.account.messaging_limit, "TIER_100K")
        self.assertEqual(self.account.daily_recipient_limit, 100000)
        self._post(
            _signal(
                "business_capability_update",
                {"max_daily_conversations_per_business": "TIER_UNLIMITED"},
            )
        )
        self.assertEqual(self.account.messaging_limit, "TIER_UNLIMITED")
        self.assertEqual(self.account.daily_recipient_limit, 0)
        self.assertIn("Unlimited", " ".join(self.account.message_ids.mapped("preview")))
        self.assertEqual(self.account.state, "active")

    def test_flagged_number_pauses_sending_with_an_alert(self):
        event = self._post(
            _signal(
                "phone_number_quality_update",
                {
                    "display_phone_number": "15550783881",
                    "event": "FLAGGED",
                    "current_limit": "TIER_2K",
                },
            )
        )
        self.assertEqual(event.state, "done")
        self.assertEqual(self.account.state, "paused")
        self.assertTrue(self.account.quality_flagged)
        self.assertEqual(self.account.quality_rating, "red")
        self.assertIn("15550783881", self.account.pause_reason)
        (todo,) = self._todos(self.account, self.manager)
        self.assertIn("flagged", todo.note)
        # The campaign's responsible hears of it too (the account's pause).
        self.assertTrue(self._todos(self.campaign, self.responsible))
        self._send()
        self.assertEqual(self.queued.state, "queued")
        # The flag lifted: alerted; sending stays paused until resumed.
        self._post(
            _signal(
                "phone_number_quality_update",
                {"display_phone_number": "15550783881", "event": "UNFLAGGED"},
            )
        )
        self.assertFalse(self.account.quality_flagged)
        self.assertEqual(self.account.state, "paused")
        self.assertEqual(len(self._todos(self.account, self.manager)), 2)
        self.account.with_user(self.manager).action_resume()
        self._send()
        self._assert_sent()

    def test_restriction_pauses_sending_with_an_alert(self):
        event = self._post(
            _signal(
                "account_update",
                {
                    "event": "ACCOUNT_RESTRICTION",
                    "restriction_info": [
                        {
                            "restriction_type": "RESTRICTED_BIZ_INITIATED_MESSAGING",
                            "expiration": IN_A_WEEK,
                        },
                        {
                            "restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION",
                            "expiration": IN_A_WEEK,
                        },
                    ],
                },
            )
        )
        self.assertEqual(event.state, "done")
        self.assertEqual(self.account.state, "paused")
        self.assertIn("RESTRICTED_BIZ_INITIATED_MESSAGING", self.account.restriction)
        self.assertIn("RESTRICTED_BIZ_INITIATED_MESSAGING", self.account.pause_reason)
        self.assertEqual(
            self.account.restricted_until, datetime.utcfromtimestamp(IN_A_WEEK)
        )
        self.assertTrue(self.account.restriction_active)
        self.assertTrue(self._todos(self.account, self.manager))
        self.assertIn(
            "RESTRICTED_BIZ_INITIATED_MESSAGING",
            " ".join(self.account.message_ids.mapped("preview")),
        )
        self._send()
        self.assertEqual(self.queued.state, "queued")
        self.assertFalse(self.queued.sent_at)

    def test_restriction_that_leaves_sending_alone_only_alerts(self):
        self._post(
            _signal(
                "account_update",
                {
                    "event": "ACCOUNT_RESTRICTION",
                    "restriction_info": [
                        {"restriction_type": "RESTRICTED_ADD_PHONE_NUMBER_ACTION"}
                    ],
                },
            )
        )
        self.assertEqual(self.account.state, "active")
        self.assertIn("RESTRICTED_ADD_PHONE_NUMBER_ACTION", self.account.restriction)
        self.assertTrue(self._todos(self.account, self.manager))
        self._send()
        self._assert_sent()

    def test_account_updates(self):
        # A violation is alerted, sending goes on.
        self._post(
            _signal(
                "account_update",
                {
                    "event": "ACCOUNT_VIOLATION",
                    "violation_info": {"violation_type": "ADULT"},
                },
            )
        )
        self.assertEqual(self.account.state, "active")
        (todo,) = self._todos(self.account, self.manager)
        self.assertIn("ADULT", todo.note)
        # Meta's partner events change nothing (named by waba_info.waba_id).
        partner = self._post(
            _signal(
                "account_update",
                {
                    "event": "PARTNER_ADDED",
                    "waba_info": {
                        "waba_id": WABA,
                        "owner_business_id": "2329417887457253",
                    },
                },
                waba_id="2949482758682047",
            )
        )
        self.assertEqual((partner.state, partner.error), ("done", False))
        # An event Meta adds later: kept, noted, not failed.
        new = self._post(_signal("account_update", {"event": "SOMETHING_NEW"}))
        self.assertEqual(new.state, "done")
        self.assertIn("SOMETHING_NEW", new.error)
        # Disabled by Meta: paused; reinstated: alerted, resuming is human.
        self._post(
            _signal(
                "account_update",
                {
                    "event": "DISABLED_UPDATE",
                    "ban_info": {
                        "waba_ban_state": "DISABLE",
                        "waba_ban_date": "April 17, 2025",
                    },
                },
            )
        )
        self.assertEqual(self.account.state, "paused")
        self.assertIn("April 17, 2025", self.account.restriction)
        self._post(
            _signal(
                "account_update",
                {
                    "event": "DISABLED_UPDATE",
                    "ban_info": {
                        "waba_ban_state": "REINSTATE",
                        "waba_ban_date": "April 17, 2025",
                    },
                },
            )
        )
        self.assertFalse(self.account.restriction)
        self.assertEqual(self.account.state, "paused")

    # Unknown fields, other accounts -------------------------------------

    def test_unknown_field_is_stored_and_marked_ignored(self):
        payload = _signal(
            "template_category_update",
            {
                "message_template_id": 1689556908120000,
                "message_template_name": "winback_90_offer",
                "message_template_language": "it",
                "previous_category": "UTILITY",
                "new_category": "MARKETING",
            },
        )
        # Another change of an unknown field, with a shape nobody reads.
        payload["entry"][0]["changes"].append({"field": "calls", "value": ["odd"]})
        event = self._post(payload)
        self.assertEqual(event.state, "done")
        self.assertEqual(event.ignored_fields, "calls, template_category_update")
        self.assertIn("Ignored", event.error)
        self.assertEqual(json.loads(event.raw_body), payload)
        self.assertEqual(self.offer.status, "approved")
        ignored = self.env["winback.webhook.event"].search(
            [("ignored_fields", "!=", False)]
        )
        self.assertEqual(ignored, event)

    def test_signal_for_another_waba_is_refused(self):
        """Signed with this account's secret, but about another WhatsApp
        Business Account: refused like a foreign phone number, never
        applied nor retried."""
        payload = _template_status("PAUSED", "winback_90_offer")
        payload["entry"][0]["id"] = "999888777"
        event = self._post(payload)
        self.assertEqual(event.state, "refused")
        self.assertIn("999888777", event.error)
        self.assertEqual(self.offer.status, "approved")
        self.assertEqual(self.campaign.state, "running")
        restriction = _signal(
            "account_update",
            {"event": "ACCOUNT_RESTRICTION", "restriction_info": []},
            waba_id="999888777",
        )
        self.assertEqual(self._post(restriction).state, "refused")
        self.assertEqual(self.account.state, "active")
        # An account that does not know its WABA accepts no signal.
        self.account.waba_id = False
        event = self._post(_template_status("PAUSED", "winback_90_offer"))
        self.assertEqual(event.state, "refused")
        self.assertIn(WABA, event.error)
        self.assertEqual(self.offer.status, "approved")
