import functools
import json
import logging
from datetime import timedelta

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import SQL

from ..tools.access import check_group
from ..tools.wa_number import number_region

_logger = logging.getLogger(__name__)

MESSAGE_RETENTION = 365  # days; winback_whatsapp.message_retention_days

MESSAGE_STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("received", "Received"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class WinbackMessage(models.Model):
    _name = "winback.message"
    _description = "WhatsApp Message"
    _order = "id desc"
    _rec_name = "phone_e164"

    direction = fields.Selection(
        [("outbound", "Outbound"), ("inbound", "Inbound")],
        required=True,
        default="outbound",
    )
    enrollment_id = fields.Many2one(
        "winback.enrollment", index=True, ondelete="cascade"
    )
    step_id = fields.Many2one("winback.step", ondelete="set null")
    campaign_id = fields.Many2one(
        related="enrollment_id.campaign_id", store=True, index=True
    )
    account_id = fields.Many2one("winback.account", index=True, ondelete="cascade")
    company_id = fields.Many2one("res.company", index=True)
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null")
    template_id = fields.Many2one("winback.template", ondelete="set null")
    phone_e164 = fields.Char("Number", index=True)
    body = fields.Text()
    wamid = fields.Char("WhatsApp message ID", index=True, copy=False)
    biz_opaque_callback_data = fields.Char(copy=False)
    context_wamid = fields.Char(
        "In reply to", help="For an inbound reply: the wamid it answers."
    )
    state = fields.Selection(
        MESSAGE_STATES, default="queued", required=True, index=True
    )
    error_code = fields.Char()
    error_message = fields.Text()
    attempt_count = fields.Integer(default=0)
    scheduled_at = fields.Datetime(
        "Send after", index=True, help="Not sent before this time."
    )
    window_closes_at = fields.Datetime(
        "Send window closes",
        readonly=True,
        help="When the customer's send window the message is scheduled in "
        "closes. Not sent by then, it waits for the next window.",
    )
    sent_at = fields.Datetime()
    delivered_at = fields.Datetime()
    read_at = fields.Datetime()
    failed_at = fields.Datetime()
    received_at = fields.Datetime()
    profile_name = fields.Char(
        "WhatsApp profile name", help="Name the customer shows on WhatsApp."
    )
    inbound_type = fields.Char(
        "WhatsApp message type",
        readonly=True,
        help="For an inbound message: text, button, interactive, reaction, image...",
    )
    inbound_kind = fields.Char(
        "How it reads",
        readonly=True,
        help="For an inbound message: how it was read (text, order, "
        "location, edit, deleted, system...).",
    )
    customer_change = fields.Selection(
        [
            ("edited", "Edited by the customer"),
            ("deleted", "Deleted by the customer"),
            ("reaction_removed", "Reaction removed by the customer"),
        ],
        "Changed by the customer",
        readonly=True,
        copy=False,
        help="For an inbound message the customer edited or deleted on "
        "WhatsApp afterwards, or a reaction they took back. The text "
        "received is kept.",
    )
    new_phone_e164 = fields.Char(
        "New number",
        readonly=True,
        help="For a number-change notice: the customer's new WhatsApp number.",
    )
    render_params = fields.Text(
        "Sent parameters", readonly=True, help="The template parameters, as sent."
    )
    chatter_author_id = fields.Many2one(
        "res.partner",
        "Written by",
        readonly=True,
        help="A message written by hand: once sent, or if it fails, it is "
        "logged in the customer's chatter under this author.",
    )
    handled = fields.Boolean(
        readonly=True,
        copy=False,
        help="For an inbound message: filed in the partner's chatter and "
        "applied (keywords, enrollment, activity). Done once.",
    )
    whatsapp_bsuid = fields.Char(
        "WhatsApp user ID",
        index="btree_not_null",
        help="The customer's business-scoped user ID: who sent an inbound "
        "message; for an outbound one, where it goes when no number is known.",
    )
    whatsapp_username = fields.Char(
        "WhatsApp username",
        help="For an inbound message: the username the customer shows on "
        "WhatsApp instead of their number, if any.",
    )
    new_whatsapp_bsuid = fields.Char(
        "New WhatsApp user ID",
        readonly=True,
        help="For a notice that WhatsApp replaced the customer's user ID "
        "(they changed number): the new one.",
    )

    country_id = fields.Many2one(
        "res.country",
        "Recipient country",
        readonly=True,
        help="The country of the number, as its calling code says, set when "
        "the message is created: the market Meta charges the message at "
        "(the customer's country when it is empty).",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    billable = fields.Boolean(
        readonly=True,
        copy=False,
        help="Meta charges this message, as its status callback says "
        "(pricing: billable).",
    )
    pricing_category = fields.Char(
        readonly=True,
        copy=False,
        help="Meta's pricing category of the message (marketing, utility, "
        "authentication, service...), from its status callback.",
    )
    pricing_model = fields.Char(
        readonly=True,
        copy=False,
        help="PMP: per-message pricing (since July 2025); CBP: per "
        "conversation, before.",
    )
    pricing_type = fields.Char(
        readonly=True,
        copy=False,
        help="regular, free_customer_service or free_entry_point.",
    )
    cost = fields.Float(
        digits="WhatsApp Rate",
        readonly=True,
        copy=False,
        help="What Meta charges for the message, in the company's currency: "
        "the rate card's price for its country and category on the day it "
        "was delivered. Nothing for a message Meta does not charge or that "
        "was never delivered.",
    )
    rate_id = fields.Many2one(
        "winback.rate",
        "Rate applied",
        readonly=True,
        copy=False,
        ondelete="set null",
    )

    media_ids = fields.One2many(
        "winback.media",
        "message_id",
        "Media",
        readonly=True,
        help="For an inbound photo, voice note, video, document or sticker: "
        "its file, once downloaded from WhatsApp.",
    )

    def init(self):
        # At most one outbound message per (enrollment, step): the database
        # itself refuses a second one, whatever the number of workers.
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS winback_message_enrollment_step_uniq
                ON winback_message (enrollment_id, step_id)
             WHERE direction = 'outbound'
            """
        )
        # The send cron's claim: the due queue in its order, read from the
        # front whatever the size of the history.
        self.env.cr.execute(
            """
            CREATE INDEX IF NOT EXISTS winback_message_queue_idx
                ON winback_message (scheduled_at NULLS FIRST, id)
             WHERE direction = 'outbound' AND state = 'queued'
            """
        )
        self.env.cr.execute(
            """
            CREATE UNIQUE INDEX IF NOT EXISTS winback_message_wamid_uniq
                ON winback_message (account_id, wamid)
             WHERE wamid IS NOT NULL
            """
        )

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = self._with_country(vals_list)
        messages = super().create(vals_list)
        messages.filtered(
            lambda m: m.direction == "outbound"
            and m.state in ("sent", "delivered", "read")
            and not m.body
        )._record_sent_text()
        return messages

    @api.model
    def _with_country(self, vals_list):
        """``vals_list`` with the country of each number (``phonenumbers``'
        region of its calling code) where none is given. Set once, when the
        message is created: no recompute of the message history."""
        regions = [
            None if vals.get("country_id") else number_region(vals.get("phone_e164"))
            for vals in vals_list
        ]
        if not any(regions):
            return vals_list
        countries = {
            country.code: country.id
            for country in self.env["res.country"].search_fetch(
                [("code", "in", list(set(filter(None, regions))))], ["code"]
            )
        }
        return [
            {**vals, "country_id": countries[region]} if region in countries else vals
            for vals, region in zip(vals_list, regions, strict=True)
        ]

    def write(self, vals):
        if not self.env.su:
            self._check_manual_write(vals)
        return super().write(vals)

    def _check_manual_write(self, vals):
        """Messages are what was sent or received: written by the engine and
        the webhook only. By hand, a user only chooses the partner of an
        unmatched reply (then links it), among the partners they can read."""
        if set(vals) - {"partner_id"} or any(
            m.direction != "inbound" or m.handled for m in self
        ):
            raise AccessError(
                self.env._(
                    "WhatsApp messages cannot be changed by hand; only the "
                    "customer of an unmatched reply can be chosen."
                )
            )
        if vals.get("partner_id"):
            self.env["res.partner"].browse(vals["partner_id"]).check_access("read")

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def _send_window(self, now):
        """``(opens, closes)``: when the campaign's send window opens for
        this customer (``now`` when it is open) and when it closes (None for
        messages of no campaign, sent at once).

        Inside the window the message was scheduled in (``scheduled_at`` to
        ``window_closes_at``, computed when it was queued) it is open: the
        customer's time zone is not looked up again for every send."""
        self.ensure_one()
        campaign = self.enrollment_id.campaign_id
        if not campaign:
            return now, None
        closes = self.window_closes_at
        if closes and (self.scheduled_at or now) <= now < closes:
            return now, closes
        return campaign._send_window(self.partner_id, self.phone_e164, now)

    @api.model
    def _forget_send_windows(self, campaigns=None, partners=None):
        """The queued messages of these campaigns, or to these customers,
        look their send window up again (it or the customer's time zone
        changed)."""
        self.flush_model()
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_message m SET window_closes_at = NULL
                  FROM winback_enrollment e
                 WHERE e.id = m.enrollment_id AND m.state = 'queued'
                   AND m.window_closes_at IS NOT NULL
                   AND (e.campaign_id = ANY(%s) OR m.partner_id = ANY(%s))
                """,
                (campaigns or self.env["winback.campaign"]).ids,
                (partners or self.env["res.partner"]).ids,
            )
        )
        self.invalidate_model(["window_closes_at"])

    def _client(self, clients, session):
        """The provider client of the message's account and its rate, built
        once per run in ``clients``; False when it cannot be built (the
        account pauses, the message stays queued)."""
        self.ensure_one()
        account = self.account_id
        if account.id not in clients:
            try:
                clients[account.id] = (
                    account._get_api(session=session),
                    account.messages_per_second,
                )
            except Exception as error:  # noqa: BLE001
                # Nothing left: the account needs an administrator.
                _logger.warning("WhatsApp account %s unusable: %s", account.id, error)
                clients[account.id] = error
        if isinstance(clients[account.id], Exception):
            self.error_message = str(clients[account.id])
            account._pause(str(clients[account.id]))
            return False
        return clients[account.id]

    def _within_daily_limit(self, recipients):
        """Whether the account may message this number today: Meta's
        messaging tier caps the unique customers of a rolling 24 hours
        (``recipients``: the numbers of each account, read once per run)."""
        self.ensure_one()
        account = self.account_id
        if account.daily_recipient_limit <= 0:
            return True
        if account.id not in recipients:
            recipients[account.id] = account._recipients_last_24h()
        seen = recipients[account.id]
        recipient = self.phone_e164 or self.whatsapp_bsuid
        if recipient not in seen and len(seen) >= account.daily_recipient_limit:
            return False
        seen.add(recipient)
        return True

    def _record_sent_text(self):
        """Outbound messages recorded as already sent (an import, the demo
        data) without their text: the text their step's template renders for
        the customer, so they read like the messages the send cron sent."""
        for message in self:
            template = message.template_id or message.step_id.template_id
            if not template or not message.partner_id:
                continue
            try:
                text = template.with_company(
                    message.company_id or self.env.company
                )._render(
                    message.partner_id,
                    message.enrollment_id,
                    campaign=message.step_id.campaign_id,
                )[1]
            except UserError:
                continue
            message.sudo().write({"body": text, "template_id": template.id})

    def _render_template(self, links=None):
        """Render the template's parameters in the message's own company:
        ``(parameters, text)``; a message that cannot be rendered fails
        alone, with the reason, and gives None. With ``links`` (the send
        run's cache of link trackers), the links of a campaign's message
        are sent as tracked short links (``link.tracker``)."""
        self.ensure_one()
        template = self.template_id.with_company(self.company_id)
        shorten = None
        if links is not None and self.enrollment_id:
            shorten = self.env["link.tracker"]._winback_shortener(
                self.enrollment_id.campaign_id, self, links
            )
        try:
            return template._render(
                self.partner_id,
                self.enrollment_id,
                campaign=self.step_id.campaign_id,
                shorten=shorten,
            )
        except UserError as error:
            self._fail_with("missing_value", str(error))
        except Exception as error:
            _logger.exception("WhatsApp message %s could not be rendered", self.id)
            self._fail_with(
                "render_error",
                self.env._("Not sent, the template could not be rendered: %s", error),
            )
        return None

    def _mark_sending(self, rendered=None):
        """Mark the messages about to go on the wire ``sending``, with the
        text and parameters they were rendered with (``rendered``: ``{id:
        (parameters, text)}``), in one statement; the caller commits before
        their calls start. Returns ``{id: (callback data, parameters, text)}``
        of the messages marked: only those still queued go."""
        if not self:
            return {}
        rendered = rendered or {}
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_message m
                   SET state = 'sending', error_code = NULL, error_message = NULL,
                       attempt_count = COALESCE(m.attempt_count, 0) + 1,
                       biz_opaque_callback_data = 'winback:' || m.id,
                       body = CASE WHEN v.rendered THEN v.body ELSE m.body END,
                       render_params = CASE WHEN v.rendered THEN v.params
                                            ELSE m.render_params END,
                       write_uid = %s, write_date = (now() at time zone 'UTC')
                  FROM (VALUES %s) AS v(id, rendered, body, params)
                 WHERE m.id = v.id AND m.state = 'queued'
             RETURNING m.id, m.biz_opaque_callback_data, m.render_params, m.body
                """,
                self.env.uid,
                SQL(", ").join(
                    SQL(
                        "(%s, %s, %s, %s)",
                        message_id,
                        message_id in rendered,
                        rendered[message_id][1] if message_id in rendered else None,
                        json.dumps(rendered[message_id][0])
                        if message_id in rendered
                        else None,
                    )
                    for message_id in self.ids
                ),
            )
        )
        sending = {row[0]: row[1:] for row in self.env.cr.fetchall()}
        self.invalidate_recordset(
            [
                "state",
                "error_code",
                "error_message",
                "attempt_count",
                "biz_opaque_callback_data",
                "body",
                "render_params",
                "write_uid",
                "write_date",
            ]
        )
        return sending

    def _provider_call(self, clients, templates, sending):
        """The provider call that sends this message, with plain values
        only (it runs in a thread of the send pool, away from the ORM), and
        the account's messages per second. ``templates``: what a send needs
        of each template, read once per run; ``sending``: the callback data,
        parameters and text the message was marked sending with
        (``_mark_sending``)."""
        self.ensure_one()
        api, rate = clients[self.account_id.id]
        opaque, render_params, body = sending[self.id]
        template = self.template_id
        if template:
            if template.id not in templates:
                templates[template.id] = (
                    template.name,
                    template.language,
                    template._quick_reply_payloads(),
                )
            name, language, buttons = templates[template.id]
            call = functools.partial(
                api.send_template,
                self.phone_e164 or None,
                name,
                language,
                json.loads(render_params or "[]"),
                buttons=buttons,
                opaque=opaque,
                recipient=self.whatsapp_bsuid or None,
            )
        else:
            call = functools.partial(
                api.send_text,
                self.phone_e164 or None,
                body,
                opaque=opaque,
                recipient=self.whatsapp_bsuid or None,
            )
        return call, rate

    def _log_in_chatter(self):
        """Messages written by hand (composer) show in the customer's chatter
        under their author once WhatsApp accepted them."""
        for message in self.filtered(lambda m: m.chatter_author_id and m.partner_id):
            message.partner_id.message_post(
                body=Markup("<p><b>WhatsApp</b> → %s</p>%s")
                % (
                    message.phone_e164 or message.whatsapp_bsuid,
                    Markup("<br/>").join((message.body or "").split("\n")),
                ),
                author_id=message.chatter_author_id.id,
                subtype_xmlid="mail.mt_note",
            )

    def _log_failure_in_chatter(self):
        for message in self.filtered(lambda m: m.chatter_author_id and m.partner_id):
            message.partner_id.message_post(
                body=self.env._(
                    "WhatsApp message to %(number)s not sent: %(error)s",
                    number=message.phone_e164 or message.whatsapp_bsuid,
                    error=message.error_message or message.error_code,
                ),
                author_id=message.chatter_author_id.id,
                subtype_xmlid="mail.mt_note",
            )

    def _simulate_read(self):
        now = fields.Datetime.now()
        self.write({"state": "read", "delivered_at": now, "read_at": now})

    def _cancel_with(self, reason):
        self.write({"state": "cancelled", "error_message": reason})
        self._log_failure_in_chatter()

    def _fail_with(self, code, text):
        self.write(
            {
                "state": "failed",
                "error_code": code,
                "error_message": text,
                "failed_at": fields.Datetime.now(),
            }
        )
        self._log_failure_in_chatter()
        self.enrollment_id.filtered(lambda e: e.state == "running")._end("failed")

    @api.autovacuum
    def _gc_personal_data(self):
        """Personal data has a lifetime: past it (system parameter
        ``winback_whatsapp.message_retention_days``, 365 by default, 0 keeps
        it), a message keeps its state and dates, which the results count,
        but loses its text, numbers, profile name and parameters. An
        unmatched reply, which counts nowhere, goes altogether."""
        days = int(
            self.env["ir.config_parameter"]
            .sudo()
            .get_param("winback_whatsapp.message_retention_days", MESSAGE_RETENTION)
            or 0
        )
        if days <= 0:
            return
        cutoff = fields.Datetime.now() - timedelta(days=days)
        self.flush_model()
        self.env.cr.execute(
            """
            DELETE FROM winback_message
             WHERE direction = 'inbound' AND partner_id IS NULL
               AND create_date < %s
            """,
            [cutoff],
        )
        self.env.cr.execute(
            """
            UPDATE winback_message
               SET body = NULL, phone_e164 = NULL, profile_name = NULL,
                   render_params = NULL, new_phone_e164 = NULL,
                   whatsapp_bsuid = NULL, whatsapp_username = NULL,
                   new_whatsapp_bsuid = NULL
             WHERE create_date < %s
               AND state NOT IN ('queued', 'sending')
               AND (body IS NOT NULL OR phone_e164 IS NOT NULL
                    OR profile_name IS NOT NULL OR render_params IS NOT NULL
                    OR new_phone_e164 IS NOT NULL OR whatsapp_bsuid IS NOT NULL
                    OR whatsapp_username IS NOT NULL
                    OR new_whatsapp_bsuid IS NOT NULL)
            """,
            [cutoff],
        )
        self.invalidate_model()

    def action_create_partner(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self.env["winback.unmatched"]._create_partner(self)

    def action_link_partner(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self.env["winback.unmatched"]._link_partner(self)
