"""Who of a campaign's segments may enter it today, and why the others may
not: one SQL query, built here as a pure function (no ORM), run by the
enrollment engine (``winback.enroller``) to count and to enroll."""

from odoo.tools import SQL, LazyTranslate

from .wa_number import US_NUMBER_PATTERN

_lt = LazyTranslate(__name__)

# Why a customer of the campaign's segments is not enrolled, in the order the
# checks apply (like the SMS composer's cancel codes). The labels are
# translated where they are shown (``env._(label)``).
INELIGIBLE_REASONS = [
    ("other_company", _lt("Belongs to another company")),
    ("no_consent", _lt("No WhatsApp marketing consent")),
    ("invalid_number", _lt("No valid mobile or phone number")),
    (
        "us_number",
        _lt("United States number: Meta delivers no marketing message to it"),
    ),
    ("blacklisted", _lt("Number blacklisted (STOP)")),
    ("dormant", _lt("Dormant")),
    ("snoozed", _lt("Said not now: snoozed")),
    ("already_enrolled", _lt("Already in a running win-back")),
    ("cooldown", _lt("Contacted by a win-back recently")),
    ("reentry", _lt("Enrolled in this campaign recently")),
]


def eligibility_sql(
    *,
    company_id,
    segment_ids,
    campaign_id,
    live_states,
    cooldown_since,
    reentry_since,
    now,
):
    """One row per active customer of ``segment_ids`` (in company
    ``company_id``): (partner id, segment id, E.164 number, last purchase
    date, reason), reason ``'eligible'`` or an INELIGIBLE_REASONS code.

    ``live_states``: the enrollment states that keep a customer in a running
    win-back; ``cooldown_since``: a win-back message sent after it keeps the
    customer out; ``reentry_since``: an enrollment in ``campaign_id`` created
    after it keeps the customer out; ``now``: a customer who answered *Not
    now* stays out until their enrollment's ``snoozed_until`` has passed
    (naive UTC datetimes). The snooze replaces the cooldown and the re-entry
    delay for the enrollment snoozed: once it is over, its messages and its
    entry keep the customer out no longer.

    The blacklist is read with an EXISTS on ``phone_blacklist`` rather than
    through ``mail.thread.phone``'s ``phone_sanitized_blacklisted``: the field
    is not stored, and this query runs on up to a million customers in one
    statement (its search would build the same sub-query).

    A United States number (``us_number``) is left out: Meta delivers no
    marketing template message to +1 numbers with a US area code (since
    April 2025, `Per-user marketing template message limits` in Meta's Cloud
    API guide to sending message templates); Canadian and Caribbean +1
    numbers are not concerned (``tools/wa_number.py``)."""
    return SQL(
        """
        SELECT p.id, (p.winback_segment_id ->> %(key)s)::int AS segment_id,
               p.phone_sanitized,
               (p.winback_last_order_date ->> %(key)s)::date AS last_date,
               CASE
               WHEN p.company_id IS NOT NULL AND p.company_id <> %(company)s
                    THEN 'other_company'
               WHEN p.winback_consent_date IS NULL
                    OR COALESCE(p.winback_consent_source, '') = ''
                    THEN 'no_consent'
               WHEN p.phone_sanitized IS NULL AND p.whatsapp_bsuid IS NULL
                    THEN 'invalid_number'
               WHEN left(p.phone_sanitized, 2) = '+1'
                    AND p.phone_sanitized ~ %(us)s
                    THEN 'us_number'
               WHEN EXISTS (SELECT 1 FROM phone_blacklist bl
                             WHERE bl.number = p.phone_sanitized AND bl.active)
                    THEN 'blacklisted'
               WHEN EXISTS (SELECT 1 FROM winback_bsuid_optout o
                             WHERE o.bsuid = p.whatsapp_bsuid AND o.active)
                    THEN 'blacklisted'
               WHEN p.winback_dormant THEN 'dormant'
               WHEN EXISTS (SELECT 1 FROM winback_enrollment e
                             WHERE e.partner_id = p.id
                               AND e.snoozed_until > %(now)s)
                    THEN 'snoozed'
               WHEN EXISTS (SELECT 1 FROM winback_enrollment e
                             WHERE e.partner_id = p.id
                               AND e.state IN %(live)s)
                    THEN 'already_enrolled'
               WHEN EXISTS (SELECT 1 FROM winback_message m
                             WHERE m.partner_id = p.id
                               AND m.direction = 'outbound'
                               AND m.sent_at >= %(cooldown)s
                               AND NOT EXISTS (
                                   SELECT 1 FROM winback_enrollment s
                                    WHERE s.id = m.enrollment_id
                                      AND s.snoozed_until IS NOT NULL))
                    THEN 'cooldown'
               WHEN EXISTS (SELECT 1 FROM winback_enrollment e
                             WHERE e.partner_id = p.id
                               AND e.campaign_id = %(campaign)s
                               AND e.create_date >= %(reentry)s
                               AND e.snoozed_until IS NULL)
                    THEN 'reentry'
               ELSE 'eligible' END AS reason
          FROM res_partner p
         WHERE p.active
           AND (p.winback_segment_id ->> %(key)s)::int = ANY(%(segments)s)
        """,
        key=str(company_id),
        company=company_id,
        segments=list(segment_ids),
        campaign=campaign_id,
        live=tuple(live_states),
        cooldown=cooldown_since,
        reentry=reentry_since,
        now=now,
        us=US_NUMBER_PATTERN,
    )
