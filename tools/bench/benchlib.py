"""Shared helpers of the benchmark scripts (run by tools/bench/run.sh)."""

import argparse
import contextlib
import resource
import time
from urllib.parse import urlsplit

import odoo
from odoo import SUPERUSER_ID, api


def parser(description):
    args = argparse.ArgumentParser(description=description)
    args.add_argument("--config", required=True, help="Odoo configuration file")
    args.add_argument("--database", required=True, help="scratch database")
    return args


def registry(options):
    odoo.tools.config.parse_config(
        ["-c", options.config, "-d", options.database, "--log-level=warn"]
    )
    return odoo.modules.registry.Registry(options.database)


@contextlib.contextmanager
def environment(reg):
    """A superuser environment in its own transaction, committed at the end."""
    with reg.cursor() as cr:
        yield api.Environment(cr, SUPERUSER_ID, {})


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def rss_mb():
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name, **figures):
    def fmt(value):
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    print(f"bench {name} " + " ".join(f"{k}={fmt(v)}" for k, v in figures.items()))


def whatsapp_audience(env, n, base_url, token, phone_number_id):
    """A Meta account pointed at ``base_url``, a running two-step campaign on
    the Cold segment, and ``n`` consenting customers in it, generated in SQL.
    Returns the campaign."""
    cold = env.ref("winback_whatsapp.segment_cold")
    # The local stub is not Meta's Graph API: list its host, as a system
    # administrator would for staging.
    env["ir.config_parameter"].set_param(
        "winback_whatsapp.api_host_allowlist", urlsplit(base_url).netloc
    )
    account = env["winback.account"].create(
        {
            "name": "Bench",
            "provider": "meta",
            "api_base_url": base_url,
            "phone_number_id": phone_number_id,
            "access_token": token,
            "messages_per_second": 0,
            "daily_recipient_limit": 0,
        }
    )
    template = env["winback.template"].create(
        {
            "name": "winback_bench",
            "language": "it",
            "account_id": account.id,
            "status": "approved",
            "body": "Ciao {{1}}, ci manchi!",
            "param_ids": [(0, 0, {"position": 1, "source": "first_name"})],
        }
    )
    campaign = env["winback.campaign"].create(
        {
            "name": "Bench",
            "account_id": account.id,
            "segment_ids": [(6, 0, cold.ids)],
            "holdout_percent": 0,
            "daily_cap": 0,
            "window_start": 0,
            "window_end": 24,
            "window_sunday": True,
            "step_ids": [
                (0, 0, {"name": "One", "template_id": template.id, "delay_days": 0}),
                (0, 0, {"name": "Two", "template_id": template.id, "delay_days": 3}),
            ],
        }
    )
    generate_customers(env, n, cold)
    campaign.action_start()
    return campaign


def generate_customers(env, n, segment):
    """``n`` consenting customers with an E.164 mobile, in ``segment``."""
    env.cr.execute(
        """
        WITH ids AS (
            SELECT nextval('res_partner_id_seq') AS id, g
              FROM generate_series(1, %(n)s) g
        )
        INSERT INTO res_partner (id, name, complete_name, commercial_partner_id,
                                 active, type, autopost_bills, is_company, mobile,
                                 phone_sanitized, winback_consent_date,
                                 winback_consent_source, winback_last_order_date,
                                 winback_segment_id, create_date, write_date)
        SELECT id, 'Bench ' || g, 'Bench ' || g, id, true, 'contact', 'ask', false,
               '+39 3' || lpad(g::text, 9, '0'), '+393' || lpad(g::text, 9, '0'),
               now(), 'bench', jsonb_build_object(%(key)s, current_date - 200),
               jsonb_build_object(%(key)s, %(segment)s), now(), now()
          FROM ids
        """,
        {"n": n, "key": str(segment.company_id.id), "segment": segment.id},
    )
    env.invalidate_all()
