"""Helpers for batch crons."""

import logging

from psycopg2 import errors as pg_errors

_logger = logging.getLogger(__name__)


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
