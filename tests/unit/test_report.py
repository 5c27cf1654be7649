"""The report's figures, from conversations the engine evaluated at a frozen time."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sla_daemon.core.engine import auto_ack_key, evaluate
from sla_daemon.core.model import (
    Account,
    AcknowledgedBy,
    ConversationStatus,
    NoticeKind,
    Rules,
    SentNotice,
)
from sla_daemon.core.report import (
    NO_ACCOUNT,
    NoticeRecord,
    Report,
    ReportRow,
    build_report,
    check_in_account,
    durations,
    percentile,
    weekly_compliance,
)
from tests.unit.builders import NOW, client_mail, rules, team_reply

PLAN = "Hello,\n\nAction plan: rotate the keys.\n"
INITECH = Account(name="Initech", policy="standard", owner="alice@acme.example")


def _rules() -> Rules:
    base = rules()
    return replace(base, accounts=(*base.accounts, INITECH))


def _auto_ack(opening: str, hours_ago: float) -> dict[str, SentNotice]:
    at = NOW - timedelta(hours=hours_ago)
    key = auto_ack_key(opening)
    return {key: SentNotice(key, NoticeKind.AUTO_ACK, at, at)}


def statuses() -> list[ConversationStatus]:
    """Three conversations with four cycles, as the engine sees them at NOW.

    a: cycle 1 opened 100h ago, human reply after 30m, plan after 10h; cycle 2 opened 50h
       ago, auto-ack after 1m, no plan (48h target: breached, open).
    b: opened 10h ago, auto-ack after 2m, plan after 5h.
    c: opened 2h ago, nothing yet (acknowledge breached and open; plan open, not due).
    """
    a = [
        client_mail("a1", 100),
        team_reply("ra1", 99.5, "a1"),
        team_reply("pa1", 90, "ra1", body=PLAN),
        client_mail("a2", 50, in_reply_to="pa1", body="The import fails again, please check."),
    ]
    b = [client_mail("b1", 10), team_reply("pb1", 5, "b1", body=PLAN)]
    c = [client_mail("c1", 2)]
    return [
        evaluate("a", a, _rules(), _auto_ack("a2", 50 - 1 / 60), NOW).status,
        evaluate("b", b, _rules(), _auto_ack("b1", 10 - 2 / 60), NOW).status,
        evaluate("c", c, _rules(), {}, NOW).status,
    ]


def _report(
    since: datetime = NOW - timedelta(days=30),
    until: datetime = NOW,
    notices: tuple[NoticeRecord, ...] = (),
) -> Report:
    return build_report(statuses(), _rules(), notices, since, until, NOW)


def _row(rows: tuple[ReportRow, ...], name: str) -> ReportRow:
    [row] = [r for r in rows if r.name == name]
    return row


def test_percentile_is_the_nearest_rank_and_median_the_middle() -> None:
    """p90 of 1..10 minutes is 9 minutes, of 1..11 is 10; the median of 1,2 is 1.5."""
    minutes = [timedelta(minutes=n) for n in range(1, 12)]
    assert percentile(minutes[:10], 0.9) == timedelta(minutes=9)
    assert percentile(minutes, 0.9) == timedelta(minutes=10)
    assert percentile([], 0.9) is None
    assert durations([minutes[0], minutes[1], None]).median == timedelta(seconds=90)
    assert durations([None]).count == 0


def test_every_cycle_of_the_ledger_counts_not_only_the_current_one() -> None:
    """Conversation a has two cycles opened in the period: both are counted."""
    globex = _row(_report().accounts, "Globex")
    assert globex.conversations == 3
    assert globex.cycles == 4
    assert [c.number for c in _report().cycles if c.conversation_id == "a"] == [1, 2]


def test_times_to_acknowledge_split_by_auto_and_human() -> None:
    """Acks after 30m (human), 1m and 2m (auto): all 2m/30m, auto 1.5m/2m, human 30m."""
    globex = _row(_report().accounts, "Globex")
    assert globex.acknowledge_all.count == 3
    assert globex.acknowledge_all.median == timedelta(minutes=2)
    assert globex.acknowledge_all.p90 == timedelta(minutes=30)
    assert globex.acknowledge_auto.median == timedelta(seconds=90)
    assert globex.acknowledge_auto.p90 == timedelta(minutes=2)
    assert globex.acknowledge_human.median == timedelta(minutes=30)
    by = {(c.conversation_id, c.number): c.acknowledged_by for c in _report().cycles}
    assert by == {
        ("a", 1): AcknowledgedBy.HUMAN,
        ("a", 2): AcknowledgedBy.AUTO,
        ("b", 1): AcknowledgedBy.AUTO,
        ("c", 1): None,
    }


def test_time_to_action_plan_counts_only_plans_given() -> None:
    """Plans after 10h and 5h: median 7.5h, p90 10h; the two open clocks have no time."""
    globex = _row(_report().accounts, "Globex")
    assert globex.action_plan.count == 2
    assert globex.action_plan.median == timedelta(hours=7.5)
    assert globex.action_plan.p90 == timedelta(hours=10)


def test_open_clocks_are_within_target_only_while_not_yet_due() -> None:
    """Conversation c's acknowledge clock runs past due (breached, open); its plan is within."""
    globex = _row(_report().accounts, "Globex")
    ack, plan = globex.acknowledge, globex.action_plan_clock
    assert (ack.cycles, ack.within, ack.breached, ack.open) == (4, 3, 1, 1)
    assert (plan.cycles, plan.within, plan.breached, plan.open) == (4, 3, 1, 2)
    assert ack.share_within == 0.75
    assert globex.breaches == 2


def test_a_cycle_counts_when_opened_in_the_half_open_period() -> None:
    """Since a2's opening (included) until b1's opening (excluded): only a's cycle 2."""
    since = NOW - timedelta(hours=50)
    until = NOW - timedelta(hours=10)
    report = _report(since, until)
    assert [(c.conversation_id, c.number) for c in report.cycles] == [("a", 2)]
    globex = _row(report.accounts, "Globex")
    assert (globex.conversations, globex.cycles) == (1, 1)


def test_owner_rows_add_up_their_accounts_and_idle_accounts_are_listed() -> None:
    """Initech has no cycles but a row of zeros; alice's row sums Globex and Initech."""
    notices = (
        NoticeRecord("a1|follow_up", NoticeKind.FOLLOW_UP, "a", NOW - timedelta(hours=60)),
        NoticeRecord("check_in|Initech|x", NoticeKind.CHECK_IN, "", NOW - timedelta(hours=1)),
        NoticeRecord(
            "check_in|Globex|y", NoticeKind.CHECK_IN, "", NOW - timedelta(hours=1), suppressed=True
        ),
        NoticeRecord("b1|follow_up", NoticeKind.FOLLOW_UP, "b", NOW + timedelta(hours=1)),
    )
    report = _report(notices=notices)
    initech = _row(report.accounts, "Initech")
    assert (initech.cycles, initech.check_ins, initech.follow_ups) == (0, 1, 0)
    assert initech.acknowledge.share_within is None
    globex = _row(report.accounts, "Globex")
    assert (globex.follow_ups, globex.check_ins) == (1, 0)
    [alice] = report.owners
    assert alice.name == "alice@acme.example"
    assert (alice.cycles, alice.follow_ups, alice.check_ins, alice.breaches) == (4, 1, 1, 2)


def test_check_in_keys_name_their_account() -> None:
    """The account is read back from a check-in key, even with a bar in its name."""
    assert check_in_account("check_in|A|B|2026-11-01T09:00:00+00:00") == "A|B"
    assert check_in_account("x|follow_up") is None


def test_conversations_without_account_get_their_own_row() -> None:
    """A status without account is reported under NO_ACCOUNT, not dropped."""
    [a, *_] = statuses()
    report = build_report(
        [replace(a, account=None)], _rules(), (), NOW - timedelta(days=30), NOW, NOW
    )
    assert _row(report.accounts, NO_ACCOUNT).cycles == 2


def test_weekly_compliance_is_the_share_of_cycles_with_both_clocks_met() -> None:
    """Week 1 holds a1 (met): 100%; week 2 holds a2, b1, c1, of which only b1: a third.

    A week without cycles has no share (None), not 0%.
    """
    since = NOW - timedelta(days=7, hours=60)
    report = _report(since=since)
    series = weekly_compliance(report.cycles, since, NOW)
    assert series["Globex"] == [(since, 1.0), (since + timedelta(days=7), 1 / 3)]
    empty = weekly_compliance(report.cycles, NOW - timedelta(days=21), NOW - timedelta(days=14))
    assert empty == {"Globex": [(NOW - timedelta(days=21), None)]}
