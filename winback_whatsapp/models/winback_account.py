import logging
import re
import secrets
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..tools.access import check_group
from ..tools.api_host import allowed_api_url
from ..tools.notification import success
from ..tools.whatsapp_api import SimulatorApi, WhatsAppApi, WhatsAppError

PROVIDERS = [
    ("simulator", "Simulator (offline demo)"),
    ("meta", "WhatsApp Cloud API (Meta)"),
]
API_HOST_ALLOWLIST = "winback_whatsapp.api_host_allowlist"
MANAGER = "winback_whatsapp.group_winback_manager"
# Meta's messaging limit tiers (tools/webhook_parser.LIMIT_TIERS).
MESSAGING_LIMITS = [
    ("TIER_50", "50 customers / 24 h"),
    ("TIER_250", "250 customers / 24 h"),
    ("TIER_1K", "1,000 customers / 24 h"),
    ("TIER_2K", "2,000 customers / 24 h"),
    ("TIER_10K", "10,000 customers / 24 h"),
    ("TIER_100K", "100,000 customers / 24 h"),
    ("TIER_UNLIMITED", "Unlimited"),
    ("TIER_NOT_SET", "Not set yet"),
]

_logger = logging.getLogger(__name__)


class WinbackAccount(models.Model):
    _name = "winback.account"
    _description = "WhatsApp Sender Account"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "name, id"

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    # Provider, version and base URL decide where the access token goes:
    # system administrators only (and the URL's host must be allowed).
    provider = fields.Selection(
        PROVIDERS,
        required=True,
        default="simulator",
        groups="base.group_system",
        help="The simulator records every message as sent, delivered and read "
        "at once; nothing leaves Odoo.",
    )
    provider_type = fields.Selection(
        PROVIDERS,
        "Provider type",
        compute="_compute_provider_type",
        compute_sudo=True,
        help="The provider, readable by every Win-back user; only system "
        "administrators change it.",
    )
    state = fields.Selection(
        [("active", "Active"), ("paused", "Paused")],
        default="active",
        required=True,
        copy=False,
        help="A paused account sends nothing until an administrator resumes it.",
    )
    pause_reason = fields.Text(copy=False, readonly=True)
    phone_number_id = fields.Char(
        "Phone number ID", help="Meta's ID of the sending phone number."
    )
    waba_id = fields.Char(
        "WhatsApp Business Account ID",
        help="Meta's account signals (template status and quality, the "
        "number's quality, restrictions, messaging limit) are accepted for "
        "this WhatsApp Business Account only; without it they are refused.",
    )
    access_token = fields.Char(groups="base.group_system", copy=False)
    app_secret = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Used to check the X-Hub-Signature-256 of incoming webhooks.",
    )
    verify_token = fields.Char(
        groups="base.group_system",
        copy=False,
        help="Meta sends it back when the webhook is registered.",
    )
    api_version = fields.Char(
        "Graph API version",
        default="v21.0",
        required=True,
        groups="base.group_system",
    )
    api_base_url = fields.Char(
        "API base URL",
        default="https://graph.facebook.com",
        required=True,
        groups="base.group_system",
        help="Meta's Graph API. Another host (a local server for tests and "
        "staging) must be listed in the system parameter "
        "winback_whatsapp.api_host_allowlist (comma-separated host[:port]).",
    )
    messages_per_second = fields.Integer(
        default=80, help="Meta's throughput limit for the phone number."
    )
    daily_recipient_limit = fields.Integer(
        "Daily unique recipients",
        default=1000,
        help="Meta's messaging tier: unique customers per rolling 24 hours.",
    )
    quality_rating = fields.Selection(
        [
            ("green", "High"),
            ("yellow", "Medium"),
            ("red", "Low"),
            ("unknown", "Unknown"),
        ],
        readonly=True,
        copy=False,
        help="The phone number's quality rating, from Meta's quality "
        "webhooks: a flagged number is Low; when Meta lifts the flag without "
        "saying the new rating, Unknown.",
    )
    quality_flagged = fields.Boolean(
        "Flagged by Meta",
        readonly=True,
        copy=False,
        help="Meta flagged the number's quality: sending was paused. Meta "
        "lowers the messaging limit if the quality does not improve within "
        "7 days.",
    )
    messaging_limit = fields.Selection(
        MESSAGING_LIMITS,
        readonly=True,
        copy=False,
        help="Meta's messaging limit of the business: unique customers it "
        "may message in a rolling 24 hours (max_daily_conversations_per_"
        "business, current_limit before February 2026). Each change Meta "
        "reports also sets Daily unique recipients.",
    )
    restriction = fields.Text(
        readonly=True,
        copy=False,
        help="What Meta restricts on the WhatsApp Business Account (its "
        "account webhooks): a restriction of business-initiated messaging, a "
        "ban or a deletion pauses sending.",
    )
    restricted_until = fields.Datetime(
        readonly=True, copy=False, help="When Meta's restriction expires."
    )
    restriction_active = fields.Boolean(compute="_compute_restriction_active")
    webhook_key = fields.Char(
        default=lambda self: secrets.token_urlsafe(24),
        copy=False,
        readonly=True,
        groups="base.group_system",
        index=True,
    )
    webhook_url = fields.Char(
        compute="_compute_webhook_url", groups="base.group_system"
    )

    _sql_constraints = [
        ("webhook_key_uniq", "unique(webhook_key)", "The webhook key must be unique."),
    ]

    @api.depends("webhook_key")
    def _compute_webhook_url(self):
        base_url = self.get_base_url()
        for account in self:
            key = account.sudo().webhook_key
            account.webhook_url = key and f"{base_url}/winback_whatsapp/webhook/{key}"

    @api.depends("provider")
    def _compute_provider_type(self):
        for account in self:
            account.provider_type = account.provider

    @api.depends("restriction", "restricted_until")
    def _compute_restriction_active(self):
        now = fields.Datetime.now()
        for account in self:
            account.restriction_active = bool(account.restriction) and (
                not account.restricted_until or account.restricted_until > now
            )

    @api.constrains("api_base_url")
    def _check_api_base_url(self):
        for account in self:
            account._get_api_base_url(error=ValidationError)

    @api.constrains("api_version")
    def _check_api_version(self):
        for account in self:
            if not re.fullmatch(r"v\d+(\.\d+)?", account.api_version or ""):
                raise ValidationError(
                    self.env._(
                        "The Graph API version looks like v21.0, not %(version)s.",
                        version=account.api_version,
                    )
                )

    # ------------------------------------------------------------
    # ACTIONS
    # ------------------------------------------------------------

    def action_test_connection(self):
        check_group(self.env, MANAGER)
        return self._action_test_connection()

    def _action_test_connection(self):
        self.ensure_one()
        try:
            info = self._get_api().check_connection()
        except WhatsAppError as error:
            raise UserError(
                self.env._("Connection failed: %(error)s", error=error.text)
            ) from error
        return success(
            self.env._(
                "Connected to %(number)s.",
                number=info.get("display_phone_number") or info.get("id"),
            )
        )

    def action_resume(self):
        check_group(self.env, MANAGER)
        return self._action_resume()

    def _action_resume(self):
        self.write({"state": "active", "pause_reason": False})
        return True

    def action_sync_templates(self):
        check_group(self.env, MANAGER)
        return self._action_sync_templates()

    def _action_sync_templates(self):
        """Import the business account's templates and their review status."""
        self.ensure_one()
        try:
            remote = list(self._get_api().list_templates())
        except WhatsAppError as error:
            raise UserError(
                self.env._("Template sync failed: %(error)s", error=error.text)
            ) from error
        self.env["winback.template"]._sync_from_meta(self, remote)
        return self.env["ir.actions.act_window"]._for_xml_id(
            "winback_whatsapp.winback_template_action"
        )

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    @api.model
    def _get_webhook_credentials(self, key):
        """``(account, app_secret, verify_token)`` of the active account whose
        webhook key is ``key``, or ``None``.

        Called on every webhook request before anything else, so it is one
        indexed query rather than an ORM search and read of restricted
        fields. The secrets never leave the controller."""
        if not key:
            return None
        self.flush_model(["webhook_key", "app_secret", "verify_token", "active"])
        self.env.cr.execute(
            """
            SELECT id, app_secret, verify_token FROM winback_account
             WHERE webhook_key = %s AND active
             LIMIT 1
            """,
            [key],
        )
        row = self.env.cr.fetchone()
        return row and (self.browse(row[0]), row[1] or "", row[2] or "")

    def _get_api(self, session=None):
        """The provider's client. A Cloud API client is built only for Meta's
        Graph API or an allowlisted host: the token goes nowhere else."""
        self.ensure_one()
        if self.sudo().provider == "simulator":
            return SimulatorApi(self, session=session)
        return WhatsAppApi(self, session=session)

    def _get_api_base_url(self, error=UserError):
        """The checked, normalised base URL the access token may be sent to;
        raises ``error`` for any other."""
        self.ensure_one()
        url = self.sudo().api_base_url
        allowlist = (
            self.env["ir.config_parameter"].sudo().get_param(API_HOST_ALLOWLIST, "")
        )
        checked = allowed_api_url(url, allowlist)
        if not checked:
            raise error(
                self.env._(
                    "The WhatsApp account %(account)s may only call Meta's Graph "
                    "API (https://graph.facebook.com), not %(url)s. A system "
                    "administrator can list another host in the system parameter "
                    "%(param)s.",
                    account=self.name,
                    url=url,
                    param=API_HOST_ALLOWLIST,
                )
            )
        return checked

    def _recipients_last_24h(self):
        """Numbers this account sent to in the rolling last 24 hours: Meta's
        messaging tier limits how many unique customers that may be."""
        self.ensure_one()
        self.env.cr.execute(
            """
            SELECT DISTINCT COALESCE(phone_e164, whatsapp_bsuid) FROM winback_message
             WHERE account_id = %s AND direction = 'outbound'
               AND sent_at >= %s
               AND COALESCE(phone_e164, whatsapp_bsuid) IS NOT NULL
            """,
            [self.id, fields.Datetime.now() - timedelta(hours=24)],
        )
        return {row[0] for row in self.env.cr.fetchall()}

    def _pause(self, reason):
        """Stop every send of these accounts and alert: the account needs an
        administrator (token expired, payment issue, account locked,
        restricted or flagged by Meta)."""
        for account in self.filtered(lambda a: a.state == "active"):
            account.write({"state": "paused", "pause_reason": reason})
            _logger.warning("WhatsApp account %s paused: %s", account.id, reason)
            account._alert_managers(
                self.env._("Sending paused: %(reason)s", reason=reason)
            )
            campaigns = (
                self.env["winback.campaign"]
                .sudo()
                .search([("account_id", "=", account.id), ("state", "=", "running")])
            )
            for campaign in campaigns:
                campaign._alert_responsible(
                    self.env._(
                        "WhatsApp account %(account)s paused: %(reason)s",
                        account=account.name,
                        reason=reason,
                    )
                )

    def _alert_managers(self, note):
        """A note in the account's chatter and a to-do for each Win-back
        administrator of its company (Meta's signals about the account)."""
        managers = (
            self.env.ref(MANAGER)
            .sudo()
            .users.filtered(lambda u: u.active and not u.share)
        )
        for account in self.sudo():
            account.message_post(body=note, subtype_xmlid="mail.mt_note")
            company = account.company_id
            for user in managers.filtered(lambda u, c=company: c in u.company_ids):
                account.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=self.env._("WhatsApp account needs attention"),
                    note=note,
                    user_id=user.id,
                )
