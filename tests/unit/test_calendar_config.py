"""The ``calendars`` section: defaults, and errors that name file, line and key."""

from __future__ import annotations

import pytest

from sla_daemon.config import parse_config
from sla_daemon.errors import ConfigError

BASE = """\
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - {name: support, path: /tmp/maildir}
smtp: {host: localhost, security: none}
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + text, "config.yaml")
    return caught.value.problems


def test_calendar_defaults() -> None:
    """An empty calendar is Mon-Fri 09:00-17:00 in UTC without holidays."""
    config = parse_config(BASE + "calendars: {office: {}}\n", "config.yaml")
    office = config.calendars["office"]
    assert office.timezone == "UTC" and office.hours == {"mon-fri": ["09:00-17:00"]}
    assert office.holidays.country is None and office.half_days == {}


def test_bad_range_names_line_and_key() -> None:
    """A range like 9-17 is refused with the line and the key path of the range."""
    problems = _problems('calendars:\n  office:\n    hours:\n      mon-fri: ["9-17"]\n')
    assert problems == [
        "config.yaml:10: calendars.office.hours.mon-fri[0]: "
        "expected a range like 09:00-17:00, got '9-17'"
    ]


def test_unknown_weekday_is_refused() -> None:
    """A weekday key that is not mon..sun names the key."""
    [problem] = _problems('calendars:\n  office:\n    hours:\n      mon-fry: ["09:00-17:00"]\n')
    assert problem.startswith("config.yaml:10: calendars.office.hours.mon-fry: expected a weekday")


def test_overlapping_ranges_are_refused() -> None:
    """Two ranges of one weekday that overlap, also from two keys, are refused."""
    problems = _problems(
        "calendars:\n  office:\n    hours:\n"
        '      mon-fri: ["09:00-12:30", "12:00-18:00"]\n'
        '      sat: ["09:00-12:00"]\n'
    )
    assert problems[0].startswith("config.yaml:10: calendars.office.hours.mon-fri: mon: ranges")
    assert "overlap" in problems[0]
    [twice] = _problems(
        "calendars:\n  office:\n    hours:\n"
        '      mon-fri: ["09:00-17:00"]\n'
        '      fri: ["18:00-19:00"]\n'
    )
    assert twice == "config.yaml:11: calendars.office.hours.fri: fri is also in mon-fri"


def test_unknown_country_and_subdivision_are_refused() -> None:
    """An unknown country code, or a subdivision the country does not have, names its line."""
    [country] = _problems("calendars:\n  office:\n    holidays: {country: XX}\n")
    assert country == "config.yaml:9: calendars.office.holidays.country: unknown country code 'XX'"
    [subdivision] = _problems(
        "calendars:\n  office:\n    holidays:\n      country: DE\n      subdivision: QQ\n"
    )
    assert subdivision.startswith(
        "config.yaml:11: calendars.office.holidays.subdivision: DE has no subdivision 'QQ'"
    )


def test_bad_half_day_date_and_range() -> None:
    """A half-day key must be a date and its ranges valid."""
    problems = _problems(
        'calendars:\n  office:\n    half_days:\n      new-years-eve: ["09:00-12:00"]\n'
        '      2026-12-31: ["12:00-09:00"]\n'
    )
    assert problems == [
        "config.yaml:10: calendars.office.half_days.new-years-eve: "
        "expected a date like 2026-12-31, got 'new-years-eve'",
        "config.yaml:11: calendars.office.half_days.2026-12-31[0]: "
        "the range ends before it starts: '12:00-09:00'",
    ]


def test_policy_naming_an_unknown_calendar_is_refused() -> None:
    """A policy's calendar must be 24x7 or a key of calendars."""
    [problem] = _problems("calendars:\n  office: {}\npolicies:\n  standard:\n    calendar: ofice\n")
    assert problem == (
        "config.yaml:11: policies.standard.calendar: "
        "no calendar named 'ofice' (defined: 24x7, office)"
    )


def test_invalid_time_zone_is_refused() -> None:
    """The calendar's time zone must be an IANA name."""
    [problem] = _problems("calendars:\n  office: {timezone: Mars/Olympus}\n")
    assert problem.startswith("config.yaml:8: calendars.office.timezone: expected an IANA")
