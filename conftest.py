"""pytest configuration for the addon's tests (run under pytest-odoo).

A skipped test counts as a missing one: the run fails if any test was skipped.
"""


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped and exitstatus == 0:
        reporter.write_line(
            f"{len(skipped)} test(s) skipped: a skipped test counts as missing",
            red=True,
        )
        session.exitstatus = 1
