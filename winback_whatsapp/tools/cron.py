"""Helpers for batch crons."""

import threading

from odoo.tools import config


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
