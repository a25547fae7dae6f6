"""Benchmark of the segment recompute (issue: self-updating segments).

Builds N customers and M confirmed orders in SQL (written when they were
placed, as in a shop's history), then measures in one run:
- the addon's full recompute from cold (winback.segment.recompute._cron_recompute,
  called again while it reports work remaining, as ir.cron does);
- a warm recompute after 1% of the customers bought again;
- a bare SQL floor doing the same aggregate and update in one statement;
- a naive ORM loop over a 10,000-customer sample, extrapolated to N.

These first runs count sale orders only (the company's other purchase
sources are switched off), as before the Point of Sale and invoices counted.
Then the mixed-source run (issue 15): the same N customers and M purchases,
split in thirds across confirmed sale orders, paid Point of Sale orders and
posted invoices made from no order, plus invoices made from a tenth of the
orders (the same purchases, which must not count again); the addon's full
recompute from cold over every source against a bare SQL floor over the same
sources.

Every run computes each customer's rhythm too (the median gap between their
purchase days), as the addon always does, and so does every floor. Last, the
rhythm run (issue 16): the same mixed purchases, the default segments in
overdue-factor mode; the addon's cold full recompute against a bare SQL floor
computing the same medians and bands, then a warm night after 1% of the
customers bought again.
"""

import random
import subprocess
import time

from benchlib import environment, parser, registry, report, rss_mb, timed

PARTNERS_SQL = """
WITH ids AS (
    SELECT nextval('res_partner_id_seq') AS id FROM generate_series(1, %(n)s)
)
INSERT INTO res_partner (id, name, complete_name, commercial_partner_id, active,
                         type, autopost_bills, is_company, create_date, write_date)
SELECT id, 'Bench customer ' || id, 'Bench customer ' || id, id, true,
       'contact', 'ask', false, now() - interval '400 days', now() - interval '400 days'
  FROM ids
RETURNING id
"""

ORDERS_SQL = """
INSERT INTO sale_order (name, partner_id, partner_invoice_id, partner_shipping_id,
                        company_id, date_order, state, create_date, write_date)
SELECT 'BENCH/' || %(tag)s || '/' || g, p, p, p, %(company)s, d, 'sale', d, d
  FROM (SELECT g, %(first)s + floor(random() * %(n)s)::int AS p,
               (now() AT TIME ZONE 'UTC') - %(days)s * random() * interval '1 day' AS d
          FROM generate_series(1, %(m)s) g) s
"""

CLEAR_SQL = """
UPDATE res_partner SET winback_last_order_date = NULL, winback_segment_id = NULL,
                       winback_typical_interval = NULL,
                       winback_next_purchase_date = NULL
 WHERE winback_last_order_date IS NOT NULL OR winback_segment_id IS NOT NULL;
DELETE FROM res_partner_res_partner_category_rel
 WHERE category_id IN (SELECT tag_id FROM winback_segment);
"""

# The same aggregate and the same writes as the addon, as one bare statement
# per table: no chunks, no change detection, thresholds inlined. Each
# customer's last purchase day and rhythm (the median gap between distinct
# purchase days, from 3 days on), from PURCHASES (partner_id, day d);
# SEGMENT is the CASE choosing the segment.
FLOOR_TEMPLATE = """
CREATE TEMP TABLE floor_target AS
WITH days AS (
    SELECT DISTINCT buyer.commercial_partner_id AS commercial_id, src.d
      FROM (PURCHASES) src JOIN res_partner buyer ON buyer.id = src.partner_id
), rhythm AS (
    SELECT commercial_id, max(d) AS last_date,
           CASE WHEN count(*) >= 3
                THEN percentile_cont(0.5) WITHIN GROUP (ORDER BY gap) END AS rhythm
      FROM (SELECT commercial_id, d,
                   d - lag(d) OVER (PARTITION BY commercial_id ORDER BY d) AS gap
              FROM days) g
  GROUP BY commercial_id
)
SELECT p.id, r.last_date, r.rhythm, CASE SEGMENT END AS segment_id
  FROM res_partner p JOIN rhythm r ON r.commercial_id = p.commercial_partner_id
 WHERE p.active;
UPDATE res_partner p
   SET winback_last_order_date = jsonb_build_object(%(key)s, t.last_date),
       winback_typical_interval = CASE WHEN t.rhythm IS NOT NULL
                                       THEN jsonb_build_object(%(key)s, t.rhythm) END,
       winback_next_purchase_date = CASE WHEN t.rhythm IS NOT NULL
           THEN jsonb_build_object(%(key)s, t.last_date + round(t.rhythm)::int) END,
       winback_segment_id = CASE WHEN t.segment_id IS NOT NULL
                                 THEN jsonb_build_object(%(key)s, t.segment_id) END
  FROM floor_target t WHERE p.id = t.id;
INSERT INTO res_partner_res_partner_category_rel (category_id, partner_id)
SELECT s.tag_id, t.id FROM floor_target t JOIN winback_segment s ON s.id = t.segment_id
ON CONFLICT DO NOTHING;
DROP TABLE floor_target;
"""

SALE_PURCHASES = """SELECT partner_id,
                       timezone('UTC', date_order AT TIME ZONE 'UTC')::date AS d
                  FROM sale_order
                 WHERE state = 'sale' AND company_id = %(company)s"""

# Sale orders, paid Point of Sale orders, and invoices made from no order.
MIXED_PURCHASES = (
    SALE_PURCHASES
    + """
             UNION ALL
                SELECT partner_id,
                       timezone('UTC', date_order AT TIME ZONE 'UTC')::date
                  FROM pos_order
                 WHERE state IN ('paid', 'done', 'invoiced')
                   AND company_id = %(company)s
             UNION ALL
                SELECT am.partner_id, am.invoice_date
                  FROM account_move am
                 WHERE am.move_type = 'out_invoice' AND am.state = 'posted'
                   AND am.company_id = %(company)s
                   AND NOT EXISTS (
                       SELECT 1 FROM account_move_line aml
                         JOIN sale_order_line_invoice_rel rel
                           ON rel.invoice_line_id = aml.id
                        WHERE aml.move_id = am.id)
                   AND NOT EXISTS (
                       SELECT 1 FROM pos_order po WHERE po.account_move = am.id)"""
)

DAYS_SEGMENT = """WHEN %(today)s - r.last_date >= 180 THEN %(cold)s
            WHEN %(today)s - r.last_date >= 90 THEN %(cooling)s
            WHEN %(today)s - r.last_date >= 60 THEN %(lukewarm)s"""

# The default segments in overdue-factor mode (1.5, 2.5, 4+ times the
# rhythm); customers without a rhythm by days.
FACTOR_SEGMENT = (
    """WHEN r.rhythm IS NOT NULL THEN CASE
                WHEN %(today)s - r.last_date >= 4 * r.rhythm THEN %(cold)s
                WHEN %(today)s - r.last_date >= 2.5 * r.rhythm THEN %(cooling)s
                WHEN %(today)s - r.last_date >= 1.5 * r.rhythm THEN %(lukewarm)s END
            """
    + DAYS_SEGMENT
)


def floor_sql(purchases, segment):
    return FLOOR_TEMPLATE.replace("PURCHASES", purchases).replace("SEGMENT", segment)


FLOOR_SQL = floor_sql(SALE_PURCHASES, DAYS_SEGMENT)
MIXED_FLOOR_SQL = floor_sql(MIXED_PURCHASES, DAYS_SEGMENT)
RHYTHM_FLOOR_SQL = floor_sql(MIXED_PURCHASES, FACTOR_SEGMENT)


# Mixed sources: a third of the purchases each (a third of the sale orders
# of the first runs stay, the other sources are generated). Invoices of orders are the
# orders' purchases: a tenth of the sale orders and of the Point of Sale
# orders get one (dated today, later than the order), which must not count.
MIXED_SQL = """
-- A third of the sale orders stay (random customers and dates already).
DELETE FROM sale_order WHERE id %% 3 <> 0;
INSERT INTO pos_order (name, partner_id, company_id, session_id, date_order, state,
                       amount_total, amount_tax, amount_paid, amount_return,
                       create_date, write_date)
SELECT 'BENCH/POS/' || g, p, %(company)s, %(session)s, d,
       (ARRAY['paid', 'done', 'done', 'invoiced'])[1 + floor(random() * 4)::int],
       25, 0, 25, 0, d, d
  FROM (SELECT g, %(first)s + floor(random() * %(n)s)::int AS p,
               (now() AT TIME ZONE 'UTC') - 400 * random() * interval '1 day' AS d
          FROM generate_series(1, %(k)s) g) s;
-- Posted customer invoices made from no order.
INSERT INTO account_move (name, partner_id, commercial_partner_id, company_id,
                          journal_id, currency_id, move_type, state, auto_post,
                          date, invoice_date, amount_untaxed, create_date, write_date)
SELECT 'BENCH/INV/' || g, p, p, %(company)s, %(journal)s, %(currency)s,
       'out_invoice', 'posted', 'no', d, d, 25, d, d
  FROM (SELECT g, %(first)s + floor(random() * %(n)s)::int AS p,
               current_date - floor(400 * random())::int AS d
          FROM generate_series(1, %(k)s) g) s;
-- Invoices of a tenth of the sale orders, linked line to line.
INSERT INTO sale_order_line (order_id, name, product_id, product_uom,
                             product_uom_qty, price_unit, customer_lead, company_id)
SELECT id, 'Bench', %(product)s, %(uom)s, 1, 25, 0, company_id
  FROM sale_order WHERE id %% 10 = 0;
INSERT INTO account_move (name, ref, partner_id, commercial_partner_id, company_id,
                          journal_id, currency_id, move_type, state, auto_post,
                          date, invoice_date, amount_untaxed, create_date, write_date)
SELECT 'BENCH/SOINV/' || sol.id, 'SOL' || sol.id, so.partner_id, so.partner_id,
       so.company_id, %(journal)s, %(currency)s, 'out_invoice', 'posted', 'no',
       current_date, current_date, 25, now(), now()
  FROM sale_order_line sol JOIN sale_order so ON so.id = sol.order_id;
-- Invoices of a tenth of the Point of Sale orders.
INSERT INTO account_move (name, ref, partner_id, commercial_partner_id, company_id,
                          journal_id, currency_id, move_type, state, auto_post,
                          date, invoice_date, amount_untaxed, create_date, write_date)
SELECT 'BENCH/POSINV/' || id, 'POS' || id, partner_id, partner_id, company_id,
       %(journal)s, %(currency)s, 'out_invoice', 'posted', 'no',
       current_date, current_date, 25, now(), now()
  FROM pos_order WHERE id %% 10 = 0;
UPDATE pos_order po SET account_move = am.id, state = 'invoiced'
  FROM account_move am WHERE am.ref = 'POS' || po.id;
-- One product line per invoice.
INSERT INTO account_move_line (move_id, company_id, journal_id, currency_id,
                               account_id, partner_id, display_type, name,
                               quantity, price_unit, balance, amount_currency,
                               debit, credit, parent_state, date)
SELECT id, company_id, journal_id, currency_id, %(account)s, partner_id, 'product',
       'Bench', 1, 25, -25, -25, 0, 25, 'posted', date
  FROM account_move WHERE name LIKE 'BENCH/%%';
INSERT INTO sale_order_line_invoice_rel (invoice_line_id, order_line_id)
SELECT aml.id, substr(am.ref, 4)::int
  FROM account_move am JOIN account_move_line aml ON aml.move_id = am.id
 WHERE am.ref LIKE 'SOL%%';
DELETE FROM ir_config_parameter WHERE key LIKE 'winback_whatsapp.recompute_%%';
"""

# Customers who bought today, inserted in SQL as an import would, so that
# the nightly recompute is what picks them up.
WARM_ORDERS_SQL = """
INSERT INTO sale_order (name, partner_id, partner_invoice_id, partner_shipping_id,
                        company_id, date_order, state, create_date, write_date)
SELECT 'BENCH/' || %(tag)s || '/' || id, id, id, id, %(company)s,
       now() AT TIME ZONE 'UTC', 'sale', now(), now()
  FROM res_partner WHERE id = ANY(%(ids)s)
"""

SEGMENTED_SQL = "SELECT count(*) FROM res_partner WHERE winback_segment_id IS NOT NULL"


def vacuum(database):
    # Each measured run starts from the same physical state.
    subprocess.run(
        ["psql", "-X", "-q", "-d", database, "-c", "VACUUM ANALYZE res_partner"],
        check=True,
    )


def main():
    args = parser(__doc__)
    args.add_argument("--partners", type=int, default=1_000_000)
    args.add_argument("--orders", type=int, default=3_000_000)
    args.add_argument("--sample", type=int, default=10_000)
    options = args.parse_args()
    reg = registry(options)
    n, m = options.partners, options.orders

    with environment(reg) as env:
        company = env.company
        # The Point of Sale brings Inventory, and with it sale_stock's
        # required shipping policy: a column default in this scratch
        # database keeps the SQL inserts of orders short.
        if "picking_policy" in env["sale.order"]._fields:
            env.cr.execute(
                "ALTER TABLE sale_order ALTER COLUMN picking_policy"
                " SET DEFAULT 'direct'"
            )
        # The sale-order-only runs, as before other sources counted.
        env.cr.execute(
            "UPDATE res_company SET winback_count_invoices = FALSE,"
            " winback_count_pos_orders = FALSE"
        )
        started = time.perf_counter()
        env.cr.execute(PARTNERS_SQL, {"n": n})
        ids = [row[0] for row in env.cr.fetchall()]
        first = ids[0]
        env.cr.execute(
            ORDERS_SQL,
            {
                "tag": "A",
                "company": company.id,
                "days": 400,
                "first": first,
                "n": n,
                "m": m,
            },
        )
        elapsed = time.perf_counter() - started
        print(f"# generated {n} partners, {m} orders in {elapsed:.1f}s")
        segments = {s.min_days: s for s in env["winback.segment"].search([])}
    subprocess.run(
        ["psql", "-X", "-q", "-d", options.database, "-c", "VACUUM ANALYZE"], check=True
    )

    # Floor.
    floor_s, _ = cold_run(reg, options.database, floor_statement(FLOOR_SQL, segments))

    # The addon, cold.
    addon_s, segmented = cold_run(reg, options.database, recompute_until_done)

    # Warm: 1% of the customers bought today (inserted in SQL, as an import
    # would, so that the nightly recompute is what picks them up).
    changed = n // 100
    with environment(reg) as env:
        env.cr.execute(
            WARM_ORDERS_SQL,
            {
                "company": env.company.id,
                "tag": "W",
                "ids": random.Random(1).sample(ids, changed),
            },
        )
    with environment(reg) as env:
        warm_s, changed_rows = timed(recompute_until_done, env)

    # Naive ORM loop over a sample, rolled back.
    with environment(reg) as env:
        sample = env["res.partner"].browse(random.Random(2).sample(ids, options.sample))
        naive_s, _ = timed(naive_loop, env, sample)
        env.cr.rollback()

    naive_est = naive_s * n / options.sample
    mixed = mixed_sources(reg, options, ids[0], segments)
    rhythm = rhythm_segments(reg, options, ids, segments, mixed["purchases"])
    report(
        "recompute",
        partners=n,
        orders=m,
        segmented=segmented,
        addon_s=addon_s,
        floor_s=floor_s,
        ratio=addon_s / floor_s,
        naive_est_s=naive_est,
        rss_mb=rss_mb(),
    )
    report(
        "recompute_warm",
        changed=changed_rows,
        addon_s=warm_s,
        pct_of_cold=100 * warm_s / addon_s,
    )
    report("recompute_mixed", **mixed)
    report("recompute_rhythm", **rhythm)


def rhythm_segments(reg, options, ids, segments, purchases):
    """The rhythm run, over the mixed purchases: the default segments by
    overdue factor; the addon's cold full recompute against the SQL floor
    computing the same medians, then the warm night after 1% bought."""
    with environment(reg) as env:
        env.company.winback_segment_mode = "factor"
    floor_s, floor_segmented = cold_run(
        reg, options.database, floor_statement(RHYTHM_FLOOR_SQL, segments)
    )
    with environment(reg) as env:
        env.cr.execute(
            "DELETE FROM ir_config_parameter"
            " WHERE key LIKE 'winback_whatsapp.recompute_%%'"
        )
        # The mixed run wrote the invoices of orders minutes ago: in a shop
        # they date from before last night, and the warm night must not take
        # their customers for tonight's buyers.
        env.cr.execute(
            "UPDATE account_move SET create_date = create_date - interval '1 day',"
            " write_date = write_date - interval '1 day'"
            " WHERE name LIKE 'BENCH/SOINV/%%' OR name LIKE 'BENCH/POSINV/%%'"
        )
    addon_s, segmented = cold_run(reg, options.database, recompute_until_done)
    with environment(reg) as env:
        env.cr.execute(
            "SELECT count(*) FROM res_partner"
            " WHERE winback_typical_interval IS NOT NULL"
        )
        with_rhythm = env.cr.fetchone()[0]
        env.cr.execute(
            WARM_ORDERS_SQL,
            {
                "company": env.company.id,
                "tag": "R",
                "ids": random.Random(3).sample(ids, len(ids) // 100),
            },
        )
    with environment(reg) as env:
        warm_s, warm_changed = timed(recompute_until_done, env)
    return {
        "partners": options.partners,
        "purchases": purchases,
        "with_rhythm": with_rhythm,
        "segmented": segmented,
        "floor_segmented": floor_segmented,
        "addon_s": addon_s,
        "floor_s": floor_s,
        "ratio": addon_s / floor_s,
        "warm_changed": warm_changed,
        "warm_s": warm_s,
        "warm_ratio": warm_s / addon_s,
    }


def mixed_sources(reg, options, first, segments):
    """The mixed-source run: the same customers, M purchases in thirds across
    sale orders, Point of Sale orders and invoices; the addon's cold full
    recompute over every source against the SQL floor over the same."""
    n, k = options.partners, options.orders // 3
    with environment(reg) as env:
        company = env.company
        company.write(
            {"winback_count_invoices": True, "winback_count_pos_orders": True}
        )
        config = env["pos.config"].create({"name": "Bench counter"})
        env.cr.execute(
            "INSERT INTO pos_session (config_id, user_id, name, state, start_at,"
            " stop_at) VALUES (%s, %s, 'BENCH/SESSION', 'closed', now(), now())"
            " RETURNING id",
            [config.id, env.uid],
        )
        session = env.cr.fetchone()[0]
        product = env["product.product"].create({"name": "Bench product"})
        journal = env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", company.id)], limit=1
        )
        started = time.perf_counter()
        env.cr.execute(
            MIXED_SQL,
            {
                "company": company.id,
                "session": session,
                "journal": journal.id,
                "account": journal.default_account_id.id,
                "product": product.id,
                "uom": product.uom_id.id,
                "currency": company.currency_id.id,
                "first": first,
                "n": n,
                "k": k,
            },
        )
        elapsed = time.perf_counter() - started
        env.cr.execute(
            "SELECT (SELECT count(*) FROM sale_order),"
            " (SELECT count(*) FROM account_move"
            "   WHERE name LIKE 'BENCH/SOINV/%' OR name LIKE 'BENCH/POSINV/%')"
        )
        sale_orders, order_invoices = env.cr.fetchone()
        purchases = sale_orders + 2 * k
        print(
            f"# mixed sources: {purchases} purchases ({sale_orders} sale orders, "
            f"{k} POS orders, {k} invoices of no order) and {order_invoices} "
            f"invoices of orders, in {elapsed:.1f}s"
        )
    subprocess.run(
        ["psql", "-X", "-q", "-d", options.database, "-c", "VACUUM ANALYZE"], check=True
    )

    floor_s, floor_segmented = cold_run(
        reg, options.database, floor_statement(MIXED_FLOOR_SQL, segments)
    )

    addon_s, segmented = cold_run(reg, options.database, recompute_until_done)
    return {
        "partners": n,
        "purchases": purchases,
        "sale_orders": sale_orders,
        "pos_orders": k,
        "invoices": k,
        "order_invoices": order_invoices,
        "segmented": segmented,
        "floor_segmented": floor_segmented,
        "addon_s": addon_s,
        "floor_s": floor_s,
        "ratio": addon_s / floor_s,
    }


def cold_run(reg, database, run):
    """``run(env)`` timed from a cleared state (no customer has a last
    purchase nor a segment), and how many customers it segmented."""
    with environment(reg) as env:
        env.cr.execute(CLEAR_SQL)
    vacuum(database)
    with environment(reg) as env:
        seconds, _ = timed(run, env)
        env.cr.execute(SEGMENTED_SQL)
        return seconds, env.cr.fetchone()[0]


def floor_statement(sql, segments):
    """The floor as a ``cold_run`` step: one bare SQL statement writing
    every customer's last purchase and segment."""

    def run(env):
        env.cr.execute(
            sql,
            {
                "today": env["res.partner"]._winback_today(),
                "company": env.company.id,
                "key": str(env.company.id),
                "lukewarm": segments[60].id,
                "cooling": segments[90].id,
                "cold": segments[180].id,
            },
        )

    return run


def recompute_until_done(env):
    """The nightly cron, called again while a full run has a checkpoint
    (ir.cron calls it again when it reports work remaining)."""
    Recompute = env["winback.segment.recompute"]
    params = env["ir.config_parameter"].sudo()
    changed = Recompute._cron_recompute()
    while params.get_param("winback_whatsapp.recompute_checkpoint"):
        changed += Recompute._cron_recompute()
    return changed


def naive_loop(env, partners):
    """What a straightforward ORM implementation would do, customer by customer."""
    today = env["res.partner"]._winback_today()
    segments = env["winback.segment"].search([])
    for partner in partners:
        order = env["sale.order"].search(
            [
                ("partner_id", "child_of", partner.commercial_partner_id.id),
                ("state", "=", "sale"),
                ("company_id", "=", env.company.id),
            ],
            order="date_order desc",
            limit=1,
        )
        last = order.date_order.date() if order else False
        segment = segments.browse()
        if last:
            days = (today - last).days
            segment = segments.filtered(
                lambda s, days=days: s.min_days <= days
                and (not s.max_days or days <= s.max_days)
            )[:1]
        partner.write(
            {
                "winback_last_order_date": last,
                "winback_segment_id": segment.id,
                "category_id": [(3, tag.id) for tag in segments.tag_id - segment.tag_id]
                + ([(4, segment.tag_id.id)] if segment else []),
            }
        )
    env.flush_all()


if __name__ == "__main__":
    main()
