"""The ``calendars`` section: business hours, holidays and half-days per calendar.

Parsing the hours reuses the core's own range parser, so the configuration refuses
exactly what the calendar could not count with; country holidays are looked up in the
``holidays`` package here, outside the pure core.
"""

from __future__ import annotations

from datetime import date

import holidays

from sla_daemon.config_types import Section, TextKeyed, TimeZoneName
from sla_daemon.core.calendar import (
    WEEKDAYS,
    Range,
    check_ranges,
    parse_range,
    parse_weekdays,
)
from sla_daemon.yamlpos import KeyPath


class HolidaysConfig(Section):
    """Days without working time: a region's public holidays and further dates."""

    country: str | None = None  # ISO 3166 code (DE, US, GB): its public holidays count
    subdivision: str | None = None  # a region of that country (BY, CA, SCT); needs country
    dates: list[date] = []  # further closed dates, e.g. 2026-12-24


class CalendarConfig(Section):
    """Business hours that durations are counted on (docs/sla.md, "Calendars")."""

    timezone: TimeZoneName = "UTC"  # the hours are wall-clock times in this IANA zone
    # Weekday (mon..sun) or span (mon-thu) -> ranges "HH:MM-HH:MM"; days left out are closed.
    hours: TextKeyed = {"mon-fri": ["09:00-17:00"]}
    holidays: HolidaysConfig = HolidaysConfig()
    half_days: TextKeyed = {}  # a date -> its own ranges, e.g. 2026-12-31: ["09:00-12:00"]

    def parsed(
        self,
    ) -> tuple[list[list[Range]], dict[date, list[Range]], list[tuple[KeyPath, str]]]:
        """The weekly ranges (Monday first), the half-days, and the problems found.

        Each problem's key path is relative to this calendar.
        """
        problems: list[tuple[KeyPath, str]] = []
        weekly: list[list[Range]] = [[] for _ in range(7)]
        given_by: dict[int, str] = {}
        for key, texts in self.hours.items():
            try:
                days = parse_weekdays(key)
            except ValueError as exc:
                problems.append((("hours", key), str(exc)))
                continue
            for day in days:
                if day in given_by:
                    problems.append((("hours", key), f"{WEEKDAYS[day]} is also in {given_by[day]}"))
                given_by.setdefault(day, key)
            ranges = _ranges(texts, ("hours", key), problems)
            for day in days:
                try:
                    check_ranges([*weekly[day], *ranges])
                except ValueError as exc:
                    problems.append((("hours", key), f"{WEEKDAYS[day]}: {exc}"))
                    continue
                weekly[day] += ranges
        if not problems and not any(weekly):
            problems.append((("hours",), "no working hours in the week"))
        half_days: dict[date, list[Range]] = {}
        for key, texts in self.half_days.items():
            try:
                when = date.fromisoformat(key)
            except ValueError:
                problems.append(
                    (("half_days", key), f"expected a date like 2026-12-31, got {key!r}")
                )
                continue
            ranges = _ranges(texts, ("half_days", key), problems)
            try:
                half_days[when] = list(check_ranges(ranges))
            except ValueError as exc:
                problems.append((("half_days", key), str(exc)))
        return weekly, half_days, problems

    def holiday_region(self) -> tuple[str | None, str | None, list[tuple[KeyPath, str]]]:
        """The country and subdivision as the holidays package spells them, and problems."""
        country, subdivision = self.holidays.country, self.holidays.subdivision
        if country is None:
            if subdivision is None:
                return None, None, []
            return None, None, [(("holidays", "subdivision"), "a subdivision needs a country")]
        supported = holidays.list_supported_countries()
        code = country.upper()
        if code not in supported:
            return None, None, [(("holidays", "country"), f"unknown country code {country!r}")]
        if subdivision is None:
            return code, None, []
        known = {name.lower(): name for name in supported[code]}
        if subdivision.lower() not in known:
            listed = ", ".join(supported[code]) or "none"
            return (
                code,
                None,
                [
                    (
                        ("holidays", "subdivision"),
                        f"{code} has no subdivision {subdivision!r} ({listed})",
                    )
                ],
            )
        return code, known[subdivision.lower()], []


def _ranges(texts: list[str], where: KeyPath, problems: list[tuple[KeyPath, str]]) -> list[Range]:
    """Parse a list of "HH:MM-HH:MM" ranges, adding a problem per bad one."""
    ranges: list[Range] = []
    for index, text in enumerate(texts):
        try:
            ranges.append(parse_range(text))
        except ValueError as exc:
            problems.append(((*where, index), str(exc)))
    return ranges
