"""Helpers for batch crons."""

import logging
import threading

from psycopg2 import errors as pg_errors

from odoo.tools import config

_logger = logging.getLogger(__name__)


def in_test_mode():
    """Whether this runs inside a test (Odoo's runner or pytest-odoo)."""
    return bool(
        config["test_enable"] or getattr(threading.current_thread(), "testing", False)
    )


def commit_batch(cr):
    """Commit the batch a cron just finished, so a crash or a timeout resumes
    from there instead of starting over. Tests run in one transaction that is
    rolled back at the end: they never commit."""
    if not in_test_mode():
        cr.commit()  # pylint: disable=invalid-commit


def retry_serialization_failure(cr, function, attempts, what):
    """``function()``, run again on a fresh snapshot (after a rollback of
    this transaction) when a concurrent transaction changed the same rows:
    Odoo's transactions are repeatable-read, so PostgreSQL refuses the later
    writer with a serialization failure. Raises after ``attempts`` tries."""
    for attempt in range(1, attempts + 1):
        try:
            return function()
        except pg_errors.SerializationFailure:
            if attempt == attempts:
                raise
            _logger.info("%s: concurrent update, retrying", what)
            cr.rollback()
