import json
import logging
import time
import uuid
from datetime import timedelta

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

from ..tools import webhook_simulator
from ..tools.access import check_group
from ..tools.intent_keywords import INTENTS

_logger = logging.getLogger(__name__)

QUEUE_BATCH = 1000
# A customer is in at most one live win-back at a time (the eligibility
# reason "already_enrolled").
LIVE_STATES = ("running", "holdout")

ENROLLMENT_STATES = [
    ("holdout", "Holdout"),
    ("running", "Running"),
    ("replied", "Replied"),
    ("snoozed", "Snoozed (not now)"),
    ("converted", "Converted"),
    ("bought", "Bought (not attributed)"),
    ("opted_out", "Opted out"),
    ("dormant", "Dormant"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
]


class WinbackEnrollment(models.Model):
    _name = "winback.enrollment"
    _description = "Win-back Enrollment"
    _order = "id desc"

    partner_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )
    campaign_id = fields.Many2one(
        "winback.campaign", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="campaign_id.company_id", store=True)
    segment_id = fields.Many2one(
        "winback.segment", "Segment at entry", readonly=True, ondelete="set null"
    )
    state = fields.Selection(
        ENROLLMENT_STATES, default="running", required=True, index=True
    )
    is_holdout = fields.Boolean(
        "Holdout group",
        readonly=True,
        help="In the control group: receives nothing, measured for lift.",
    )
    phone_e164 = fields.Char("WhatsApp number", readonly=True)
    step_id = fields.Many2one(
        "winback.step", "Next step", ondelete="set null", readonly=True
    )
    next_send_at = fields.Datetime("Next send", index=True, readonly=True)
    last_sent_at = fields.Datetime(readonly=True)
    outcome_date = fields.Datetime(readonly=True)
    order_id = fields.Many2one(
        "sale.order", "Converted order", readonly=True, ondelete="set null"
    )
    move_id = fields.Many2one(
        "account.move",
        "Converted invoice",
        readonly=True,
        ondelete="set null",
        help="The customer invoice, made from no order, that converted the "
        "enrollment.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    revenue = fields.Monetary(readonly=True)
    message_ids = fields.One2many("winback.message", "enrollment_id", "Messages")
    provider = fields.Selection(related="campaign_id.account_id.provider_type")
    reply_intent = fields.Selection(
        INTENTS,
        readonly=True,
        index=True,
        help="What the customer's reply meant: the intent of the button tapped, "
        "else of the company's keyword rules matched by their words.",
    )
    snoozed_until = fields.Datetime(
        readonly=True,
        help="The customer answered Not now: no win-back enrolls them before "
        "this date.",
    )
    lead_id = fields.Many2one(
        "crm.lead",
        "Opportunity",
        readonly=True,
        ondelete="set null",
        help="The opportunity made for the salesperson when the customer said "
        "they are interested.",
    )
    error_message = fields.Text(
        "Error", readonly=True, help="Why the enrollment failed, when it did."
    )
    link_clicked_at = fields.Datetime(
        "Clicked a link",
        readonly=True,
        copy=False,
        help="When the customer first clicked a tracked link of a message.",
    )
    link_click_ids = fields.One2many(
        "link.tracker.click", "winback_enrollment_id", "Link clicks", readonly=True
    )
    link_click_count = fields.Integer(
        "Clicks",
        compute="_compute_link_click_count",
        help="Clicks of the customer on the tracked links of the messages.",
    )

    @api.depends("partner_id.name", "campaign_id.name")
    def _compute_display_name(self):
        for enrollment in self:
            enrollment.display_name = " · ".join(
                name
                for name in (enrollment.partner_id.name, enrollment.campaign_id.name)
                if name
            )

    def _compute_link_click_count(self):
        counts = dict(
            self.env["link.tracker.click"]._read_group(
                [("winback_enrollment_id", "in", self.ids)],
                ["winback_enrollment_id"],
                ["__count"],
            )
        )
        for enrollment in self:
            enrollment.link_click_count = counts.get(enrollment, 0)

    def init(self):
        # One live enrollment per customer: the database refuses a second
        # one, whichever campaigns or workers enroll at the same time.
        self.env.cr.execute(
            "SELECT 1 FROM pg_indexes WHERE indexname = %s",
            ["winback_enrollment_partner_live_uniq"],
        )
        if self.env.cr.fetchone():
            return
        # Databases from before the index may hold duplicates: the oldest
        # live enrollment of a customer stays, the others are cancelled.
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_enrollment e
                   SET state = 'cancelled', step_id = NULL, next_send_at = NULL,
                       outcome_date = now() AT TIME ZONE 'UTC'
                 WHERE e.state IN %(live)s
                   AND EXISTS (SELECT 1 FROM winback_enrollment o
                                WHERE o.partner_id = e.partner_id
                                  AND o.state IN %(live)s AND o.id < e.id)
             RETURNING e.id
                """,
                live=LIVE_STATES,
            )
        )
        cancelled = [row[0] for row in self.env.cr.fetchall()]
        if cancelled:
            _logger.warning(
                "Win-back: %s duplicate live enrollments cancelled", len(cancelled)
            )
            self.env.cr.execute(
                "UPDATE winback_message SET state = 'cancelled' "
                "WHERE enrollment_id = ANY(%s) AND state = 'queued'",
                [cancelled],
            )
        self.env.cr.execute(
            SQL(
                """
                CREATE UNIQUE INDEX winback_enrollment_partner_live_uniq
                    ON winback_enrollment (partner_id)
                 WHERE state IN %(live)s
                """,
                live=LIVE_STATES,
            )
        )

    # ------------------------------------------------------------
    # BUSINESS METHODS
    # ------------------------------------------------------------

    def action_view_messages(self):
        check_group(self.env, "winback_whatsapp.group_winback_user")
        return self._action_view_messages()

    def _action_view_messages(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Messages"),
            "res_model": "winback.message",
            "view_mode": "list,form",
            "domain": [("enrollment_id", "=", self.id)],
        }

    def _cancel(self):
        self._end("cancelled")

    def _end(self, state, outcome_date=None, **values):
        """Leave the campaign in ``state``: no next step, and the messages
        still queued are cancelled."""
        self.write(
            {
                "state": state,
                "outcome_date": outcome_date or fields.Datetime.now(),
                "step_id": False,
                "next_send_at": False,
                **values,
            }
        )
        if state == "converted":
            self._stamp_orders_utm()
        self.env["winback.message"].sudo().search(
            [
                ("enrollment_id", "in", self.ids),
                ("direction", "=", "outbound"),
                ("state", "=", "queued"),
            ]
        ).write({"state": "cancelled"})

    def _stamp_orders_utm(self):
        """The sale orders that converted these enrollments carry their
        campaign's UTM values (campaign, medium WhatsApp, source Win-back),
        so that Odoo's sales analysis shows the win-back revenue. An order
        that came with UTM values of its own (a link, an ad) keeps them.
        Holdout customers were sent nothing: their orders are not the
        campaign's."""
        for enrollment in self.filtered(lambda e: e.order_id and not e.is_holdout):
            order = enrollment.order_id.sudo()
            if not (order.campaign_id or order.medium_id or order.source_id):
                order.write(enrollment.campaign_id._utm_values())

    def _register_click(self, when):
        """The customer clicked a tracked link of a message at ``when``:
        the first click is kept (one statement: concurrent clicks never
        overwrite it)."""
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_enrollment SET link_clicked_at = %(when)s
                 WHERE id IN %(ids)s AND link_clicked_at IS NULL
                """,
                when=when,
                ids=tuple(self.ids),
            )
        )
        self.invalidate_recordset(["link_clicked_at"])

    @api.model
    def _cron_advance(self):
        """Every few minutes: queue the messages that are due, one batch per
        call, committed; ``ir.cron`` calls again while some remain. Once none
        remains, end the campaigns of customers who stayed silent after the
        last call."""
        claimed = self._queue_due_messages()
        self.env.cr.commit()  # pylint: disable=invalid-commit
        remaining = self._count_due()
        if not remaining:
            self.env["winback.enroller"]._mark_dormant()
            self.env.cr.commit()  # pylint: disable=invalid-commit
        self.env["ir.cron"]._notify_progress(done=claimed, remaining=remaining)

    def _due_sql(self, select, tail=None):
        """``select`` over the running enrollments due for their next step."""
        return SQL(
            """
            SELECT %s FROM winback_enrollment e
              JOIN winback_campaign s ON s.id = e.campaign_id
             WHERE e.state = 'running' AND s.state = 'running'
               AND e.step_id IS NOT NULL AND e.next_send_at <= %s
            %s
            """,
            select,
            fields.Datetime.now(),
            tail or SQL(),
        )

    @api.model
    def _count_due(self):
        """How many running enrollments are due for their next step."""
        self.env.flush_all()
        self.env.cr.execute(self._due_sql(SQL("count(*)")))
        return self.env.cr.fetchone()[0]

    @api.model
    def _queue_due_messages(self):
        """Queue the next step's message of one batch of running enrollments
        that are due, scheduled inside the campaign's send window in the
        customer's time zone; returns how many enrollments were claimed.
        Enrollments are claimed with SKIP LOCKED: several workers share the
        work; the unique (enrollment, step) index forbids a second copy.

        Idempotent: a step whose message already exists is not queued again,
        the enrollment just stops being due. An enrollment that cannot be
        queued fails alone, with its reason, and never blocks the others."""
        self.env.flush_all()
        self.env.cr.execute(
            self._due_sql(
                SQL("e.id"),
                SQL(
                    "ORDER BY e.next_send_at, e.id LIMIT %s "
                    "FOR UPDATE OF e SKIP LOCKED",
                    QUEUE_BATCH,
                ),
            )
        )
        enrollments = self.browse(row[0] for row in self.env.cr.fetchall())
        enrollments._queue_claimed()
        return len(enrollments)

    def _queue_claimed(self):
        """Queue the current step of these claimed enrollments; returns how
        many messages were queued."""
        self.env.cr.execute(
            """
            SELECT enrollment_id, step_id FROM winback_message
             WHERE direction = 'outbound' AND enrollment_id = ANY(%s)
            """,
            [self.ids],
        )
        existing = set(self.env.cr.fetchall())
        todo = self.filtered(lambda e: (e.id, e.step_id.id) not in existing)
        if len(todo) < len(self):
            _logger.info(
                "Win-back: %s enrollments had their step queued already: skipped",
                len(self) - len(todo),
            )
        errors = {}
        vals_list = []
        for enrollment in todo:
            try:
                vals_list.append(enrollment._prepare_message_vals())
            except Exception as error:  # noqa: BLE001 - reported on the record
                errors[enrollment] = error
        Message = self.env["winback.message"]
        try:
            with self.env.cr.savepoint():
                queued = len(Message.create(vals_list))
        except Exception:  # noqa: BLE001 - find the bad rows one by one
            queued = 0
            for vals in vals_list:
                enrollment = self.browse(vals["enrollment_id"])
                try:
                    with self.env.cr.savepoint():
                        Message.create(vals)
                    queued += 1
                except psycopg2.errors.UniqueViolation:
                    _logger.info(
                        "Win-back enrollment %s: step already queued, skipped",
                        enrollment.id,
                    )
                except Exception as error:  # noqa: BLE001
                    errors[enrollment] = error
        (self - self.browse(e.id for e in errors)).write({"next_send_at": False})
        if queued:
            # The send cron sends them when the first is due, in its window,
            # not at its next run.
            self.env["winback.sender"]._trigger_send(
                at=min(vals["scheduled_at"] for vals in vals_list)
            )
        for enrollment, error in errors.items():
            enrollment._fail_queue(error)
        return queued

    def _fail_queue(self, error):
        """The enrollment's message could not be queued: it fails alone,
        with the reason on the record and in the log."""
        self.ensure_one()
        _logger.warning(
            "Win-back enrollment %s could not be queued: %s", self.id, error
        )
        self.write(
            {
                "state": "failed",
                "error_message": self.env._(
                    "Could not queue step %(step)s: %(error)s",
                    step=self.step_id.name,
                    error=error,
                ),
                "step_id": False,
                "next_send_at": False,
                "outcome_date": fields.Datetime.now(),
            }
        )

    def _prepare_message_vals(self):
        self.ensure_one()
        campaign = self.campaign_id
        partner = self.partner_id
        scheduled, closes = campaign._send_window(
            partner, self.phone_e164, max(self.next_send_at, fields.Datetime.now())
        )
        return {
            "direction": "outbound",
            "enrollment_id": self.id,
            "step_id": self.step_id.id,
            "partner_id": partner.id,
            "account_id": campaign.account_id.id,
            "company_id": campaign.company_id.id,
            "template_id": self.step_id.template_id.id,
            "phone_e164": self.phone_e164 or partner.phone_sanitized,
            # Where it goes when the customer is known by no number.
            "whatsapp_bsuid": partner.whatsapp_bsuid or False,
            "scheduled_at": scheduled,
            "window_closes_at": closes,
            "state": "queued",
        }

    def _on_message_sent(self, messages):
        """Messages left: advance their running enrollments to the step after
        the one sent (in the campaign's order), due its delay after the send,
        or after the last step start the grace period before dormancy. One
        statement for a whole wave of the send cron."""
        if not messages:
            return True
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_enrollment e
                   SET last_sent_at = COALESCE(m.sent_at, %(now)s),
                       step_id = nxt.id,
                       next_send_at = COALESCE(m.sent_at, %(now)s)
                                      + make_interval(days => nxt.delay_days),
                       write_uid = %(uid)s, write_date = %(now)s
                  FROM winback_message m
                  JOIN winback_step s ON s.id = m.step_id
             LEFT JOIN LATERAL (
                       SELECT n.id, n.delay_days FROM winback_step n
                        WHERE n.campaign_id = s.campaign_id
                          AND (n.sequence, n.id) > (s.sequence, s.id)
                     ORDER BY n.sequence, n.id
                        LIMIT 1) nxt ON TRUE
                 WHERE m.id = ANY(%(messages)s) AND e.id = m.enrollment_id
                   AND e.state = 'running' AND s.campaign_id = e.campaign_id
                """,
                now=fields.Datetime.now(),
                uid=self.env.uid,
                messages=messages.ids,
            )
        )
        self.invalidate_model(["last_sent_at", "step_id", "next_send_at"])
        return True

    # WEBHOOK

    def _mark_replied(self, message, intent="question"):
        """The customer answered: leave the campaign, stop remaining steps.
        The reply's intent is kept; a question never hides an earlier
        intent (a customer who said they are interested, then asks)."""
        self.filtered(
            lambda e: e.state in ("running", "replied", "snoozed")
            and (intent != "question" or not e.reply_intent)
        ).reply_intent = intent
        running = self.filtered(lambda e: e.state == "running")
        if intent == "interested":
            # Changed their mind: no snooze keeps them out any more.
            snoozed = self.filtered(lambda e: e.state == "snoozed")
            snoozed.write({"state": "replied", "snoozed_until": False})
        if not running:
            return False
        running._end("replied", outcome_date=message.received_at)
        return True

    def _snooze(self, message):
        """The customer answered *Not now*: leave the campaign, no to-do,
        and no win-back before the campaign's snooze is over."""
        for enrollment in self.filtered(
            lambda e: e.state in ("running", "replied", "snoozed")
        ):
            when = message.received_at or fields.Datetime.now()
            enrollment._end(
                "snoozed",
                outcome_date=when,
                reply_intent="not_now",
                snoozed_until=when + timedelta(days=enrollment.campaign_id.snooze_days),
            )

    def action_simulate_reply(self, text=None):
        """Simulator demo, for Win-back Administrators, on simulator accounts
        only: a reply to a real number would be a forged customer message."""
        check_group(self.env, "winback_whatsapp.group_winback_manager")
        self.ensure_one()
        if self.campaign_id.account_id.provider_type != "simulator":
            raise UserError(
                self.env._(
                    "Only enrollments of a simulator account can simulate a reply: "
                    "the replies of %(account)s come from WhatsApp.",
                    account=self.campaign_id.account_id.display_name,
                )
            )
        return self._action_simulate_reply(text)

    def _action_simulate_reply(self, text=None):
        """Build a Meta-shaped inbound payload answering the last message,
        store it as a webhook event and process it at once, in the user's
        transaction, as a retry does (no commit in the middle)."""
        self.ensure_one()
        account = self.campaign_id.account_id
        last = self.message_ids.filtered(
            lambda m: m.direction == "outbound" and m.wamid
        )[:1]
        number = (self.phone_e164 or self.partner_id.phone_sanitized or "").lstrip("+")
        payload = webhook_simulator.text_reply(
            account.phone_number_id,
            number,
            f"wamid.SIM{uuid.uuid4().hex}",
            text or self.env._("Hello, I am interested!"),
            time.time(),
            profile_name=self.partner_id.name,
            context_wamid=last.wamid,
            display_phone_number=number,
            waba_id=account.waba_id or "0",
        )
        event = (
            self.env["winback.webhook.event"]
            .sudo()
            ._store(account, json.dumps(payload))
        )
        event._process()
        return True
