"""When the weekly report is due, and which seven days it covers.

Pure: the time, the schedule (a weekday and a wall-clock time in a time zone) and what
the outbox already decided come in. Rules (docs/operations.md, "The weekly report"):

- the report of a week is due at its scheduled instant (e.g. Monday 08:00 local) and
  covers the seven local days before it, ``[the previous instant, this instant)``;
- it is decided once: its outbox key names the ISO week of the instant's local date;
- only the latest scheduled instant at or before ``now`` can be due. A report whose next
  instant has already come (the daemon was down for the whole week) is never sent late:
  its week is *skipped*, and the caller logs that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from sla_daemon.core.briefing import briefing_instant

_ONE_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class WeeklySchedule:
    """When the weekly report goes out: ``weekday`` (Monday is 0) at ``at`` in ``zone``."""

    weekday: int
    at: time
    zone: tzinfo


@dataclass(frozen=True)
class ReportWeek:
    """One scheduled report: due at ``until``, covering ``[since, until)``."""

    day: date
    """The local date of the scheduled instant."""
    since: datetime
    until: datetime

    @property
    def key(self) -> str:
        """The outbox key: one per ISO week, e.g. ``weekly_report|2026-W48``."""
        return weekly_report_key(self.day)


def weekly_report_key(day: date) -> str:
    """The outbox key of the report scheduled on local date ``day``."""
    year, week, _ = day.isocalendar()
    return f"weekly_report|{year}-W{week:02d}"


def report_week(day: date, schedule: WeeklySchedule) -> ReportWeek:
    """The report scheduled on local date ``day``: seven local days back from its instant.

    Both ends are the same wall-clock time, so a week with a clock change is an hour
    shorter or longer than 168 hours.
    """
    until = briefing_instant(day, schedule.at, schedule.zone)
    since = briefing_instant(day - _ONE_WEEK, schedule.at, schedule.zone)
    return ReportWeek(day, since, until)


def latest_week(now: datetime, schedule: WeeklySchedule) -> ReportWeek:
    """The report whose scheduled instant is the latest at or before ``now``."""
    today = now.astimezone(schedule.zone).date()
    day = today - timedelta(days=(today.weekday() - schedule.weekday) % 7)
    week = report_week(day, schedule)
    return week if week.until <= now else report_week(day - _ONE_WEEK, schedule)


def next_report_at(now: datetime, schedule: WeeklySchedule) -> datetime:
    """The first scheduled instant after ``now``."""
    return report_week(latest_week(now, schedule).day + _ONE_WEEK, schedule).until


def weekly_report_due(
    now: datetime, schedule: WeeklySchedule, is_decided: Callable[[str], bool]
) -> ReportWeek | None:
    """The report due at ``now``, or None when the latest one was already decided."""
    week = latest_week(now, schedule)
    return None if is_decided(week.key) else week


def skipped_week(week: ReportWeek, schedule: WeeklySchedule) -> ReportWeek:
    """The report scheduled one week before ``week``: never sent once ``week`` is due."""
    return report_week(week.day - _ONE_WEEK, schedule)
