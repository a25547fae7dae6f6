"""Benchmark of the segment recompute (issue: self-updating segments).

Builds N customers and M confirmed orders in SQL (written when they were
placed, as in a shop's history), then measures in one run:
- the addon's full recompute from cold (winback.segment.recompute._cron_recompute,
  called again while it reports work remaining, as ir.cron does);
- a warm recompute after 1% of the customers bought again;
- a bare SQL floor doing the same aggregate and update in one statement;
- a naive ORM loop over a 10,000-customer sample, extrapolated to N.
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
UPDATE res_partner SET winback_last_order_date = NULL, winback_segment_id = NULL
 WHERE winback_last_order_date IS NOT NULL OR winback_segment_id IS NOT NULL;
DELETE FROM res_partner_res_partner_category_rel
 WHERE category_id IN (SELECT tag_id FROM winback_segment);
"""

# The same aggregate and the same writes as the addon, as one bare statement
# per table: no chunks, no change detection, thresholds inlined.
FLOOR_SQL = """
CREATE TEMP TABLE floor_target AS
SELECT p.id, lo.last_date,
       CASE WHEN %(today)s - lo.last_date >= 180 THEN %(cold)s
            WHEN %(today)s - lo.last_date >= 90 THEN %(cooling)s
            WHEN %(today)s - lo.last_date >= 60 THEN %(lukewarm)s END AS segment_id
  FROM res_partner p
  JOIN (SELECT buyer.commercial_partner_id AS commercial_id,
               max(timezone('UTC', so.date_order AT TIME ZONE 'UTC'))::date AS last_date
          FROM sale_order so JOIN res_partner buyer ON buyer.id = so.partner_id
         WHERE so.state = 'sale' AND so.company_id = %(company)s
      GROUP BY buyer.commercial_partner_id) lo
    ON lo.commercial_id = p.commercial_partner_id
 WHERE p.active;
UPDATE res_partner p
   SET winback_last_order_date = jsonb_build_object(%(key)s, t.last_date),
       winback_segment_id = CASE WHEN t.segment_id IS NOT NULL
                                 THEN jsonb_build_object(%(key)s, t.segment_id) END
  FROM floor_target t WHERE p.id = t.id;
INSERT INTO res_partner_res_partner_category_rel (category_id, partner_id)
SELECT s.tag_id, t.id FROM floor_target t JOIN winback_segment s ON s.id = t.segment_id
ON CONFLICT DO NOTHING;
DROP TABLE floor_target;
"""


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
    with environment(reg) as env:
        env.cr.execute(CLEAR_SQL)
    vacuum(options.database)
    with environment(reg) as env:
        today = env["res.partner"]._winback_today()
        floor_s, _ = timed(
            env.cr.execute,
            FLOOR_SQL,
            {
                "today": today,
                "company": env.company.id,
                "key": str(env.company.id),
                "lukewarm": segments[60].id,
                "cooling": segments[90].id,
                "cold": segments[180].id,
            },
        )

    # The addon, cold.
    with environment(reg) as env:
        env.cr.execute(CLEAR_SQL)
    vacuum(options.database)
    with environment(reg) as env:
        addon_s, _ = timed(recompute_until_done, env)
        env.cr.execute(
            "SELECT count(*) FROM res_partner WHERE winback_segment_id IS NOT NULL"
        )
        segmented = env.cr.fetchone()[0]

    # Warm: 1% of the customers bought today (inserted in SQL, as an import
    # would, so that the nightly recompute is what picks them up).
    changed = n // 100
    with environment(reg) as env:
        env.cr.execute(
            """
            INSERT INTO sale_order (name, partner_id, partner_invoice_id,
                                    partner_shipping_id, company_id, date_order,
                                    state, create_date, write_date)
            SELECT 'BENCH/W/' || id, id, id, id, %(company)s,
                   now() AT TIME ZONE 'UTC', 'sale', now(), now()
              FROM res_partner WHERE id = ANY(%(ids)s)
            """,
            {"company": env.company.id, "ids": random.Random(1).sample(ids, changed)},
        )
    with environment(reg) as env:
        warm_s, changed_rows = timed(recompute_until_done, env)

    # Naive ORM loop over a sample, rolled back.
    with environment(reg) as env:
        sample = env["res.partner"].browse(random.Random(2).sample(ids, options.sample))
        naive_s, _ = timed(naive_loop, env, sample)
        env.cr.rollback()

    naive_est = naive_s * n / options.sample
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
