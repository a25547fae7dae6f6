"""Benchmark of the enrollment (winback.enroller._enroll): N eligible
customers generated in SQL, enrolled in one call, against a naive ORM loop on
a sample, extrapolated."""

from benchlib import (
    environment,
    parser,
    registry,
    report,
    timed,
    whatsapp_audience,
)

from odoo import fields


def naive_enroll(env, campaign, partners):
    """Customer by customer, through the ORM, what a straightforward
    implementation would check and create."""
    Enrollment = env["winback.enrollment"]
    for partner in partners:
        if not (partner.winback_consent_date and partner.winback_consent_source):
            continue
        if not partner.phone_sanitized or partner.phone_sanitized_blacklisted:
            continue
        if partner.winback_dormant:
            continue
        if Enrollment.search_count(
            [("partner_id", "=", partner.id), ("state", "in", ("running", "holdout"))]
        ):
            continue
        Enrollment.create(
            {
                "partner_id": partner.id,
                "campaign_id": campaign.id,
                "segment_id": partner.winback_segment_id.id,
                "phone_e164": partner.phone_sanitized,
                "step_id": campaign.step_ids[0].id,
                "next_send_at": fields.Datetime.now(),
            }
        )
    env.flush_all()


def main():
    args = parser(__doc__)
    args.add_argument("--partners", type=int, default=100_000)
    args.add_argument("--sample", type=int, default=2_000)
    options = args.parse_args()
    reg = registry(options)
    with environment(reg) as env:
        campaign = whatsapp_audience(
            env, options.partners, "http://127.0.0.1:9", "x", "1"
        )
        campaign_id = campaign.id
    with environment(reg) as env:
        campaign = env["winback.campaign"].browse(campaign_id)
        partners = env["res.partner"].search(
            [("winback_consent_source", "=", "bench")], limit=options.sample
        )
        naive_s, _ = timed(naive_enroll, env, campaign, partners)
        env.cr.rollback()
    with environment(reg) as env:
        campaign = env["winback.campaign"].browse(campaign_id)
        addon_s, enrolled = timed(env["winback.enroller"]._enroll, campaign)
    naive_est = naive_s * options.partners / options.sample
    report(
        "enroll",
        partners=options.partners,
        enrolled=enrolled,
        s=addon_s,
        naive_est_s=naive_est,
        speedup=naive_est / addon_s,
    )


if __name__ == "__main__":
    main()
