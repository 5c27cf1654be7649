"""The SLA report: per account and per owner, how the promises were kept in a period.

Built from the evaluated conversations (every cycle of their ledger, not only the
current one), the rules (owner and targets) and the outbox's follow-up and check-in
decisions, for the period ``[since, until)``. The exact rules are in docs/sla.md
("Reports"); in short:

- a cycle counts when it was opened in the period, with its clocks as the ledger counts
  them at the evaluation time (``as_of``);
- durations are the ledger's counted working time on the account's policy calendar
  (action plan: waiting-on-client pauses excluded), for clocks that stopped;
- a clock is within target when it stopped by its due time, or has not stopped and is
  not yet due (it is then also counted as open);
- follow-ups and check-ins count the notices decided in the period and not suppressed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sla_daemon.core.ledger import ClockLedger, CycleLedger
from sla_daemon.core.model import AcknowledgedBy, ClockName, ConversationStatus, NoticeKind, Rules

NO_ACCOUNT = "(no account)"
"""The account name of conversations matched to no account (they have no owner)."""
NO_OWNER = "(no owner)"
"""The owner of ``NO_ACCOUNT``."""


@dataclass(frozen=True)
class NoticeRecord:
    """One outbox decision, as plain data: what kind, for what, when, and whether sent."""

    key: str
    kind: NoticeKind
    conversation_id: str
    decided_at: datetime
    suppressed: bool = False


@dataclass(frozen=True)
class CycleFigures:
    """One cycle opened in the period, with the figures the report is built from."""

    conversation_id: str
    subject: str
    """The conversation's subject, as the client wrote it (untrusted text)."""
    account: str
    owner: str
    number: int
    opened_at: datetime
    acknowledged_by: AcknowledgedBy | None
    time_to_acknowledge: timedelta | None
    """Working time until the acknowledge clock stopped; None while it runs."""
    time_to_action_plan: timedelta | None
    """Working time until the action plan, pauses excluded; None while the clock runs."""
    acknowledge_within: bool
    action_plan_within: bool
    acknowledge_open: bool
    action_plan_open: bool

    @property
    def breaches(self) -> int:
        """How many of the cycle's two clocks are past their due time."""
        return (not self.acknowledge_within) + (not self.action_plan_within)

    @property
    def compliant(self) -> bool:
        """Whether both clocks are within target."""
        return self.acknowledge_within and self.action_plan_within


@dataclass(frozen=True)
class Durations:
    """Median and 90th percentile (nearest rank) of some durations, and how many."""

    count: int
    median: timedelta | None
    p90: timedelta | None


@dataclass(frozen=True)
class ClockFigures:
    """One clock over a group of cycles: how many within target, breached, still open."""

    cycles: int
    within: int
    breached: int
    open: int

    @property
    def share_within(self) -> float | None:
        """``within / cycles``; None without cycles."""
        return self.within / self.cycles if self.cycles else None


@dataclass(frozen=True)
class ReportRow:
    """The figures of one account or one owner."""

    group: str
    """``account`` or ``owner``."""
    name: str
    owner: str
    """The account's owner (for an owner row: the owner again)."""
    conversations: int
    cycles: int
    acknowledge_all: Durations
    acknowledge_auto: Durations
    acknowledge_human: Durations
    action_plan: Durations
    acknowledge: ClockFigures
    action_plan_clock: ClockFigures
    breaches: int
    follow_ups: int
    check_ins: int


@dataclass(frozen=True)
class Report:
    """The report of the period ``[since, until)`` as evaluated at ``as_of``."""

    since: datetime
    until: datetime
    as_of: datetime
    accounts: tuple[ReportRow, ...]
    owners: tuple[ReportRow, ...]
    cycles: tuple[CycleFigures, ...]


def percentile(values: Sequence[timedelta], share: float) -> timedelta | None:
    """The nearest-rank percentile: the smallest value with ``share`` of all at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def durations(values: Iterable[timedelta | None]) -> Durations:
    """Median and p90 of the values that are not None."""
    known = [v for v in values if v is not None]
    if not known:
        return Durations(0, None, None)
    middle = timedelta(seconds=statistics.median(v.total_seconds() for v in known))
    return Durations(len(known), middle, percentile(known, 0.9))


def check_in_account(key: str) -> str | None:
    """The account named in a check-in key (``aftercare.check_in_key``), or None."""
    prefix = "check_in|"
    if not key.startswith(prefix):
        return None
    account, separator, _ = key[len(prefix) :].rpartition("|")
    return account if separator else None


def build_report(
    statuses: Iterable[ConversationStatus],
    rules: Rules,
    notices: Iterable[NoticeRecord],
    since: datetime,
    until: datetime,
    as_of: datetime,
) -> Report:
    """The report of ``[since, until)`` from the conversations evaluated at ``as_of``."""
    owners = {account.name: account.owner for account in rules.accounts}
    cycles: list[CycleFigures] = []
    account_of: dict[str, str] = {}
    for status in statuses:
        account = status.account or NO_ACCOUNT
        account_of[status.id] = account
        if status.ledger is None:
            continue
        for cycle in status.ledger.cycles:
            if since <= cycle.opened_at < until:
                owner = owners.get(account, NO_OWNER)
                cycles.append(_figures(status, account, owner, cycle))
    cycles.sort(key=lambda c: (c.opened_at, c.conversation_id, c.number))
    follow_ups: dict[str, int] = {}
    check_ins: dict[str, int] = {}
    for notice in notices:
        if notice.suppressed or not since <= notice.decided_at < until:
            continue
        if notice.kind is NoticeKind.FOLLOW_UP:
            name = account_of.get(notice.conversation_id, NO_ACCOUNT)
            follow_ups[name] = follow_ups.get(name, 0) + 1
        elif notice.kind is NoticeKind.CHECK_IN:
            name = check_in_account(notice.key) or NO_ACCOUNT
            check_ins[name] = check_ins.get(name, 0) + 1
    account_names = sorted(
        {c.account for c in cycles} | set(follow_ups) | set(check_ins) | set(owners)
    )
    account_rows = tuple(
        _row(
            "account",
            name,
            owners.get(name, NO_OWNER),
            [c for c in cycles if c.account == name],
            follow_ups.get(name, 0),
            check_ins.get(name, 0),
        )
        for name in account_names
    )
    owner_rows = []
    for owner in sorted({owners.get(name, NO_OWNER) for name in account_names}):
        names = {n for n in account_names if owners.get(n, NO_OWNER) == owner}
        owner_rows.append(
            _row(
                "owner",
                owner,
                owner,
                [c for c in cycles if c.account in names],
                sum(follow_ups.get(n, 0) for n in names),
                sum(check_ins.get(n, 0) for n in names),
            )
        )
    return Report(since, until, as_of, account_rows, tuple(owner_rows), tuple(cycles))


def _figures(
    status: ConversationStatus, account: str, owner: str, cycle: CycleLedger
) -> CycleFigures:
    clocks: Mapping[ClockName, ClockLedger] = {clock.clock: clock for clock in cycle.clocks}
    ack = clocks[ClockName.ACKNOWLEDGE]
    plan = clocks[ClockName.ACTION_PLAN]
    return CycleFigures(
        conversation_id=status.id,
        subject=status.subject,
        account=account,
        owner=owner,
        number=cycle.number,
        opened_at=cycle.opened_at,
        acknowledged_by=_acknowledged_by(ack),
        time_to_acknowledge=ack.counted if ack.stopped_at is not None else None,
        time_to_action_plan=plan.counted if plan.stopped_at is not None else None,
        acknowledge_within=not ack.breached,
        action_plan_within=not plan.breached,
        acknowledge_open=ack.stopped_at is None,
        action_plan_open=plan.stopped_at is None,
    )


def _acknowledged_by(clock: ClockLedger) -> AcknowledgedBy | None:
    """What stopped the acknowledge clock, read from its stopping segment's cause."""
    if clock.stopped_at is None or not clock.segments:
        return None
    last = clock.segments[-1]
    return AcknowledgedBy.HUMAN if last.reason == "human reply" else AcknowledgedBy.AUTO


def _row(
    group: str,
    name: str,
    owner: str,
    cycles: Sequence[CycleFigures],
    follow_ups: int,
    check_ins: int,
) -> ReportRow:
    return ReportRow(
        group=group,
        name=name,
        owner=owner,
        conversations=len({c.conversation_id for c in cycles}),
        cycles=len(cycles),
        acknowledge_all=durations(c.time_to_acknowledge for c in cycles),
        acknowledge_auto=durations(
            c.time_to_acknowledge for c in cycles if c.acknowledged_by is AcknowledgedBy.AUTO
        ),
        acknowledge_human=durations(
            c.time_to_acknowledge for c in cycles if c.acknowledged_by is AcknowledgedBy.HUMAN
        ),
        action_plan=durations(c.time_to_action_plan for c in cycles),
        acknowledge=ClockFigures(
            len(cycles),
            sum(c.acknowledge_within for c in cycles),
            sum(not c.acknowledge_within for c in cycles),
            sum(c.acknowledge_open for c in cycles),
        ),
        action_plan_clock=ClockFigures(
            len(cycles),
            sum(c.action_plan_within for c in cycles),
            sum(not c.action_plan_within for c in cycles),
            sum(c.action_plan_open for c in cycles),
        ),
        breaches=sum(c.breaches for c in cycles),
        follow_ups=follow_ups,
        check_ins=check_ins,
    )


def weekly_compliance(
    cycles: Sequence[CycleFigures], since: datetime, until: datetime
) -> dict[str, list[tuple[datetime, float | None]]]:
    """Per account, the share of cycles with both clocks within target, week by week.

    Weeks are seven-day spans from ``since``; a week without cycles has None.
    """
    starts = []
    start = since
    while start < until:
        starts.append(start)
        start += timedelta(days=7)
    result: dict[str, list[tuple[datetime, float | None]]] = {}
    for account in sorted({c.account for c in cycles}):
        points: list[tuple[datetime, float | None]] = []
        for week in starts:
            mine = [
                c
                for c in cycles
                if c.account == account and week <= c.opened_at < week + timedelta(days=7)
            ]
            share = sum(c.compliant for c in mine) / len(mine) if mine else None
            points.append((week, share))
        result[account] = points
    return result
