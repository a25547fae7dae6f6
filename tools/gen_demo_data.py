#!/usr/bin/env python3
# ruff: noqa: E501 (the XML it writes is easier to read on one line per field)
"""Write winback_whatsapp/demo/winback_demo_customers.xml: about 200 customers
of the demo shop, in Italy (the demo company's country, winback_demo.xml),
their mobile numbers stored in E.164 (+39...), confirmed orders spread over
400 days, and enrollments and messages in every state, so the reports of a
fresh `make demo` are not empty. Only customers who gave their WhatsApp
marketing consent are enrolled; about 15% did not, and are left out.
Deterministic (fixed seed): run it again after changing it, and commit both.
"""

import random
from pathlib import Path
from xml.sax.saxutils import escape

OUT = Path(__file__).parent.parent / "winback_whatsapp/demo/winback_demo_customers.xml"
rng = random.Random(20260101)

FIRST = (
    "Laura Stefano Anna Davide Roberta Franco Giulia Marco Chiara Luca Sara "
    "Paolo Elena Matteo Francesca Andrea Valentina Simone Federica Alessandro "
    "Martina Giorgio Silvia Lorenzo Ilaria Emma Lucas Sophie Jonas Clara Hugo "
    "Olivia Noah Amelia Mateo Lucia"
).split()
LAST = (
    "Rossi Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti "
    "DeLuca Costa Giordano Mancini Rizzo Lombardi Moretti Barbieri Fontana "
    "Caruso Smith Müller Dubois García Schmidt Martin"
).split()
CONSENT_SOURCES = ["Shop counter", "Web form", "Loyalty card", "Checkout", "Event"]


# Italian mobile prefixes (TIM, Vodafone, WindTre, Iliad, Fastweb...).
MOBILE_PREFIXES = (
    "320 324 327 328 329 330 331 333 334 335 336 337 338 339 340 342 343 345 "
    "346 347 348 349 351 366 370 371 373 377 380 388 389 391 392 393"
).split()
numbers_given = set()


def phone():
    """A new Italian mobile number in E.164, as the addon stores it."""
    while True:
        number = f"+39{rng.choice(MOBILE_PREFIXES)}{rng.randrange(1000000, 9999999)}"
        if number not in numbers_given:
            numbers_given.add(number)
            return number


def ts(days, hour=10):
    return (
        f"(DateTime.today() - relativedelta(days={days}))"
        f".replace(hour={hour}).strftime('%Y-%m-%d %H:%M:%S')"
    )


def day(days):
    return f"(DateTime.today() - relativedelta(days={days})).strftime('%Y-%m-%d')"


# Per segment: campaign, steps, (reply, convert, opt-out) probabilities for the
# treated, conversion for the holdout: recent inactives respond far better.
SEGMENTS = {
    "lukewarm": (
        "sequence_lukewarm",
        ["step_lukewarm_1", "step_lukewarm_2"],
        0.22,
        0.2,
        0.02,
        0.07,
    ),
    "cooling": (
        "sequence_cooling",
        ["step_cooling_1", "step_cooling_2"],
        0.12,
        0.12,
        0.04,
        0.04,
    ),
    "cold": ("sequence_cold", ["step_cold_1", "step_cold_2"], 0.06, 0.05, 0.09, 0.01),
}


def segment_of(days):
    if days >= 180:
        return "cold"
    if days >= 90:
        return "cooling"
    if days >= 60:
        return "lukewarm"
    return None


out = ['<?xml version="1.0" encoding="utf-8"?>', "<odoo>"]
w = out.append
order_no = 0
forced_states = ["failed", "cancelled", "dormant", "opted_out", "replied", "converted"]
for i in range(1, 201):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    number = phone()
    pid = f"partner_{i:03d}"
    w(f'    <record id="{pid}" model="res.partner">')
    w(f'        <field name="name">{escape(first)} {escape(last)}</field>')
    w(f'        <field name="mobile">{number}</field>')
    w('        <field name="country_id" ref="base.it"/>')
    w(
        f'        <field name="email">{first.lower()}.{last.lower()}{i}@example.com</field>'.replace(
            "ü", "u"
        )
    )
    consent = rng.random() < 0.85
    if consent:
        w(
            f'        <field name="winback_consent_date" eval="{ts(rng.randrange(400, 900))}"/>'
        )
        w(
            f'        <field name="winback_consent_source">{rng.choice(CONSENT_SOURCES)}</field>'
        )
    w("    </record>")
    # Orders: 1 to 4, the last one 1 to 400 days ago.
    last_days = rng.randrange(1, 400)
    ages = sorted(
        {
            last_days + rng.randrange(0, 400 - last_days + 1)
            for _ in range(rng.randrange(0, 3))
        }
        | {last_days},
        reverse=True,
    )
    for age in ages:
        order_no += 1
        w(f'    <record id="order_{order_no:04d}" model="sale.order">')
        w(f'        <field name="partner_id" ref="{pid}"/>')
        w(f'        <field name="date_order" eval="{ts(age, 11)}"/>')
        w('        <field name="state">sale</field>')
        qty, price = rng.randrange(1, 4), rng.choice([25.0, 39.0, 60.0, 85.0, 120.0])
        w(
            '        <field name="order_line" eval="[(0, 0, {'
            f"'product_id': ref('product_winback_demo'), 'product_uom_qty': {qty}, "
            f"'price_unit': {price}, 'tax_id': [(5,)]"
            '})]"/>'
        )
        w("    </record>")
    seg = segment_of(last_days)
    # Customers without consent are never enrolled; some inactives are not
    # enrolled yet.
    if not seg or not consent or rng.random() < 0.15:
        w(f'    <record id="{pid}" model="res.partner">')
        w(f'        <field name="winback_last_order_date" eval="{day(last_days)}"/>')
        if seg:
            w(f'        <field name="winback_segment_id" ref="segment_{seg}"/>')
        w("    </record>")
        continue
    seq, steps, p_reply, p_conv, p_opt, p_hold_conv = SEGMENTS[seg]
    holdout = rng.random() < 0.12
    r = rng.random()
    if forced_states:
        state = forced_states.pop()
        holdout = False
    elif holdout:
        state = "converted" if r < p_hold_conv else "holdout"
    elif r < p_conv:
        state = "converted"
    elif r < p_conv + p_reply:
        state = "replied"
    elif r < p_conv + p_reply + p_opt:
        state = "opted_out"
    elif r < 0.55:
        state = "dormant"
    elif r < 0.58:
        state = "failed"
    elif r < 0.60:
        state = "cancelled"
    else:
        state = "running"
    eid = f"enrollment_{i:03d}"
    enrolled_days = rng.randrange(6, 30)
    revenue = 0.0
    if state == "converted":
        order_no += 1
        qty, price = rng.randrange(1, 3), rng.choice([39.0, 60.0, 85.0, 120.0])
        revenue = qty * price
        conv_days = rng.randrange(1, enrolled_days)
        w(f'    <record id="order_{order_no:04d}" model="sale.order">')
        w(f'        <field name="partner_id" ref="{pid}"/>')
        w(f'        <field name="date_order" eval="{ts(conv_days, 16)}"/>')
        w('        <field name="state">sale</field>')
        w(
            '        <field name="order_line" eval="[(0, 0, {'
            f"'product_id': ref('product_winback_demo'), 'product_uom_qty': {qty}, "
            f"'price_unit': {price}, 'tax_id': [(5,)]"
            '})]"/>'
        )
        w("    </record>")
        last_days = conv_days
    w(f'    <record id="{pid}" model="res.partner">')
    w(f'        <field name="winback_last_order_date" eval="{day(last_days)}"/>')
    if state != "converted":
        w(f'        <field name="winback_segment_id" ref="segment_{seg}"/>')
    if state == "dormant":
        w('        <field name="winback_dormant" eval="True"/>')
    w("    </record>")
    # Messages by state: (step index, outbound state) list, plus an inbound reply.
    plan, inbound = [], None
    if not holdout:
        plan = {
            "running": [(0, rng.choice(["sent", "delivered", "read"]))],
            "replied": [(0, "read")],
            "converted": [(0, rng.choice(["delivered", "read"]))],
            "opted_out": [(0, "delivered")],
            "dormant": [(0, "read"), (1, rng.choice(["delivered", "read"]))],
            "failed": [(0, "failed")],
            "cancelled": [(0, "cancelled")],
        }[state]
        if state == "running" and rng.random() < 0.4:
            plan.append((1, "queued"))
        if state == "replied":
            inbound = rng.choice(
                [
                    "Sì grazie, mandami le foto!",
                    "Posso passare sabato?",
                    "Grazie, passo la prossima settimana",
                    "Che orari avete liberi?",
                ]
            )
        if state == "opted_out":
            inbound = "STOP"
    w(f'    <record id="{eid}" model="winback.enrollment">')
    w(f'        <field name="partner_id" ref="{pid}"/>')
    w(f'        <field name="campaign_id" ref="{seq}"/>')
    w(f'        <field name="segment_id" ref="segment_{seg}"/>')
    w(f'        <field name="state">{state}</field>')
    w(f'        <field name="is_holdout" eval="{holdout}"/>')
    w(f'        <field name="phone_e164">{escape(number)}</field>')
    sent_steps = [s for s, st in plan if st not in ("queued", "failed", "cancelled")]
    if sent_steps:
        w(
            f'        <field name="last_sent_at" eval="{ts(enrolled_days - 4 * max(sent_steps), 10)}"/>'
        )
    if state == "running":
        nxt = 1 if sent_steps == [0] else None
        if nxt is not None:
            w(f'        <field name="step_id" ref="{steps[nxt]}"/>')
            # As the queue cron leaves it: a step whose message is already
            # queued has no next send time (queuing it again would be a
            # second message for the same step).
            if (nxt, "queued") not in plan:
                w(
                    f'        <field name="next_send_at" eval="{ts(enrolled_days - 4, 10)}"/>'
                )
    if state in ("replied", "converted", "opted_out", "dormant"):
        w(
            f'        <field name="outcome_date" eval="{ts(max(enrolled_days - 2, 0), 15)}"/>'
        )
    if state == "converted":
        w(f'        <field name="order_id" ref="order_{order_no:04d}"/>')
        w(f'        <field name="revenue" eval="{revenue}"/>')
    w("    </record>")
    for step, mstate in plan:
        sent_days = enrolled_days - 4 * step
        w(f'    <record id="message_{i:03d}_{step + 1}" model="winback.message">')
        w('        <field name="direction">outbound</field>')
        w(f'        <field name="enrollment_id" ref="{eid}"/>')
        w(f'        <field name="step_id" ref="{steps[step]}"/>')
        w(f'        <field name="partner_id" ref="{pid}"/>')
        w('        <field name="account_id" ref="account_simulator"/>')
        w('        <field name="company_id" ref="base.main_company"/>')
        w(f'        <field name="phone_e164">{escape(number)}</field>')
        w(f'        <field name="state">{mstate}</field>')
        w(f'        <field name="scheduled_at" eval="{ts(sent_days, 9)}"/>')
        if mstate not in ("queued", "cancelled", "failed"):
            w(f'        <field name="wamid">wamid.demo.{i:03d}.{step + 1}</field>')
            w(f'        <field name="sent_at" eval="{ts(sent_days, 10)}"/>')
        if mstate in ("delivered", "read"):
            w(f'        <field name="delivered_at" eval="{ts(sent_days, 10)}"/>')
        if mstate == "read":
            w(f'        <field name="read_at" eval="{ts(sent_days, 12)}"/>')
        if mstate == "failed":
            w('        <field name="error_code">131026</field>')
            w(
                '        <field name="error_message">Message undeliverable: the number is not on WhatsApp.</field>'
            )
            w(f'        <field name="failed_at" eval="{ts(sent_days, 10)}"/>')
        w("    </record>")
    if inbound:
        w(f'    <record id="message_{i:03d}_in" model="winback.message">')
        w('        <field name="direction">inbound</field>')
        w(f'        <field name="enrollment_id" ref="{eid}"/>')
        w(f'        <field name="partner_id" ref="{pid}"/>')
        w('        <field name="account_id" ref="account_simulator"/>')
        w('        <field name="company_id" ref="base.main_company"/>')
        w(f'        <field name="phone_e164">{escape(number)}</field>')
        w(f'        <field name="body">{escape(inbound)}</field>')
        w('        <field name="state">received</field>')
        w(
            f'        <field name="received_at" eval="{ts(max(enrolled_days - 2, 0), 15)}"/>'
        )
        w("    </record>")
w("</odoo>")
OUT.write_text("\n".join(out) + "\n")
print(f"wrote {OUT} ({order_no} orders)")
