"""``sla-daemon report``: the period from the command line, the report, one format out."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sla_daemon.clock import SystemClock
from sla_daemon.config import Config
from sla_daemon.errors import ConfigError

DEFAULT_DAYS = 30
"""Without ``--since``: the period starts this many days before ``--until``."""


def parse_moment(option: str, text: str, zone: ZoneInfo) -> datetime:
    """A date (its midnight) or an ISO 8601 time; without an offset, in ``zone``."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=zone)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            [
                f"{option}: expected a date like 2026-11-01 or a time like 2026-11-01T09:30, "
                f"got {text!r}"
            ]
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=zone)


def run_report(config: Config, since: str | None, until: str | None, output: str) -> int:
    """Print the report of ``[since, until)`` in ``output`` format; 0, or 1 before any run."""
    from sla_daemon.app_queries import period_report
    from sla_daemon.report_html import report_html
    from sla_daemon.report_view import report_csv, report_json, report_text

    zone = ZoneInfo(config.timezone)
    now = SystemClock().now()
    end = now if until is None else parse_moment("--until", until, zone)
    start = (
        end - timedelta(days=DEFAULT_DAYS)
        if since is None
        else parse_moment("--since", since, zone)
    )
    if start >= end:
        raise ConfigError(
            [f"--since ({start.isoformat()}) must be before --until ({end.isoformat()})"]
        )
    report = period_report(config, start, end, now)
    if report is None:
        print(
            f"no state yet in {config.state_dir}: run `sla-daemon run --once` first",
            file=sys.stderr,
        )
        return 1
    if output == "json":
        sys.stdout.write(report_json(report) + "\n")
    elif output == "csv":
        sys.stdout.write(report_csv(report))
    elif output == "html":
        sys.stdout.write(report_html(report, zone))
    else:
        sys.stdout.write(report_text(report, zone) + "\n")
    return 0
