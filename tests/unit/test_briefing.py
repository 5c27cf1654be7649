"""The morning briefing's pure rules: when it is due, and what it lists in which section."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sla_daemon.core.briefing import (
    BriefingSection,
    briefing_due,
    briefing_instant,
    briefing_key,
    build_briefing,
    next_briefing_at,
    owner_zone,
    owners,
)
from sla_daemon.core.calendar import BusinessCalendar, parse_range
from sla_daemon.core.model import (
    Account,
    ClockName,
    ClockPolicy,
    ClockStatus,
    ConversationState,
    ConversationStatus,
    Policy,
    Rules,
)
from tests.unit.builders import TEAM

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
EIGHT = time(8, 0)
WORKDAY = (parse_range("09:00-18:00"),)
OFFICE = BusinessCalendar("office", "Europe/Berlin", [WORKDAY] * 5 + [(), ()])
ALICE = "alice@acme.example"
CAROL = "carol@acme.example"

RULES = Rules(
    team=TEAM,
    accounts=(
        Account("Globex", "office", ALICE, domains=("globex.example",)),
        Account("Initech", "round", CAROL, domains=("initech.example",)),
        Account("Hooli", "round", ALICE, domains=("hooli.example",)),
    ),
    policies={
        "office": Policy(
            "office",
            ClockPolicy(timedelta(hours=4), (timedelta(hours=1),)),
            ClockPolicy(timedelta(hours=16), (timedelta(hours=4),)),
            calendar="office",
        ),
        "round": Policy(
            "round",
            ClockPolicy(timedelta(hours=1), (timedelta(minutes=15),)),
            ClockPolicy(timedelta(hours=48), (timedelta(hours=4),)),
        ),
    },
    calendars={"office": OFFICE},
)

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
"""Tuesday 24 November 2026, 08:00 in Berlin."""


def _status(
    conversation_id: str,
    account: str,
    clock: ClockName,
    due_at: datetime,
    *,
    breached: bool = False,
    stopped_at: datetime | None = None,
    state: ConversationState = ConversationState.AWAITING_ACTION_PLAN,
) -> ConversationStatus:
    """A conversation in cycle 1 whose ``clock`` is due at ``due_at`` (the other is met)."""
    started = due_at - timedelta(days=3)
    clocks = (
        ClockStatus(clock, started, due_at, stopped_at, breached),
        ClockStatus(
            ClockName.ACTION_PLAN if clock is ClockName.ACKNOWLEDGE else ClockName.ACKNOWLEDGE,
            started,
            started + timedelta(hours=1),
            started + timedelta(minutes=5),
            False,
        ),
    )
    return ConversationStatus(
        id=conversation_id,
        account=account,
        subject=f"Subject of {conversation_id}",
        client=f"client@{account.lower()}.example",
        state=state,
        opened_at=started,
        cycle=1,
        acknowledged_at=None,
        acknowledged_by=None,
        first_human_response_at=None,
        action_plan_at=None,
        acknowledge_due=None,
        action_plan_due=None,
        breaches=(clock,) if breached else (),
        message_ids=(),
        clocks=clocks,
    )


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_owners_are_distinct_and_each_gets_the_zone_of_their_first_account() -> None:
    """Alice's first account is on a Berlin calendar: Berlin; Carol's on 24x7: the default."""
    assert owners(RULES) == (ALICE, CAROL)
    assert owner_zone(RULES, ALICE, NEW_YORK) == BERLIN
    assert owner_zone(RULES, CAROL, NEW_YORK) == NEW_YORK
    assert owner_zone(RULES, "nobody@acme.example", NEW_YORK) == NEW_YORK


def test_the_briefing_is_due_from_briefing_at_on_and_only_once_a_day() -> None:
    """07:59 Berlin: not yet; 08:00 and 08:30: today's, until it was decided."""
    today = date(2026, 11, 24)
    assert briefing_due(NOW - timedelta(minutes=1), EIGHT, BERLIN, None) is None
    assert briefing_due(NOW, EIGHT, BERLIN, None) == today
    assert briefing_due(NOW + timedelta(minutes=30), EIGHT, BERLIN, None) == today
    assert briefing_due(NOW + timedelta(minutes=30), EIGHT, BERLIN, today) is None
    assert briefing_due(NOW + timedelta(days=1), EIGHT, BERLIN, today) == date(2026, 11, 25)


def test_a_missed_day_is_never_briefed_late() -> None:
    """After a stop over 08:00, yesterday's briefing is not sent; today's comes at 08:00."""
    yesterday = date(2026, 11, 23)
    before = datetime(2026, 11, 25, 6, 59, tzinfo=UTC)  # 07:59 Berlin, Wednesday
    assert briefing_due(before, EIGHT, BERLIN, date(2026, 11, 22)) is None
    assert briefing_due(before + timedelta(minutes=1), EIGHT, BERLIN, yesterday) == date(
        2026, 11, 25
    )
    # Started late in the evening: the day's briefing goes then, the next at 08:00 tomorrow.
    late_evening = datetime(2026, 11, 25, 21, 0, tzinfo=UTC)
    assert briefing_due(late_evening, EIGHT, BERLIN, None) == date(2026, 11, 25)
    assert next_briefing_at(late_evening, EIGHT, BERLIN) == _utc("2026-11-26T07:00")


def test_eight_oclock_stays_eight_oclock_on_the_days_the_clocks_change() -> None:
    """08:00 Berlin is 06:00 UTC on the spring change day and 07:00 UTC in autumn.

    The next briefing after Saturday's is 23 hours (spring) or 25 hours (autumn) later.
    """
    assert briefing_instant(date(2026, 3, 29), EIGHT, BERLIN) == _utc("2026-03-29T06:00")
    assert briefing_instant(date(2026, 10, 25), EIGHT, BERLIN) == _utc("2026-10-25T07:00")
    saturday_spring = _utc("2026-03-28T07:00")
    assert next_briefing_at(saturday_spring, EIGHT, BERLIN) - saturday_spring == timedelta(hours=23)
    saturday_autumn = _utc("2026-10-24T06:00")
    assert next_briefing_at(saturday_autumn, EIGHT, BERLIN) - saturday_autumn == timedelta(hours=25)
    assert briefing_due(_utc("2026-03-29T05:59"), EIGHT, BERLIN, None) is None
    assert briefing_due(_utc("2026-03-29T06:00"), EIGHT, BERLIN, None) == date(2026, 3, 29)


def test_a_skipped_wall_time_means_the_moment_the_clocks_jump() -> None:
    """02:30 does not exist in Berlin on 29 March 2026; that briefing goes at 03:00 CEST."""
    assert briefing_instant(date(2026, 3, 29), time(2, 30), BERLIN) == _utc("2026-03-29T01:00")


def test_next_briefing_is_today_while_ahead_then_tomorrow() -> None:
    """At 07:59 the next briefing is in a minute; at 08:00 (being sent) it is tomorrow's."""
    assert next_briefing_at(NOW - timedelta(minutes=1), EIGHT, BERLIN) == NOW
    assert next_briefing_at(NOW, EIGHT, BERLIN) == NOW + timedelta(days=1)


def test_sections_follow_the_rules_and_are_sorted_by_due_time() -> None:
    """Each running clock lands in the first section that fits, sorted by due time.

    Late: breached; at risk: within the warning window or before the business day ends;
    due today: before the owner's midnight; everything else is left out.
    """
    statuses = [
        _status("late-2", "Globex", ClockName.ACKNOWLEDGE, _utc("2026-11-23T16:00"), breached=True),
        _status("late-1", "Hooli", ClockName.ACTION_PLAN, _utc("2026-11-22T10:00"), breached=True),
        # Business calendar: due at 17:00 today is at risk although 8 working hours away.
        _status("office-today", "Globex", ClockName.ACTION_PLAN, _utc("2026-11-24T16:00")),
        # 24x7: 3h left with a 4h warning window.
        _status("window", "Hooli", ClockName.ACTION_PLAN, _utc("2026-11-24T10:00")),
        # 24x7, 21:00 Berlin: 13h left, still today.
        _status("evening", "Hooli", ClockName.ACTION_PLAN, _utc("2026-11-24T20:00")),
        _status("tomorrow", "Hooli", ClockName.ACTION_PLAN, _utc("2026-11-25T02:00")),
        _status("office-tomorrow", "Globex", ClockName.ACTION_PLAN, _utc("2026-11-25T09:00")),
        _status(
            "paused",
            "Hooli",
            ClockName.ACTION_PLAN,
            _utc("2026-11-24T09:00"),
            state=ConversationState.WAITING_ON_CLIENT,
        ),
        _status(
            "closed",
            "Hooli",
            ClockName.ACTION_PLAN,
            _utc("2026-11-24T09:00"),
            state=ConversationState.CLOSED,
        ),
        _status(
            "stopped-late",
            "Hooli",
            ClockName.ACTION_PLAN,
            _utc("2026-11-23T09:00"),
            breached=True,
            stopped_at=_utc("2026-11-23T10:00"),
        ),
        _status("carols", "Initech", ClockName.ACKNOWLEDGE, _utc("2026-11-24T07:30")),
    ]
    briefing = build_briefing(statuses, RULES, ALICE, NOW, BERLIN)

    assert briefing.day == date(2026, 11, 24)
    assert [i.conversation_id for i in briefing.late] == ["late-1", "late-2"]
    assert [i.conversation_id for i in briefing.at_risk] == ["window", "office-today"]
    assert [i.conversation_id for i in briefing.due_today] == ["evening"]
    first = briefing.late[0]
    assert (first.section, first.account, first.clock) == (
        BriefingSection.LATE,
        "Hooli",
        ClockName.ACTION_PLAN,
    )
    assert (first.client, first.subject) == ("client@hooli.example", "Subject of late-1")
    assert first.due_at == _utc("2026-11-22T10:00")


def test_the_day_ends_at_the_owners_midnight() -> None:
    """For Carol in New York at 08:00, 22:00 her time is due today and 00:30 is not."""
    now = _utc("2026-11-24T13:00")  # 08:00 in New York
    statuses = [
        _status("late-evening", "Initech", ClockName.ACTION_PLAN, _utc("2026-11-25T03:00")),
        _status("after-midnight", "Initech", ClockName.ACTION_PLAN, _utc("2026-11-25T05:30")),
    ]
    briefing = build_briefing(statuses, RULES, CAROL, now, NEW_YORK)
    assert [i.conversation_id for i in briefing.due_today] == ["late-evening"]
    assert briefing.late == briefing.at_risk == ()


def test_nothing_to_say_is_an_empty_briefing() -> None:
    """An owner whose clocks are all far off or met has an empty briefing (no mail)."""
    far = _status("far", "Initech", ClockName.ACTION_PLAN, _utc("2026-11-27T12:00"))
    briefing = build_briefing([far], RULES, CAROL, NOW, NEW_YORK)
    assert briefing.is_empty and briefing.items == ()
    assert build_briefing([], RULES, ALICE, NOW, BERLIN).is_empty


def test_a_conversation_given_twice_is_listed_once() -> None:
    """A check-in carries the status of the account's latest conversation; listed once."""
    late = _status("late", "Hooli", ClockName.ACKNOWLEDGE, _utc("2026-11-24T06:00"), breached=True)
    briefing = build_briefing([late, replace(late)], RULES, ALICE, NOW, BERLIN)
    assert [i.conversation_id for i in briefing.items] == ["late"]


def test_the_key_names_the_owner_and_the_local_date() -> None:
    """One key per owner and local day, so a briefing is decided once a day."""
    assert briefing_key(ALICE, date(2026, 11, 24)) == "briefing|alice@acme.example|2026-11-24"
