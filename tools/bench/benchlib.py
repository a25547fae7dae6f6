"""Shared helpers of the benchmark scripts (run by tools/bench/run.sh)."""

import argparse
import contextlib
import resource
import time

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
