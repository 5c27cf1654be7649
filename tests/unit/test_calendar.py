"""Business calendars: working hours in a time zone, holidays, half-days, and the engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_daemon.config import parse_config
from sla_daemon.core.calendar import AlwaysOpen, BusinessCalendar, Range, parse_range
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import ClockPolicy
from sla_daemon.rules_from_config import build_rules
from tests.unit.builders import NOW, client_mail, rules_on_calendar, team_reply

BERLIN = ZoneInfo("Europe/Berlin")


def week(**days: list[str]) -> list[list[Range]]:
    """Weekly ranges from keyword days: ``week(mon=["09:00-18:00"], ...)``."""
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    return [[parse_range(text) for text in days.get(name, [])] for name in names]


OFFICE_HOURS = ["09:00-18:00"]
OFFICE = BusinessCalendar(
    "office",
    "Europe/Berlin",
    week(**{day: OFFICE_HOURS for day in ("mon", "tue", "wed", "thu", "fri")}),
)


def berlin(*args: int) -> datetime:
    """A Berlin wall-clock time."""
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def test_friday_evening_mail_with_4h_is_due_monday_1230() -> None:
    """Mon-Fri 09:00-18:00: a mail on Friday 17:30 with within 4h is due Monday 12:30."""
    friday = berlin(2026, 11, 27, 17, 30)
    assert OFFICE.add(friday, timedelta(hours=4)) == berlin(2026, 11, 30, 12, 30)
    assert OFFICE.elapsed(friday, berlin(2026, 11, 30, 12, 30)) == timedelta(hours=4)


def test_result_keeps_the_start_time_zone_and_seconds_count() -> None:
    """A UTC start gives a UTC result; seconds and microseconds are counted exactly."""
    start = datetime(2026, 11, 27, 16, 59, 30, tzinfo=UTC)  # Friday 17:59:30 in Berlin
    due = OFFICE.add(start, timedelta(minutes=1, microseconds=5))
    assert due == datetime(2026, 11, 30, 8, 0, 30, 5, tzinfo=UTC)
    assert due.tzinfo is UTC


def test_start_outside_hours_counts_from_the_next_opening() -> None:
    """A mail on Saturday counts from Monday 09:00; the weekend adds no time."""
    saturday = berlin(2026, 11, 28, 10, 0)
    assert OFFICE.add(saturday, timedelta(hours=1)) == berlin(2026, 11, 30, 10, 0)
    assert OFFICE.elapsed(saturday, berlin(2026, 11, 30, 9, 0)) == timedelta(0)


def test_deadline_across_the_march_change_lands_on_the_right_wall_clock_minute() -> None:
    """Berlin moves to summer time on 29 March 2026: Friday 17:00 + 4h is Monday 12:00 CEST."""
    due = OFFICE.add(berlin(2026, 3, 27, 17, 0), timedelta(hours=4))
    assert due == berlin(2026, 3, 30, 12, 0)
    assert due.astimezone(UTC) == datetime(2026, 3, 30, 10, 0, tzinfo=UTC)


def test_deadline_across_the_october_change_lands_on_the_right_wall_clock_minute() -> None:
    """Berlin returns to standard time on 25 October 2026: Friday 17:00 + 4h is Monday 12:00 CET."""
    due = OFFICE.add(berlin(2026, 10, 23, 17, 0), timedelta(hours=4))
    assert due == berlin(2026, 10, 26, 12, 0)
    assert due.astimezone(UTC) == datetime(2026, 10, 26, 11, 0, tzinfo=UTC)


def test_a_whole_day_on_the_change_is_23_or_25_hours() -> None:
    """00:00-24:00 counts real time: the March Sunday has 23 hours, the October one 25."""
    always = BusinessCalendar("all", "Europe/Berlin", week(sun=["00:00-24:00"]))
    assert always.elapsed(berlin(2026, 3, 29), berlin(2026, 3, 30)) == timedelta(hours=23)
    assert always.elapsed(berlin(2026, 10, 25), berlin(2026, 10, 26)) == timedelta(hours=25)
    assert always.add(berlin(2026, 3, 29, 1, 0), timedelta(hours=2)) == berlin(2026, 3, 29, 4, 0)


def test_a_range_ending_in_the_skipped_hour_ends_when_the_clocks_jump() -> None:
    """On 29 March, 01:00-02:30 is one hour: 02:30 does not exist, the range ends at 03:00 CEST."""
    night = BusinessCalendar("night", "Europe/Berlin", week(sun=["01:00-02:30"]))
    assert night.elapsed(berlin(2026, 3, 29), berlin(2026, 3, 30)) == timedelta(hours=1)


def test_half_day_has_its_own_ranges() -> None:
    """A half-day 09:00-12:00 on 31 December: 2h from 11:00 end on the next working day at 10:00."""
    calendar = BusinessCalendar(
        "office",
        "Europe/Berlin",
        OFFICE.weekly,
        half_days={date(2026, 12, 31): [parse_range("09:00-12:00")]},
    )
    assert calendar.add(berlin(2026, 12, 31, 11, 0), timedelta(hours=2)) == berlin(
        2027, 1, 1, 10, 0
    )


def test_half_day_wins_over_a_holiday_and_may_open_a_weekend_day() -> None:
    """A date that is both a holiday and a half-day has the half-day's hours; so does a Saturday."""
    calendar = BusinessCalendar(
        "office",
        "Europe/Berlin",
        OFFICE.weekly,
        holidays={date(2026, 12, 24)},
        half_days={
            date(2026, 12, 24): [parse_range("09:00-12:00")],
            date(2026, 12, 26): [parse_range("10:00-11:00")],
        },
    )
    assert calendar.elapsed(berlin(2026, 12, 24), berlin(2026, 12, 25)) == timedelta(hours=3)
    assert calendar.elapsed(berlin(2026, 12, 26), berlin(2026, 12, 27)) == timedelta(hours=1)


def test_explicit_holiday_has_no_working_time() -> None:
    """An explicit holiday date is skipped like a weekend day."""
    calendar = BusinessCalendar(
        "office", "Europe/Berlin", OFFICE.weekly, holidays={date(2026, 11, 30)}
    )
    assert calendar.add(berlin(2026, 11, 27, 17, 30), timedelta(hours=4)) == berlin(
        2026, 12, 1, 12, 30
    )


def test_ranges_ending_at_midnight_join_the_next_day() -> None:
    """20:00-24:00 on Monday and 00:00-02:00 on Tuesday are one stretch across midnight."""
    late = BusinessCalendar(
        "late", "Europe/Berlin", week(mon=["20:00-24:00"], tue=["00:00-02:00", "22:00-00:00"])
    )
    monday = berlin(2026, 11, 30, 23, 0)
    assert late.add(monday, timedelta(hours=2)) == berlin(2026, 12, 1, 1, 0)
    assert late.add(monday, timedelta(hours=3)) == berlin(2026, 12, 1, 2, 0)
    assert late.add(monday, timedelta(hours=4)) == berlin(2026, 12, 1, 23, 0)
    assert late.add(monday, timedelta(hours=5)) == berlin(2026, 12, 2, 0, 0)


def test_several_ranges_a_day_skip_the_lunch_break() -> None:
    """09:00-12:30 and 13:30-18:00: 4h from 10:00 is 15:00, the lunch hour does not count."""
    split = BusinessCalendar("split", "Europe/Berlin", week(mon=["09:00-12:30", "13:30-18:00"]))
    assert split.add(berlin(2026, 11, 30, 10, 0), timedelta(hours=4)) == berlin(2026, 11, 30, 15, 0)


def test_negative_duration_counts_backwards() -> None:
    """Adding a negative duration goes back in working time (an overrun past the target)."""
    monday = berlin(2026, 11, 30, 11, 0)
    assert OFFICE.add(monday, timedelta(hours=-4)) == berlin(2026, 11, 27, 16, 0)
    assert OFFICE.elapsed(monday, berlin(2026, 11, 27, 16, 0)) == timedelta(hours=-4)


def test_48_business_hours_over_weekends_and_holidays() -> None:
    """48h on Mon-Fri 09:00-18:00 spans more than a week and is computed day by day."""
    calendar = BusinessCalendar(
        "office", "Europe/Berlin", OFFICE.weekly, holidays={date(2026, 12, 24), date(2026, 12, 25)}
    )
    start = berlin(2026, 12, 23, 17, 0)
    due = calendar.add(start, timedelta(hours=48))
    # 1h on the 23rd, then 28, 29, 30, 31 Dec, 1 Jan (9h each) = 46h, then 2h on 4 Jan.
    assert due == berlin(2027, 1, 4, 11, 0)


def test_a_week_without_hours_is_refused() -> None:
    """A calendar with no working time in its week could never end a duration: refused."""
    with pytest.raises(ValueError, match="no working hours"):
        BusinessCalendar("never", "UTC", week())


def test_naive_times_are_refused() -> None:
    """Without a time zone an instant is ambiguous; the calendar says so."""
    with pytest.raises(ValueError, match="time zone"):
        OFFICE.add(datetime(2026, 11, 30, 10, 0), timedelta(hours=1))


CONFIG = """\
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - {name: support, path: /tmp/maildir}
smtp: {host: localhost, security: none}
calendars:
  office:
    timezone: Europe/Berlin
    hours: {mon-fri: ["09:00-18:00"]}
    holidays: {country: DE, subdivision: BY, dates: [2026-12-24]}
    half_days: {2026-12-31: ["09:00-12:00"]}
policies:
  standard: {calendar: office}
"""


def test_holiday_from_the_country_code_is_closed() -> None:
    """With country DE, 25 December 2026 (a Friday) has no working time."""
    office = build_rules(parse_config(CONFIG, "c.yaml"), today=date(2026, 11, 24)).calendars[
        "office"
    ]
    # Wednesday 23 Dec 17:00 + 2h: 1h on the 23rd; the 24th (explicit) and 25th (DE) are
    # closed, the 26th and 27th are a weekend, so the rest is on Monday the 28th.
    assert office.add(berlin(2026, 12, 23, 17, 0), timedelta(hours=2)) == berlin(
        2026, 12, 28, 10, 0
    )


def test_holiday_of_the_subdivision_and_the_half_day_from_the_config() -> None:
    """BY closes 6 January (Epiphany); the half-day on 31 December gives 09:00-12:00."""
    office = build_rules(parse_config(CONFIG, "c.yaml"), today=date(2026, 11, 24)).calendars[
        "office"
    ]
    assert office.add(berlin(2027, 1, 5, 17, 0), timedelta(hours=2)) == berlin(2027, 1, 7, 10, 0)
    # 31 Dec: 09:00-12:00; 1 Jan is a holiday; then the weekend.
    assert office.add(berlin(2026, 12, 31, 11, 0), timedelta(hours=2)) == berlin(2027, 1, 4, 10, 0)


def test_holidays_cover_the_documented_span_of_years() -> None:
    """Country holidays are expanded for two years before and three after the current one."""
    office = build_rules(parse_config(CONFIG, "c.yaml"), today=date(2026, 11, 24)).calendars[
        "office"
    ]
    assert isinstance(office, BusinessCalendar)
    assert date(2024, 12, 25) in office.holidays and date(2029, 12, 25) in office.holidays
    assert date(2023, 12, 25) not in office.holidays
    assert date(2030, 12, 25) not in office.holidays


def test_24x7_is_always_available() -> None:
    """A policy on 24x7 needs no calendars entry."""
    rules = build_rules(parse_config(CONFIG.replace("calendar: office", "calendar: 24x7"), "c"))
    assert isinstance(rules.calendar_for(rules.policies["standard"]), AlwaysOpen)


def test_engine_reports_the_business_due_time_in_status() -> None:
    """A Friday 17:30 mail on an office-hours policy: ack due Monday 09:30, plan Monday 12:30."""
    opened = berlin(2026, 11, 20, 17, 30)
    hours_ago = (NOW - opened).total_seconds() / 3600
    rules = rules_on_calendar(OFFICE, action_plan=ClockPolicy(timedelta(hours=4)))
    status = evaluate("c1", [client_mail("m1", hours_ago)], rules, {}, NOW).status
    assert status.opened_at == opened
    assert status.acknowledge_due == berlin(2026, 11, 23, 9, 30)
    assert status.action_plan_due == berlin(2026, 11, 23, 12, 30)


# --- properties -------------------------------------------------------------------

_POOL = ["00:00-02:00", "08:00-12:30", "13:30-18:00", "22:00-24:00"]
_ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    """Random business calendars: per weekday a subset of non-overlapping ranges."""
    weekly = [
        [parse_range(text) for text in draw(st.lists(st.sampled_from(_POOL), unique=True))]
        for _ in range(7)
    ]
    if not any(weekly):
        weekly[draw(st.integers(0, 6))] = [parse_range(draw(st.sampled_from(_POOL)))]
    days = st.dates(date(2025, 1, 1), date(2028, 12, 31))
    holidays = draw(st.sets(days, max_size=20))
    half_days = draw(
        st.dictionaries(
            days,
            st.lists(st.sampled_from(_POOL), unique=True).map(
                lambda t: [parse_range(x) for x in t]
            ),
            max_size=5,
        )
    )
    return BusinessCalendar("random", draw(st.sampled_from(_ZONES)), weekly, holidays, half_days)


starts = st.datetimes(datetime(2025, 1, 1), datetime(2028, 6, 30), timezones=st.just(UTC))
durations = st.timedeltas(timedelta(0), timedelta(hours=72))


@settings(max_examples=300, deadline=None)
@given(calendars(), starts, durations)
def test_elapsed_undoes_add(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    """elapsed(s, add(s, d)) == d, for every calendar, start and duration."""
    assert calendar.elapsed(start, calendar.add(start, duration)) == duration


@settings(max_examples=300, deadline=None)
@given(calendars(), starts, durations)
def test_elapsed_undoes_add_backwards(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    """Counting backwards too: elapsed(s, add(s, -d)) == -d."""
    assert calendar.elapsed(start, calendar.add(start, -duration)) == -duration


@settings(max_examples=300, deadline=None)
@given(calendars(), starts, durations, durations)
def test_add_is_monotonic(
    calendar: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    """d1 <= d2 implies add(s, d1) <= add(s, d2)."""
    small, large = sorted((first, second))
    assert calendar.add(start, small) <= calendar.add(start, large)


@settings(max_examples=300, deadline=None)
@given(calendars(), starts, durations, durations)
def test_add_is_additive(
    calendar: BusinessCalendar, start: datetime, first: timedelta, second: timedelta
) -> None:
    """add(add(s, a), b) == add(s, a + b) for non-negative a and b."""
    assert calendar.add(calendar.add(start, first), second) == calendar.add(start, first + second)


@settings(max_examples=300, deadline=None)
@given(calendars(), starts, durations.filter(lambda d: d > timedelta(0)))
def test_a_deadline_never_falls_outside_working_time(
    calendar: BusinessCalendar, start: datetime, duration: timedelta
) -> None:
    """add(s, d > 0) lands inside a range or at its end: the moment before it is working time."""
    due = calendar.add(start, duration)
    tick = timedelta(microseconds=1)
    assert calendar.elapsed(due - tick, due) == tick


@settings(max_examples=150, deadline=None)
@given(calendars(), starts, st.integers(0, 3 * 24 * 60))
def test_elapsed_matches_counting_minute_by_minute(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    """Elapsed time agrees with looking at the local wall clock of every single minute."""
    start = start.replace(second=0, microsecond=0)
    counted = 0
    for step in range(minutes):
        local = (start + timedelta(minutes=step)).astimezone(calendar.zone)
        minute = local.hour * 60 + local.minute
        if any(begin <= minute < end for begin, end in calendar.ranges_on(local.date())):
            counted += 1
    assert calendar.elapsed(start, start + timedelta(minutes=minutes)) == timedelta(minutes=counted)


def test_a_pause_moves_the_due_time_by_exactly_the_paused_business_time() -> None:
    """Waiting on the client for 20 business hours moves the plan due by 20 business hours.

    Mon 09:00 request, Mon 09:10 acknowledged, Mon 10:00 waiting on the client, Wed 12:00
    the client answers: paused Mon 10-18 (8h) + Tue (9h) + Wed 09-12 (3h) = 20h. Without
    the pause 48 business hours end the next Monday 12:00; with it, 20 business hours
    later: the next Wednesday 14:00.
    """
    opened = berlin(2026, 11, 2, 9, 0)
    history = [
        replace(client_mail("m1", 0), arrived_at=opened),
        replace(team_reply("r0", 0, "m1"), arrived_at=berlin(2026, 11, 2, 9, 10)),
        replace(
            team_reply("r1", 0, "m1", keywords=("$WaitingOnClient",)),
            arrived_at=berlin(2026, 11, 2, 10, 0),
        ),
        replace(client_mail("m2", 0, in_reply_to="r1"), arrived_at=berlin(2026, 11, 4, 12, 0)),
    ]
    now = berlin(2026, 11, 5, 12, 0)
    status = evaluate("c", history, rules_on_calendar(OFFICE), {}, now).status
    unpaused = evaluate("c", history[:2], rules_on_calendar(OFFICE), {}, now).status
    assert unpaused.action_plan_due == berlin(2026, 11, 9, 12, 0)
    assert status.action_plan_due == berlin(2026, 11, 11, 14, 0)
    assert OFFICE.elapsed(berlin(2026, 11, 2, 10, 0), berlin(2026, 11, 4, 12, 0)) == timedelta(
        hours=20
    )
