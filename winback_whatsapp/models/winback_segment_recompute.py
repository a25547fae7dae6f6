import time
from datetime import timedelta

import psycopg2
from psycopg2 import errors as pg_errors

from odoo import api, fields, models
from odoo.tools import SQL, split_every

from ..tools.cron import retry_serialization_failure

# Partners are recomputed in ranges of ids: one transaction per range, so a
# million customers never sit in one huge transaction.
RECOMPUTE_CHUNK = 250_000
# A full run aggregates the purchases of the commercial entities of this many
# ids in one statement (one pass over the purchase tables), kept for the run
# in a temporary table of its database session; it then writes them
# RECOMPUTE_CHUNK ids per transaction.
RECOMPUTE_FILL_CHUNK = 1_000_000
# Incremental nights recompute the commercial entities that may have changed,
# this many at a time.
INCREMENTAL_CHUNK = 50_000
INCREMENTAL_MARGIN = timedelta(hours=1)
FULL_RECOMPUTE_EVERY = timedelta(days=7)
PARAM_LAST_RUN = "winback_whatsapp.recompute_last_run"
PARAM_LAST_FULL = "winback_whatsapp.recompute_last_full"
PARAM_CHECKPOINT = "winback_whatsapp.recompute_checkpoint"
# A cron call stops after this many seconds and reports what remains, so
# that ir.cron calls it again: well under Odoo's limit_time_real_cron
# (limit_time_real, 120 s, by default), leaving room for the chunk that
# crosses the budget.
RECOMPUTE_TIME_BUDGET = 60
# A customer's rhythm (typical interval) needs this many purchase days: two
# gaps at least, so that one odd gap is not taken for a habit.
RHYTHM_MIN_PURCHASE_DAYS = 3
# The fields the recompute writes, and those computed from them.
RECOMPUTED_FIELDS = [
    "winback_last_order_date",
    "winback_typical_interval",
    "winback_next_purchase_date",
    "winback_segment_id",
    "category_id",
    "winback_days_inactive",
    "winback_overdue_factor",
    "winback_rhythm_fallback",
]


class WinbackSegmentRecompute(models.AbstractModel):
    """Keeps every partner's last purchase date, rhythm (typical interval
    between purchases, expected next purchase), segment and segment tag up
    to date, set-based: at each purchase (an order confirmed or paid, an
    invoice posted) or its cancellation, and in the nightly cron."""

    _name = "winback.segment.recompute"
    _description = "Win-back segment recompute engine"

    @api.model
    def _cron_recompute(self):
        """Nightly recompute of every company's segments (03:00 by default).

        The first run, a run after segments were edited and a weekly safety
        run recompute everyone: the purchases of a million ids of commercial
        entities read in one statement, their changes written in chunks of
        ids, one transaction each, reporting progress; past the time budget
        a call stops, and ir.cron calls again (work remains) to resume from a
        checkpoint.
        Other nights are incremental: only the customers with an order or
        partner change since the previous run, and those whose days inactive
        crossed a segment boundary since.

        :return: the number of partners whose values changed
        """
        params = self.env["ir.config_parameter"].sudo()
        companies = self._segments().search([]).company_id.sorted("id")
        now = self.env.cr.now()
        last_run = fields.Datetime.to_datetime(params.get_param(PARAM_LAST_RUN))
        last_full = fields.Datetime.to_datetime(params.get_param(PARAM_LAST_FULL))
        checkpoint = params.get_param(PARAM_CHECKPOINT)
        full = (
            checkpoint
            or not last_run
            or not last_full
            or now - last_full > FULL_RECOMPUTE_EVERY
            or self._segments()
            .with_context(active_test=False)
            .search_count([("write_date", ">=", last_run)], limit=1)
        )
        if full:
            changed, finished = self._recompute_full(companies, checkpoint or "")
            if not finished:
                return changed
            run_started = fields.Datetime.to_datetime(
                checkpoint.split("@")[1] if checkpoint else now
            )
            params.set_param(PARAM_LAST_FULL, fields.Datetime.to_string(run_started))
        else:
            run_started = now
            changed = self._recompute_incremental(companies, last_run)
        params.set_param(PARAM_LAST_RUN, fields.Datetime.to_string(run_started))
        self.env["ir.cron"]._notify_progress(done=changed, remaining=0)
        self.env.cr.commit()  # pylint: disable=invalid-commit
        return changed

    def _recompute_full(self, companies, checkpoint):
        """Everyone, chunk by chunk. Returns (changed, finished)."""
        params = self.env["ir.config_parameter"].sudo()
        started = time.monotonic()
        position, _sep, run_started = checkpoint.partition("@")
        run_started = run_started or fields.Datetime.to_string(self.env.cr.now())
        start_company, start_id = (
            (int(part) for part in position.split(":")) if position else (0, 0)
        )
        max_id = self._max_partner_id()
        chunks_per_company = max_id // RECOMPUTE_CHUNK + 1
        total = len(companies) * chunks_per_company
        done = changed = 0
        for company in companies:
            if company.id < start_company:
                done += chunks_per_company
                continue
            low = start_id if company.id == start_company else 0
            done += low // RECOMPUTE_CHUNK
            filled_to = -1
            while low <= max_id:
                high = low + RECOMPUTE_CHUNK - 1
                if high > filled_to:
                    filled_to = low + max(RECOMPUTE_FILL_CHUNK, RECOMPUTE_CHUNK) - 1
                    self._recompute_fill_full(company, (low, filled_to))
                changed += self._recompute_chunk(company, id_range=(low, high))
                low = high + 1
                done += 1
                params.set_param(PARAM_CHECKPOINT, f"{company.id}:{low}@{run_started}")
                self.env["ir.cron"]._notify_progress(
                    done=done, remaining=max(total - done, 1)
                )
                self.env.cr.commit()  # pylint: disable=invalid-commit
                if time.monotonic() - started > RECOMPUTE_TIME_BUDGET:
                    # ir.cron calls again at once, as work remains (and the
                    # next call computes again what this one had not written).
                    self.env.cr.execute("DROP TABLE IF EXISTS winback_recompute_full")
                    return changed, False
        self.env.cr.execute("DROP TABLE IF EXISTS winback_recompute_full")
        params.set_param(PARAM_CHECKPOINT, "")
        self._segments()._sync_all_tags(companies)
        return changed, True

    def _recompute_fill_full(self, company, id_range):
        """Aggregate, in one statement, the purchases of the commercial
        entities of ``id_range`` (inclusive bounds) and keep their changes
        (``_recompute_fill``) in the session's temporary table
        winback_recompute_full, which the run's next chunks write
        (``_recompute_chunk``). Committed: the run's chunks are transactions
        of their own."""
        self.env.cr.execute(
            "DROP TABLE IF EXISTS winback_recompute_full;"
            " CREATE TEMP TABLE winback_recompute_full ("
            " partner_id int, commercial_id int, last_date date, interval float8,"
            " old_segment int, new_segment int, old_date date,"
            " old_interval float8)"
        )
        self._fill_scope(company, self._range_scope(id_range), "winback_recompute_full")
        self.env.cr.execute("ANALYZE winback_recompute_full")
        self.env.cr.commit()  # pylint: disable=invalid-commit

    def _recompute_incremental(self, companies, last_run):
        """Only the customers whose values may have changed since
        ``last_run``: an order or the partner itself was written since (with
        a margin for transactions that were still open), or the days since
        their last purchase crossed a segment boundary."""
        since = last_run - INCREMENTAL_MARGIN
        changed = 0
        for company in companies:
            key = str(company.id)
            tz = company.partner_id.tz or "UTC"
            today = fields.Date.context_today(self.with_context(tz=tz))
            last_day = fields.Date.context_today(
                self.with_context(tz=tz), timestamp=last_run
            )
            segments = self._segments().search([("company_id", "=", company.id)])
            bounds = sorted(
                set(segments.mapped("min_days"))
                | {s.max_days + 1 for s in segments if s.max_days}
            )
            factor_segments = segments.filtered(lambda s: s.mode == "factor")
            factor_bounds = sorted(
                set(factor_segments.mapped("min_factor"))
                | {s.max_factor for s in factor_segments if s.max_factor}
            )
            self.env.flush_all()
            self._without_jit()
            self.env.cr.execute(
                SQL(
                    """
                SELECT buyer.commercial_partner_id
                  FROM (%(changed)s) src
                  JOIN res_partner buyer ON buyer.id = src.partner_id
                 UNION
                -- One pass over the partners: written since, or their days
                -- since the last purchase (or its ratio to their rhythm)
                -- crossed a segment boundary since.
                SELECT commercial_partner_id FROM res_partner
                 WHERE write_date >= %(since)s
                    OR (winback_last_order_date ? %(key)s AND (%(crossed)s))
                    """,
                    changed=self._changed_purchases_sql(company, since),
                    since=since,
                    key=key,
                    crossed=self._crossed_sql(
                        key, bounds, factor_bounds, today, last_day
                    ),
                )
            )
            commercial_ids = sorted(row[0] for row in self.env.cr.fetchall() if row[0])
            for chunk in split_every(INCREMENTAL_CHUNK, commercial_ids):
                changed += self._recompute_chunk(company, commercial_ids=list(chunk))
                self.env.cr.commit()  # pylint: disable=invalid-commit
        return changed

    def _without_jit(self):
        """No just-in-time compilation for the rest of this transaction:
        PostgreSQL compiles a statement it estimates costly, and for these
        (a pass over the partners or the purchases, seconds at most) the
        compilation took longer than it saved (3 of the 5 s of a night's
        search for changed customers, at a million)."""
        self.env.cr.execute("SET LOCAL jit = off")

    def _crossed_sql(self, key, bounds, factor_bounds, today, last_day):
        """SQL condition on a partner with a last purchase in company
        ``key``: between ``last_day`` and ``today`` their days since it
        crossed one of ``bounds``, or its ratio to their rhythm one of
        ``factor_bounds``. Written out from the few bounds, so that the
        database compares, rather than runs a sub-query for each customer."""
        days = SQL("(%s::date - (winback_last_order_date ->> %s)::date)", today, key)
        before = SQL(
            "(%s::date - (winback_last_order_date ->> %s)::date)", last_day, key
        )
        rhythm = SQL("(winback_typical_interval ->> %s)::float8", key)
        crossed = [
            SQL("(%s >= %s AND %s < %s)", days, bound, before, bound)
            for bound in bounds
        ] + [
            SQL(
                "(%s >= %s * %s AND %s < %s * %s)",
                days,
                bound,
                rhythm,
                before,
                bound,
                rhythm,
            )
            for bound in factor_bounds
        ]
        return SQL(" OR ").join(crossed) if crossed else SQL("FALSE")

    def _recompute_chunk(self, company, id_range=None, commercial_ids=None):
        """One transaction of a run: the commercial entities ``commercial_ids``
        recomputed (incremental nights), or those of ``id_range`` written
        from the run's winback_recompute_full (full runs)."""
        # An order confirmed meanwhile may touch a partner of the chunk.
        return retry_serialization_failure(
            self.env.cr,
            lambda: (
                self._recompute_company(company, commercial_ids=commercial_ids)
                if commercial_ids
                else self._apply_full_chunk(company, id_range)
            ),
            5,
            "Win-back recompute chunk",
        )

    def _apply_full_chunk(self, company, id_range):
        """Write the changes winback_recompute_full holds for the commercial
        entities of ``id_range``, but not over a partner written since they
        were computed (by an order confirmed meanwhile, which recomputed it
        with what was then the latest purchase): only where the partner's
        values are still those the run read. (A purchase that changed
        nothing the partner showed, an order written in SQL without its
        hook, is the next night's: it starts from this run's start.)
        Returns the number written."""
        key = str(company.id)
        self._create_recompute_tmp()
        self.env.flush_all()
        self._without_jit()
        self.env.cr.execute(
            SQL(
                """
            INSERT INTO winback_recompute_tmp
            SELECT f.partner_id, f.last_date, f.interval, f.old_segment,
                   f.new_segment
              FROM winback_recompute_full f
              JOIN res_partner p ON p.id = f.partner_id
             WHERE %(scope)s
               AND COALESCE(f.commercial_id, f.partner_id) BETWEEN %(low)s AND %(high)s
               AND (p.winback_last_order_date ->> %(key)s)::date
                   IS NOT DISTINCT FROM f.old_date
               AND (p.winback_typical_interval ->> %(key)s)::float8
                   IS NOT DISTINCT FROM f.old_interval
               AND (p.winback_segment_id ->> %(key)s)::int
                   IS NOT DISTINCT FROM f.old_segment
                """,
                scope=self._range_scope(id_range),
                low=id_range[0],
                high=id_range[1],
                key=key,
            )
        )
        changed = self.env.cr.rowcount
        if changed:
            self._apply_recompute(key, scope=self._range_scope(id_range))
        self.env["res.partner"].invalidate_model(RECOMPUTED_FIELDS, flush=False)
        return changed

    def _max_partner_id(self):
        self.env.cr.execute("SELECT COALESCE(max(id), 0) FROM res_partner")
        return self.env.cr.fetchone()[0]

    @api.model
    def _recompute_partners(self, partners, companies=None):
        """Update last purchase, segment and tag of ``partners`` (and of the
        rest of their commercial entity) at once, in ``companies`` (default:
        every company with segments).

        Called when an order is confirmed or cancelled, for the order's
        company only.
        """
        partners = partners.commercial_partner_id
        if not partners:
            return True
        if companies is None:
            companies = self._segments().search([]).company_id
        for company in companies:
            self._recompute_company(company, commercial_ids=partners.ids)
        return True

    @api.model
    def _recompute_company(self, company, commercial_ids=None):
        """Set-based recompute of one company's last purchase dates, segments
        and tags, for the commercial entities ``commercial_ids``, or
        everyone; always with all the contacts of these entities (a full
        run, chunk by chunk: ``_recompute_full``).

        A commercial entity (a company, or a person without a parent) and all
        its contacts share one last purchase: the latest purchase any of them
        made, from any source the company counts (``_purchase_sources``).
        Contacts therefore enter the segment with their company, so the
        person who has the mobile number gets the message.

        Only rows whose values change are written. Odoo's transactions are
        repeatable-read: when an order confirmation updates the same partner
        concurrently, one of the two transactions fails with a serialization
        error and is retried (the cron retries its chunk, Odoo retries the
        user's request), so no stale value overwrites a fresh one.
        """
        if commercial_ids:
            scope = SQL("p.commercial_partner_id = ANY(%s)", list(commercial_ids))
        else:
            scope = SQL("TRUE")
        self._create_recompute_tmp()
        changed = self._fill_scope(company, scope, "winback_recompute_tmp")
        if changed:
            self._apply_recompute(str(company.id))
        self.env["res.partner"].invalidate_model(
            RECOMPUTED_FIELDS, flush=bool(commercial_ids)
        )
        return changed

    def _range_scope(self, id_range):
        """The commercial entities of ``id_range`` (inclusive id bounds),
        each whole (its contacts share its last purchase): the scope is then
        all the buyers whose purchases count, read once."""
        return SQL(
            "(p.commercial_partner_id BETWEEN %s AND %s"
            " OR (p.commercial_partner_id IS NULL AND p.id BETWEEN %s AND %s))",
            *id_range,
            *id_range,
        )

    def _create_recompute_tmp(self):
        self.env.cr.execute(
            "DROP TABLE IF EXISTS winback_recompute_tmp; "
            "CREATE TEMP TABLE winback_recompute_tmp ("
            " partner_id int PRIMARY KEY, last_date date, interval float8,"
            " old_segment int, new_segment int) ON COMMIT DROP"
        )

    def _fill_scope(self, company, scope, table):
        """``_recompute_fill`` of ``company``'s partners of ``scope`` into
        ``table``; a segment whose extra filter the database refuses is
        archived (with an alert) and the others are computed. Returns the
        number of partners whose values change."""
        self.env.flush_all()
        self._without_jit()
        tz = company.partner_id.tz or "UTC"
        today = fields.Date.context_today(self.with_context(tz=tz))
        segments = self._segments().search([("company_id", "=", company.id)])
        subselects = segments._filter_subselects()
        self.env.flush_all()  # segments archived for a broken filter
        try:
            with self.env.cr.savepoint(flush=False):
                return self._recompute_fill(
                    company, scope, today, segments, subselects, table
                )
        except pg_errors.SerializationFailure:
            raise
        except psycopg2.Error:
            broken = segments._find_broken_filters(subselects)
            if not broken:
                raise
            for segment, error in broken.items():
                segment._disable_broken_filter(error)
                del subselects[segment]
            self.env.flush_all()
            return self._recompute_fill(
                company, scope, today, segments.filtered("active"), subselects, table
            )

    @api.model
    def _recompute_fill(
        self, company, scope, today, segments, subselects, table="winback_recompute_tmp"
    ):
        """Fill ``table`` (winback_recompute_tmp, or the full run's
        winback_recompute_full, which also keeps each partner's commercial
        entity and old values) with the partners of ``scope`` (whole
        commercial entities) whose last purchase, rhythm or segment changes;
        returns their number.

        The rhythm is the median gap between the customer's distinct purchase
        days (two purchases on one day are one visit; a zero gap would make
        any pause look endless), from ``RHYTHM_MIN_PURCHASE_DAYS`` days on.
        The segment is the first of ``segments`` the customer fits
        (``_segment_case_sql``)."""
        key = str(company.id)
        self.env.cr.execute(
            SQL(
                """
            WITH scoped AS (
                SELECT p.id, p.commercial_partner_id, p.active,
                       (p.winback_last_order_date ->> %(key)s)::date AS old_date,
                       (p.winback_typical_interval ->> %(key)s)::float8
                           AS old_interval,
                       (p.winback_segment_id ->> %(key)s)::int AS old_segment
                  FROM res_partner p
                 WHERE %(scope)s
            ), gaps AS (
                SELECT commercial_id, purchase_date,
                       purchase_date - lag(purchase_date) OVER (
                           PARTITION BY commercial_id ORDER BY purchase_date) AS gap
                  FROM (%(purchases)s) src
            ), last_order AS (
                -- A gap of 0 is a second purchase on the same day: not a
                -- visit (not counted) nor a gap (NULL, which the median
                -- ignores, as the first purchase's).
                SELECT commercial_id, max(purchase_date) AS last_date,
                       CASE WHEN count(*) FILTER (WHERE gap IS DISTINCT FROM 0)
                                 >= %(min_days)s
                            THEN percentile_cont(0.5)
                                 WITHIN GROUP (ORDER BY NULLIF(gap, 0))
                       END AS interval
                  FROM gaps
              GROUP BY commercial_id
            ), target AS (
                SELECT sc.id, sc.commercial_partner_id, sc.old_date,
                       sc.old_interval, sc.old_segment,
                       lo.last_date, lo.interval,
                       %(segment)s AS new_segment
                  FROM scoped sc
             LEFT JOIN last_order lo
                    ON lo.commercial_id = sc.commercial_partner_id AND sc.active
                 WHERE lo.last_date IS NOT NULL OR sc.old_date IS NOT NULL
                    OR sc.old_segment IS NOT NULL
            )
            INSERT INTO %(table)s
            SELECT id, %(columns)s
              FROM target p
             WHERE last_date IS DISTINCT FROM old_date
                OR interval IS DISTINCT FROM old_interval
                OR new_segment IS DISTINCT FROM old_segment
                """,
                key=key,
                scope=scope,
                # The scope holds every buyer of its commercial entities.
                purchases=self._purchases_sql(company, SQL.identifier("scoped")),
                min_days=RHYTHM_MIN_PURCHASE_DAYS,
                segment=self._segment_case_sql(segments, subselects, today),
                table=SQL.identifier(table),
                columns=SQL(
                    "commercial_partner_id, last_date, interval, old_segment,"
                    " new_segment, old_date, old_interval"
                    if table == "winback_recompute_full"
                    else "last_date, interval, old_segment, new_segment"
                ),
            )
        )
        return self.env.cr.rowcount

    @api.model
    def _segment_case_sql(self, segments, subselects, today):
        """SQL ``CASE`` of the segment of the customer ``sc`` whose last
        purchase is ``lo.last_date`` and rhythm ``lo.interval``: the first of
        the active ``segments`` whose range and extra filter
        (``subselects``) the customer fits. A customer with a rhythm is
        placed by the overdue-factor segments first (days since the last
        purchase divided by the rhythm), lowest first; otherwise, and then,
        by days since the last purchase, the segments in order of their
        first day (an overdue-factor segment by its days range, for the
        customers without a rhythm). Written out from the few segments, so
        that the database does not look them up for each customer."""
        days = SQL("(%s::date - lo.last_date)", today)
        whens = []
        ordered = segments.filtered("active").sorted(lambda s: (s.min_days, s.id))
        factor = ordered.filtered(lambda s: s.mode == "factor")
        for segment in factor:
            condition = SQL(
                "lo.interval IS NOT NULL AND %s >= %s * lo.interval",
                days,
                segment.min_factor or 0.0,
            )
            if segment.max_factor:
                condition = SQL(
                    "%s AND %s < %s * lo.interval", condition, days, segment.max_factor
                )
            whens.append((segment, condition))
        for segment in ordered:
            condition = SQL("%s >= %s", days, segment.min_days)
            if segment.max_days:
                condition = SQL("%s AND %s <= %s", condition, days, segment.max_days)
            if segment.mode == "factor":
                condition = SQL("lo.interval IS NULL AND %s", condition)
            whens.append((segment, condition))
        if not whens:
            return SQL("NULL::int")
        return SQL(
            "CASE %s END",
            SQL(" ").join(
                SQL(
                    "WHEN %s THEN %s",
                    SQL("%s AND sc.id IN %s", condition, subselects[segment])
                    if segment in subselects
                    else condition,
                    segment.id,
                )
                for segment, condition in whens
            ),
        )

    def _apply_recompute(self, key, scope=None):
        """Write winback_recompute_tmp into res_partner and the tag relation;
        ``scope``: SQL condition on the partners ``p`` that holds for all of
        them (it spares reading the others)."""
        self.env.cr.execute(
            SQL(
                """
            UPDATE res_partner p
               SET winback_last_order_date = NULLIF(CASE
                       WHEN t.last_date IS NULL
                       THEN COALESCE(p.winback_last_order_date, '{}'::jsonb) - %(key)s
                       ELSE COALESCE(p.winback_last_order_date, '{}'::jsonb)
                            || jsonb_build_object(%(key)s, t.last_date)
                   END, '{}'::jsonb),
                   winback_typical_interval = NULLIF(CASE
                       WHEN t.interval IS NULL
                       THEN COALESCE(p.winback_typical_interval, '{}'::jsonb)
                            - %(key)s
                       ELSE COALESCE(p.winback_typical_interval, '{}'::jsonb)
                            || jsonb_build_object(%(key)s, t.interval)
                   END, '{}'::jsonb),
                   winback_next_purchase_date = NULLIF(CASE
                       WHEN t.interval IS NULL
                       THEN COALESCE(p.winback_next_purchase_date, '{}'::jsonb)
                            - %(key)s
                       ELSE COALESCE(p.winback_next_purchase_date, '{}'::jsonb)
                            || jsonb_build_object(
                                %(key)s, t.last_date + round(t.interval)::int)
                   END, '{}'::jsonb),
                   winback_segment_id = NULLIF(CASE
                       WHEN t.new_segment IS NULL
                       THEN COALESCE(p.winback_segment_id, '{}'::jsonb) - %(key)s
                       ELSE COALESCE(p.winback_segment_id, '{}'::jsonb)
                            || jsonb_build_object(%(key)s, t.new_segment)
                   END, '{}'::jsonb)
              FROM winback_recompute_tmp t
             WHERE p.id = t.partner_id AND %(scope)s
                """,
                key=key,
                scope=scope or SQL("TRUE"),
            )
        )
        self.env.cr.execute(
            """
            DELETE FROM res_partner_res_partner_category_rel r
             USING winback_recompute_tmp t, winback_segment s
             WHERE r.partner_id = t.partner_id
               AND s.id = t.old_segment
               AND r.category_id = s.tag_id
               AND t.old_segment IS DISTINCT FROM t.new_segment
            """
        )
        self.env.cr.execute(
            """
            INSERT INTO res_partner_res_partner_category_rel
                            (category_id, partner_id)
            SELECT s.tag_id, t.partner_id
              FROM winback_recompute_tmp t
              JOIN winback_segment s ON s.id = t.new_segment
             WHERE s.tag_id IS NOT NULL
            ON CONFLICT DO NOTHING
            """
        )

    def _segments(self):
        return self.env["winback.segment"].sudo()

    # ------------------------------------------------------------
    # PURCHASE SOURCES
    # ------------------------------------------------------------

    @api.model
    def _purchase_sources(self, company):
        """The purchase sources ``company`` counts (Settings), each a dict:

        - ``table``: the table, read under the alias ``src``; it has the
          columns ``partner_id``, ``company_id`` and ``write_date``;
        - ``date``: SQL of the purchase's day in the company's time zone;
        - ``counted``: SQL condition of the rows that are purchases;
        - ``rows`` (optional): SQL condition of the rows that may ever be
          purchases, whatever their state (what the incremental night
          looks at).

        The core counts confirmed sale orders (eCommerce orders included)
        and the posted customer invoices that no order produced (an invoice
        made from an order is the order's purchase, dated at the order);
        glue modules such as ``winback_whatsapp_pos`` add theirs.
        """
        tz = company.partner_id.tz or "UTC"
        sources = []
        if company.winback_count_sale_orders:
            sources.append(
                {
                    "table": SQL.identifier("sale_order"),
                    "date": SQL(
                        "timezone(%s, src.date_order AT TIME ZONE 'UTC')::date", tz
                    ),
                    "counted": SQL("src.state = 'sale'"),
                }
            )
        if company.winback_count_invoices:
            # NOT EXISTS, each a top-level condition: PostgreSQL makes them
            # anti-joins (under an OR they would run once per invoice).
            made_from_no_order = SQL(" AND ").join(
                SQL("NOT %s", condition) for condition in self._invoice_from_order_sql()
            )
            sources.append(
                {
                    "table": SQL.identifier("account_move"),
                    "date": SQL("src.invoice_date"),
                    "rows": SQL("src.move_type = 'out_invoice'"),
                    "counted": SQL(
                        "src.move_type = 'out_invoice' AND src.state = 'posted' "
                        "AND src.invoice_date IS NOT NULL AND %s",
                        made_from_no_order,
                    ),
                }
            )
        return sources

    @api.model
    def _purchase_sources_changed(self):
        """A company counts other sources now: every last purchase may
        change, so the recompute cron runs in full, at once (in the
        background), rather than at night."""
        self.env["ir.config_parameter"].sudo().set_param(PARAM_LAST_FULL, False)
        cron = self.env.ref(
            "winback_whatsapp.ir_cron_winback_recompute", raise_if_not_found=False
        )
        if cron:
            cron.sudo()._trigger()

    @api.model
    def _invoice_from_order_sql(self):
        """SQL ``EXISTS (...)`` conditions on the invoice ``src``
        (account_move), one of which is true when an order produced it, so
        that the order alone counts: here a sale order (an invoice line
        linked to a sale order line)."""
        return [
            SQL(
                """EXISTS (
                    SELECT 1 FROM account_move_line aml
                      JOIN sale_order_line_invoice_rel rel
                        ON rel.invoice_line_id = aml.id
                     WHERE aml.move_id = src.id)"""
            )
        ]

    @api.model
    def _purchases_sql(self, company, buyers):
        """One set-based query over every purchase source of ``company``:
        rows (commercial_id, purchase_date), one per purchase of the
        partners of ``buyers`` (a relation of columns id and
        commercial_partner_id). Each source joins the buyers itself, so a
        few customers are found through the source's partner index and a
        chunk of customers by one hash join per source."""
        queries = [
            SQL(
                "SELECT b.commercial_partner_id AS commercial_id,"
                " %s AS purchase_date FROM %s src"
                " JOIN %s b ON b.id = src.partner_id"
                " WHERE src.company_id = %s AND %s",
                source["date"],
                source["table"],
                buyers,
                company.id,
                source["counted"],
            )
            for source in self._purchase_sources(company)
        ]
        if not queries:
            return SQL("SELECT NULL::int AS commercial_id, NULL::date AS purchase_date")
        return SQL(" UNION ALL ").join(queries)

    @api.model
    def _changed_purchases_sql(self, company, since):
        """The partner_id of every row of ``company``'s purchase sources
        written since ``since``, counted or not (a cancelled order changes
        its customer's last purchase too)."""
        queries = [
            SQL(
                "SELECT src.partner_id FROM %s src "
                "WHERE src.company_id = %s AND src.write_date >= %s AND %s",
                source["table"],
                company.id,
                since,
                source.get("rows", SQL("TRUE")),
            )
            for source in self._purchase_sources(company)
        ]
        if not queries:
            return SQL("SELECT NULL::int AS partner_id")
        return SQL(" UNION ALL ").join(queries)
