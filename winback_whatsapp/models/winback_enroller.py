import logging
from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL

from ..tools.cron import retry_serialization_failure
from ..tools.eligibility import eligibility_sql
from .winback_enrollment import LIVE_STATES

_logger = logging.getLogger(__name__)

# Attempts of the enroll cron on one campaign, when a concurrent enrollment
# (another campaign, *Enroll now*) makes its snapshot stale.
ENROLL_ATTEMPTS = 3


class WinbackEnroller(models.AbstractModel):
    """Who enters a campaign, set-based: the eligibility counts, the
    enrollment of a campaign's eligible customers, the daily enroll cron and
    the purchase exit of enrolled customers."""

    _name = "winback.enroller"
    _description = "Win-back enrollment engine"

    @api.model
    def _eligibility_sql(self, campaign):
        campaign.ensure_one()
        now = fields.Datetime.now()
        return eligibility_sql(
            company_id=campaign.company_id.id,
            segment_ids=campaign.segment_ids.ids,
            campaign_id=campaign.id,
            live_states=LIVE_STATES,
            cooldown_since=now - timedelta(days=campaign.cooldown_days),
            reentry_since=now - timedelta(days=campaign.reentry_days),
            now=now,
        )

    @api.model
    def _eligibility_counts(self, campaign):
        """{reason: count} of the customers of ``campaign``'s segments today,
        'eligible' or an INELIGIBLE_REASONS code."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                "SELECT reason, count(*) FROM (%s) rows GROUP BY reason",
                self._eligibility_sql(campaign),
            )
        )
        return dict(self.env.cr.fetchall())

    @api.model
    def _cron_enroll(self):
        """Daily, after the segment recompute: enroll the eligible customers
        of every running campaign, within each campaign's daily cap. One
        campaign per call, committed; ``ir.cron`` calls again while campaigns
        remain."""
        Campaign = self.env["winback.campaign"]
        today = fields.Date.today()
        domain = [
            ("state", "=", "running"),
            "|",
            ("last_enroll_date", "=", False),
            ("last_enroll_date", "<", today),
        ]
        campaign = Campaign.search(domain, order="id", limit=1)
        if not campaign:
            return
        self._enroll_retrying(campaign)
        campaign.last_enroll_date = today
        self.env["ir.cron"]._notify_progress(
            done=1, remaining=Campaign.search_count(domain)
        )
        self.env.cr.commit()  # pylint: disable=invalid-commit

    @api.model
    def _enroll_retrying(self, campaign):
        """Enroll, starting again on a fresh snapshot when a concurrent
        transaction enrolled some of the same customers meanwhile (the
        database refuses the second live enrollment with a serialization
        failure). The previous campaigns of the cron run are committed."""
        return retry_serialization_failure(
            self.env.cr,
            lambda: self._enroll(campaign),
            ENROLL_ATTEMPTS,
            f"Win-back campaign {campaign.id} enrollment",
        )

    @api.model
    def _enroll_cap(self, campaign, now):
        """How many more customers ``campaign`` may enroll today (None: no
        cap)."""
        if not campaign.daily_cap:
            return None
        today_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        enrolled_today = self.env["winback.enrollment"].search_count(
            [("campaign_id", "=", campaign.id), ("create_date", ">=", today_start)]
        )
        return max(campaign.daily_cap - enrolled_today, 0)

    @api.model
    def _enroll(self, campaign):
        """Set-based enrollment of ``campaign``'s eligible customers; returns
        how many entered.

        The most recently lapsed (latest last purchase) come first, whatever
        their segment (the seed's lesson: recent inactives answer best), so
        the daily cap keeps the best prospects. A seeded hash draws the
        holdout group, so the draw is reproducible and independent of the
        order of enrollment.
        """
        campaign.ensure_one()
        if campaign.state != "running" or not campaign.step_ids:
            return 0
        now = fields.Datetime.now()
        cap = self._enroll_cap(campaign, now)
        if cap == 0:
            return 0
        first_step = campaign.step_ids[0]
        first_send = now + timedelta(days=first_step.delay_days)
        # Two enrollments of one campaign (the cron and *Enroll now*) wait for
        # each other here. The snapshot is older than this lock (Odoo runs
        # REPEATABLE READ), so this alone does not see what the other one
        # enrolled: the partial unique index on live enrollments does. The
        # INSERT skips a customer already live in a committed enrollment of
        # this snapshot's view, and PostgreSQL raises a serialization failure
        # when the conflicting enrollment is newer than the snapshot: the
        # transaction starts again (Odoo retries requests, the cron retries
        # the campaign) and then sees it.
        self.env.cr.execute(
            "SELECT id FROM winback_campaign WHERE id = %s FOR UPDATE", [campaign.id]
        )
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                INSERT INTO winback_enrollment
                       (partner_id, campaign_id, company_id, segment_id, state,
                        is_holdout, phone_e164, step_id, next_send_at,
                        create_uid, write_uid, create_date, write_date)
                SELECT c.id, %(campaign)s, %(company)s, c.segment_id,
                       CASE WHEN c.holdout THEN 'holdout' ELSE 'running' END,
                       c.holdout, c.phone_sanitized,
                       CASE WHEN c.holdout THEN NULL ELSE %(step)s END,
                       CASE WHEN c.holdout THEN NULL ELSE %(first_send)s END,
                       %(uid)s, %(uid)s, %(now)s, %(now)s
                  FROM (
                      SELECT e.id, e.segment_id, e.phone_sanitized,
                             mod(abs(hashtext(e.id || ':' || %(campaign)s || ':'
                                              || %(seed)s)), 10000)
                                 < %(holdout)s AS holdout
                        FROM (%(eligibility)s) e
                       WHERE e.reason = 'eligible'
                    ORDER BY e.last_date DESC NULLS LAST, e.id
                       LIMIT %(cap)s
                  ) c
                ON CONFLICT DO NOTHING
                """,
                campaign=campaign.id,
                company=campaign.company_id.id,
                step=first_step.id,
                first_send=first_send,
                uid=self.env.uid,
                now=now,
                seed=campaign.holdout_seed,
                holdout=round(campaign.holdout_percent * 100),
                eligibility=self._eligibility_sql(campaign),
                cap=cap,
            )
        )
        count = self.env.cr.rowcount
        self.env["winback.enrollment"].invalidate_model()
        if count:
            # The first step is due at first_send: the queueing cron takes
            # it then, not at its next quarter-hour run.
            self.env.ref("winback_whatsapp.ir_cron_winback_advance").sudo()._trigger(
                at=first_send
            )
        _logger.info("Win-back campaign %s: %s customers enrolled", campaign.id, count)
        return count

    @api.model
    def _register_orders(self, orders):
        """Purchase exit of the customers of confirmed sale ``orders``."""
        return self._register_purchases(
            [
                {
                    "partner": order.partner_id,
                    "company": order.company_id,
                    "date": order.date_order,
                    "amount": order.amount_untaxed,
                    "currency": order.currency_id,
                    "link": {"order_id": order.id},
                }
                for order in orders.filtered(lambda o: o.state == "sale")
            ]
        )

    @api.model
    def _register_purchases(self, purchases):
        """Purchase exit: a purchase of an enrolled customer (or of anyone
        of their commercial entity), from any source, ends the campaign and
        stops its messages. Within the attribution window it converts the
        enrollment and records the revenue; after it, the enrollment ends as
        bought, not counted as a conversion. Holdout customers are measured
        the same way, for the lift. A customer who replied and then buys
        within the window converts.

        :param purchases: dicts with ``partner``, ``company``, ``date`` (a
            datetime, UTC), ``amount`` (untaxed) in ``currency``, and
            ``link``, the enrollment's values that point at the purchase
            (``{"order_id": id}`` for a sale order)
        """
        Enrollment = self.env["winback.enrollment"].sudo()
        for purchase in purchases:
            family = self.env["res.partner"].search(
                [
                    (
                        "commercial_partner_id",
                        "=",
                        purchase["partner"].commercial_partner_id.id,
                    )
                ]
            )
            candidates = Enrollment.search(
                [
                    ("partner_id", "in", family.ids),
                    ("company_id", "=", purchase["company"].id),
                    ("state", "in", (*LIVE_STATES, "replied", "snoozed")),
                ]
            )
            for enrollment in candidates:
                campaign = enrollment.campaign_id
                start = enrollment.last_sent_at or enrollment.create_date
                date = purchase["date"]
                if date > start + timedelta(days=campaign.attribution_days):
                    if enrollment.state in LIVE_STATES:
                        enrollment._end("bought", outcome_date=date)
                    continue
                enrollment._end(
                    "converted",
                    revenue=purchase["currency"]._convert(
                        purchase["amount"],
                        enrollment.currency_id,
                        purchase["company"],
                        date.date(),
                    ),
                    **purchase["link"],
                )
        return True

    @api.model
    def _register_won_leads(self, leads):
        """Conversion of a won opportunity made from a win-back reply
        (*Interested*): its enrollment converts, with the opportunity's
        expected revenue, unless a purchase converted it already."""
        for lead in leads.sudo():
            enrollment = lead.winback_enrollment_id
            if enrollment.state not in (*LIVE_STATES, "replied", "snoozed"):
                continue
            date = lead.date_closed or fields.Datetime.now()
            currency = lead.company_currency or enrollment.currency_id
            enrollment._end(
                "converted",
                outcome_date=date,
                revenue=currency._convert(
                    lead.expected_revenue,
                    enrollment.currency_id,
                    enrollment.company_id,
                    date.date(),
                ),
            )
        return True

    @api.model
    def _mark_dormant(self):
        """Silence exit: no reply within the grace period after the last step
        makes the enrollment and the customer dormant, for good."""
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT e.id FROM winback_enrollment e
              JOIN winback_campaign s ON s.id = e.campaign_id
             WHERE e.state = 'running' AND e.step_id IS NULL
               AND e.last_sent_at IS NOT NULL
               AND e.last_sent_at + make_interval(days => s.grace_days) <= %s
               AND NOT EXISTS (SELECT 1 FROM winback_message m
                                WHERE m.enrollment_id = e.id
                                  AND m.state IN ('queued', 'sending'))
               FOR UPDATE OF e SKIP LOCKED
            """,
            [fields.Datetime.now()],
        )
        enrollments = self.env["winback.enrollment"].browse(
            row[0] for row in self.env.cr.fetchall()
        )
        enrollments.write({"state": "dormant", "outcome_date": fields.Datetime.now()})
        enrollments.partner_id.write({"winback_dormant": True})
        return enrollments
