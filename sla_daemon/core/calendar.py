"""Calendar arithmetic: when a duration counted from an instant ends.

Every SLA duration is counted on a calendar. This version knows the round-the-clock
calendar; business-hours calendars implement the same protocol.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol


class Calendar(Protocol):
    """Counts durations in working time."""

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Return the instant ``duration`` of working time after ``start``."""
        ...

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Return the working time between ``start`` and ``end`` (negative if reversed)."""
        ...


class AlwaysOpen:
    """The ``24x7`` calendar: every minute counts."""

    name = "24x7"

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """Return ``start + duration``."""
        return start + duration

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """Return ``end - start``."""
        return end - start


def calendar_named(name: str) -> Calendar:
    """Return the calendar a policy names; ``24x7`` is the only built-in one."""
    if name == "24x7":
        return AlwaysOpen()
    raise KeyError(name)
