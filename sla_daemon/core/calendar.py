"""Calendar arithmetic: when a duration counted from an instant ends.

Every SLA duration is counted on a calendar: the round-the-clock ``24x7`` calendar, or a
``BusinessCalendar`` of working hours in a time zone with holidays and half-days. Both
implement the same protocol. docs/sla.md ("Calendars") states the rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Protocol
from zoneinfo import ZoneInfo


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


ALWAYS_OPEN = AlwaysOpen()
"""The one ``24x7`` calendar (it holds nothing, so every policy can share it)."""


def calendar_named(name: str, calendars: Mapping[str, Calendar] | None = None) -> Calendar:
    """Return the calendar a policy names: ``24x7`` (always there) or one of ``calendars``."""
    if name == "24x7":
        return ALWAYS_OPEN
    if calendars is not None and name in calendars:
        return calendars[name]
    raise KeyError(name)


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Weekday names as the configuration writes them; index 0 is Monday, as in ``date.weekday()``."""

MINUTES_PER_DAY = 24 * 60

Range = tuple[int, int]
"""Working hours within one day: (start, end) in minutes after local midnight, end <= 1440."""

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_range(text: str) -> Range:
    """Read ``"09:00-12:30"`` as minutes after midnight.

    An end of ``24:00`` or ``00:00`` is the midnight that ends the day.
    Raises ``ValueError`` with a message a person can act on.
    """
    match = _RANGE.match(text)
    if match is None:
        raise ValueError(f"expected a range like 09:00-17:00, got {text!r}")
    start_h, start_m, end_h, end_m = (int(part) for part in match.groups())
    if start_h > 23 or start_m > 59 or end_m > 59 or end_h > 24 or (end_h == 24 and end_m):
        raise ValueError(f"expected times from 00:00 to 24:00, got {text!r}")
    start = start_h * 60 + start_m
    end = end_h * 60 + end_m or MINUTES_PER_DAY
    if end <= start:
        raise ValueError(f"the range ends before it starts: {text!r}")
    return start, end


def parse_weekdays(key: str) -> tuple[int, ...]:
    """Read ``"fri"`` or ``"mon-thu"`` as weekday numbers (Monday is 0).

    Raises ``ValueError`` for an unknown name or a span written backwards.
    """
    names = [part.strip().lower() for part in key.split("-")]
    unknown = [name for name in names if name not in WEEKDAYS]
    if unknown or len(names) > 2:
        raise ValueError(f"expected a weekday or a span like mon-fri ({', '.join(WEEKDAYS)})")
    first, last = WEEKDAYS.index(names[0]), WEEKDAYS.index(names[-1])
    if last < first:
        raise ValueError(f"write the span from the earlier day, mon to sun: {key!r}")
    return tuple(range(first, last + 1))


def check_ranges(ranges: Sequence[Range]) -> tuple[Range, ...]:
    """Sort one day's ranges; raise ``ValueError`` when two of them overlap (touching is fine)."""
    ordered = tuple(sorted(ranges))
    for (start_a, end_a), (start_b, end_b) in pairwise(ordered):
        if start_b < end_a:
            raise ValueError(
                f"ranges {_show((start_a, end_a))} and {_show((start_b, end_b))} overlap"
            )
    return ordered


def _show(hours: Range) -> str:
    start, end = hours
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


class BusinessCalendar:
    """Business hours in one IANA time zone, with holidays and half-days.

    * ``weekly`` gives, per weekday (Monday first, seven entries), the day's working
      ranges in local wall-clock time. A range may end at midnight (1440).
    * ``holidays`` are local dates without working time.
    * ``half_days`` give a local date its own ranges instead of its weekday's; they win
      over a holiday on the same date and may open a weekend day.

    Durations count real elapsed time inside the working ranges, so a range across a
    daylight-saving change is an hour shorter or longer, and a deadline lands on the
    right wall-clock minute on either side of the change. A wall-clock time that does not
    exist (in the hour skipped in spring) counts from the moment the clocks jump; one that
    exists twice (autumn) means its first occurrence. Arithmetic is exact to the
    microsecond; results keep the time zone of the start.
    """

    def __init__(
        self,
        name: str,
        timezone: str,
        weekly: Sequence[Sequence[Range]],
        holidays: Iterable[date] = (),
        half_days: Mapping[date, Sequence[Range]] | None = None,
    ) -> None:
        if len(weekly) != 7:
            raise ValueError("weekly needs seven entries, Monday first")
        self.name = name
        self.timezone = timezone
        self.zone = ZoneInfo(timezone)
        self.weekly = tuple(check_ranges(day) for day in weekly)
        if not any(self.weekly):
            raise ValueError(f"calendar {name!r} has no working hours in the week")
        self.holidays = frozenset(holidays)
        self.half_days = {day: check_ranges(hours) for day, hours in (half_days or {}).items()}
        self._intervals: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    def __repr__(self) -> str:
        return f"BusinessCalendar({self.name!r}, {self.timezone!r})"

    def ranges_on(self, day: date) -> tuple[Range, ...]:
        """The working ranges of local date ``day``.

        Its half-day's ranges if it is one, none on a holiday, else its weekday's.
        """
        if day in self.half_days:
            return self.half_days[day]
        if day in self.holidays:
            return ()
        return self.weekly[day.weekday()]

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The instant ``duration`` of working time after ``start`` (before it, if negative).

        A positive duration ends inside a working range or exactly at its end; zero
        returns ``start`` unchanged.
        """
        origin = _utc(start)
        remaining = duration
        if remaining > timedelta(0):
            day = origin.astimezone(self.zone).date() - _ONE_DAY
            while True:
                for begin, end in self._working(day):
                    if end <= origin:
                        continue
                    begin = max(begin, origin)
                    if remaining <= end - begin:
                        return (begin + remaining).astimezone(start.tzinfo)
                    remaining -= end - begin
                day += _ONE_DAY
        if remaining < timedelta(0):
            day = origin.astimezone(self.zone).date() + _ONE_DAY
            while True:
                for begin, end in reversed(self._working(day)):
                    if begin >= origin:
                        continue
                    end = min(end, origin)
                    if -remaining <= end - begin:
                        return (end + remaining).astimezone(start.tzinfo)
                    remaining += end - begin
                day -= _ONE_DAY
        return start

    def elapsed(self, start: datetime, end: datetime) -> timedelta:
        """The working time between ``start`` and ``end`` (negative if ``end`` is earlier)."""
        first, last = _utc(start), _utc(end)
        if last < first:
            return -self.elapsed(end, start)
        total = timedelta(0)
        day = first.astimezone(self.zone).date() - _ONE_DAY
        stop = last.astimezone(self.zone).date() + _ONE_DAY
        while day <= stop:
            for begin, finish in self._working(day):
                overlap = min(finish, last) - max(begin, first)
                if overlap > timedelta(0):
                    total += overlap
            day += _ONE_DAY
        return total

    def _working(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working ranges of local date ``day`` as UTC instants, in order, not overlapping."""
        cached = self._intervals.get(day)
        if cached is not None:
            return cached
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        found: list[tuple[datetime, datetime]] = []
        for start, end in self.ranges_on(day):
            begin = _wall(midnight, start)
            finish = _wall(midnight, end)
            if found:
                begin = max(begin, found[-1][1])
            if finish > begin:
                found.append((begin, finish))
        intervals = tuple(found)
        self._intervals[day] = intervals
        return intervals


_ONE_DAY = timedelta(days=1)


def _wall(midnight: datetime, minutes: int) -> datetime:
    """The UTC instant of wall-clock ``minutes`` after local ``midnight``.

    1440 minutes is the next midnight.
    """
    if minutes >= MINUTES_PER_DAY:
        following = midnight.date() + _ONE_DAY
        local = midnight.replace(year=following.year, month=following.month, day=following.day)
    else:
        local = midnight.replace(hour=minutes // 60, minute=minutes % 60)
    instant = local.astimezone(UTC)
    wall = local.replace(tzinfo=None)
    if instant.astimezone(local.tzinfo).replace(tzinfo=None) == wall:
        return instant
    # The clocks skip this wall time: find the moment they jump past it.
    low = local.replace(fold=1).astimezone(UTC)
    high = local.replace(fold=0).astimezone(UTC)
    low, high = min(low, high), max(low, high)
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(local.tzinfo).replace(tzinfo=None) >= wall:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is UTC:  # the common case (stored times are UTC): nothing to convert
        return moment
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"a calendar needs a time with a time zone, got {moment.isoformat()}")
    return moment.astimezone(UTC)
