from odoo import api, fields, models
from odoo.tools import SQL


def _currency_rate(currency, day, company):
    """The rate of ``currency`` for ``company`` on ``day`` (SQL
    expressions), as ``res.currency._get_rates`` reads it: 1 without any."""
    return SQL(
        """
        COALESCE((SELECT cr.rate FROM res_currency_rate cr
                   WHERE cr.currency_id = %s
                     AND cr.name <= %s
                     AND (cr.company_id IS NULL OR cr.company_id = %s)
                ORDER BY cr.company_id, cr.name DESC
                   LIMIT 1), 1.0)
        """,
        currency,
        day,
        company,
    )


class WinbackCost(models.AbstractModel):
    """What win-back messages cost, from Meta's rate card
    (``winback.rate``):

    - the cost of each delivered message Meta charges, set-based, when its
      status comes (``_price_messages``);
    - the estimated cost of a campaign before it starts
      (``_estimate``): eligible customers x steps x rate of their country;
    - the return on investment of a campaign and segment (``_roi``), with
      the discount granted to the customers (``_discount_granted``, none
      in this module: a module granting coupons overrides it)."""

    _name = "winback.cost"
    _description = "Win-back messaging costs"

    @api.model
    def _price_messages(self, message_ids):
        """Give the messages of ``message_ids`` that Meta charges and that
        were delivered their cost: the price of the rate card line of their
        country (else the card's Other line) and pricing category (the
        template's when the callback named none; MM Lite priced as
        marketing when the card has no MM Lite line), in force on the day
        of delivery, converted into the company's currency at that day's
        rate. One statement for all of them; a message not charged or not
        delivered keeps a cost of nothing."""
        if not message_ids:
            return
        self.env.flush_all()
        day = SQL("old.delivered_at::date")
        company = SQL("COALESCE(old.company_id, a.company_id)")
        self.env.cr.execute(
            SQL(
                """
                UPDATE winback_message m
                   SET cost = COALESCE(rt.price * %(to_rate)s / %(from_rate)s, 0),
                       rate_id = rt.id
                  FROM winback_message old
             LEFT JOIN winback_account a ON a.id = old.account_id
             LEFT JOIN res_partner p ON p.id = old.partner_id
             LEFT JOIN winback_template t ON t.id = old.template_id
             LEFT JOIN res_company c ON c.id = %(company)s
             LEFT JOIN LATERAL (
                    SELECT r.id, r.price, r.currency_id
                      FROM winback_rate r
                     WHERE r.active
                       AND r.date_start <= %(day)s
                       AND (r.country_id = COALESCE(old.country_id, p.country_id)
                            OR r.country_id IS NULL)
                       AND r.category IN (
                            COALESCE(old.pricing_category, t.category, 'marketing'),
                            CASE WHEN old.pricing_category = 'marketing_lite'
                                 THEN 'marketing' END)
                  ORDER BY r.country_id IS NULL,
                           r.category <> COALESCE(old.pricing_category,
                                                  t.category, 'marketing'),
                           r.date_start DESC
                     LIMIT 1
                  ) rt ON TRUE
                 WHERE m.id = old.id
                   AND old.id = ANY(%(ids)s)
                   AND old.direction = 'outbound'
                   AND old.billable
                   AND old.delivered_at IS NOT NULL
                """,
                to_rate=_currency_rate(SQL("c.currency_id"), day, company),
                from_rate=_currency_rate(SQL("rt.currency_id"), day, company),
                company=company,
                day=day,
                ids=list(message_ids),
            )
        )
        self.env["winback.message"].invalidate_model(["cost", "rate_id"])

    @api.model
    def _rate_price(self, company, country, category, day=None):
        """The price in ``company``'s currency of one ``category`` message
        to ``country`` delivered on ``day`` (today by default), by the rate
        card, as ``_price_messages`` prices it; 0 without any line."""
        day = day or fields.Date.context_today(self)
        Rate = self.env["winback.rate"].sudo()
        domain = [("date_start", "<=", day), ("category", "=", category)]
        rate = Rate.search(
            [*domain, ("country_id", "=", country.id)], limit=1
        ) or Rate.search([*domain, ("country_id", "=", False)], limit=1)
        if not rate:
            return 0.0
        return rate.currency_id._convert(
            rate.price, company.currency_id, company, day, round=False
        )

    @api.model
    def _estimate(self, campaign, counts_by_country):
        """(first message, every step) estimated cost of ``campaign`` in its
        company's currency, for ``counts_by_country`` ({res.country or
        empty: eligible customers}): each treated customer (the holdout
        group receives nothing) costs the rate of their country for the
        first step's category, and at most the sum over every step."""
        steps = campaign.step_ids.filtered("template_id").sorted("sequence")
        if not steps:
            return 0.0, 0.0
        treated = 1 - (campaign.holdout_percent or 0.0) / 100.0
        first = upper = 0.0
        company = campaign.company_id
        for country, count in counts_by_country.items():
            prices = [
                self._rate_price(company, country, step.template_id.category)
                for step in steps
            ]
            first += count * treated * prices[0]
            upper += count * treated * sum(prices)
        return first, upper

    @api.model
    def _eligibility_by_country(self, campaign):
        """The eligibility counts of ``campaign`` ({reason: customers}, as
        ``winback.enroller._eligibility_counts``) and its eligible customers
        by country ({res.country or empty: customers}), in one statement.

        The country of a customer is the one whose calling code starts
        their number (the longest; their own country first when its code
        matches, for codes several countries share), else their country:
        Meta charges by the number's calling code."""
        self.env.flush_all()
        self.env.cr.execute(
            SQL(
                """
                SELECT e.reason,
                       CASE WHEN e.reason = 'eligible' THEN COALESCE(
                         (SELECT rc.id FROM res_country rc
                           WHERE rc.id = p.country_id AND rc.phone_code > 0
                             AND starts_with(e.phone_sanitized, '+' || rc.phone_code)),
                         (SELECT rc.id FROM res_country rc
                           WHERE rc.phone_code > 0
                             AND starts_with(e.phone_sanitized, '+' || rc.phone_code)
                        ORDER BY length(rc.phone_code::text) DESC, rc.id
                           LIMIT 1),
                         p.country_id) END AS country_id,
                       count(*)
                  FROM (%s) e (id, segment_id, phone_sanitized, last_date, reason)
                  JOIN res_partner p ON p.id = e.id
              GROUP BY 1, 2
                """,
                self.env["winback.enroller"]._eligibility_sql(campaign),
            )
        )
        counts, by_country = {}, {}
        Country = self.env["res.country"]
        for reason, country_id, count in self.env.cr.fetchall():
            counts[reason] = counts.get(reason, 0) + count
            if reason == "eligible":
                by_country[Country.browse(country_id)] = count
        return counts, by_country

    @api.model
    def _discount_granted(self, campaign_ids):
        """{(campaign id, segment id): discount granted}: what the coupons
        of win-back campaigns took off the customers' orders, in the
        company's currency. None in this module (it grants no coupon); the
        module that grants coupons (loyalty) overrides this hook. A pair
        left out counts as no discount."""
        return {}

    @api.model
    def _figures(self, cost, replied, converted, incremental, revenue, discount):
        """Cost per reply, per conversion and per incremental conversion,
        and the return on investment::

            ROI = (incremental revenue - messaging cost - discount granted)
                  / (messaging cost + discount granted)

        ``incremental``: the conversions the messages added beyond the
        holdout group's rate (lift x treated customers); ``revenue``: the
        incremental revenue. A figure whose denominator is zero (or, for
        the incremental conversion, not positive) is 0."""
        spent = cost + discount
        return {
            "cost_per_reply": cost / replied if replied else 0.0,
            "cost_per_conversion": cost / converted if converted else 0.0,
            "cost_per_incremental": cost / incremental if incremental > 0 else 0.0,
            "roi": (revenue - spent) / spent if spent else 0.0,
        }
