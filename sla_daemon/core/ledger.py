"""The ledger: why each clock of a conversation stands where it stands.

For every cycle and clock it lists the segments (started, paused, resumed, stopped) with
the message or notice that caused each, the calendar and target used, the time counted
and paused, and the resulting due time; it also lists the courtesy replies of each cycle
and the messages that were ignored as automated (or from nobody's account). The engine
records what happens while it replays the history (``Trail``) and builds the ledger from
it with ``cycle_ledger``; ``due_at`` is the due time both use. ``status --json`` and
``explain`` show it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

from sla_daemon.core.calendar import Calendar
from sla_daemon.core.model import (
    Account,
    AcknowledgedBy,
    ClockName,
    ClockPolicy,
    ClockStatus,
    MessageFacts,
    Policy,
    Rules,
)


class Step(StrEnum):
    """What happened to a clock."""

    STARTED = "started"
    PAUSED = "paused"
    RESUMED = "resumed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Segment:
    """One step of a clock and its cause: a message (Message-ID, sender) or a notice key."""

    step: Step
    at: datetime
    message_id: str | None
    sender: str | None
    reason: str
    notice_key: str | None = None


@dataclass(frozen=True)
class Note:
    """A message the ledger mentions without it moving a clock (a courtesy, ignored mail)."""

    at: datetime
    message_id: str
    sender: str | None
    reason: str


@dataclass(frozen=True)
class ClockLedger:
    """One clock of one cycle: its segments and how its due time comes about.

    ``due_at`` is ``within`` of working time on ``calendar`` counted from the start, plus
    ``paused`` (working time the clock was paused; up to the evaluation time while it
    still is). ``counted`` is the working time it has run (until it stopped, paused or
    the evaluation time); ``late_by`` is how far past the due time it stopped or runs.
    """

    clock: ClockName
    calendar: str
    within: timedelta
    segments: tuple[Segment, ...]
    counted: timedelta
    paused: timedelta
    due_at: datetime
    stopped_at: datetime | None
    breached: bool
    late_by: timedelta | None = None

    @property
    def is_paused(self) -> bool:
        """Whether the clock is paused now (its last segment is a pause)."""
        return bool(self.segments) and self.segments[-1].step is Step.PAUSED


@dataclass(frozen=True)
class CycleLedger:
    """The clocks of one cycle and the courtesy replies received during it."""

    number: int
    opening_message_id: str
    opened_at: datetime
    clocks: tuple[ClockLedger, ...]
    courtesies: tuple[Note, ...] = ()


@dataclass(frozen=True)
class Ledger:
    """Every cycle of a conversation (oldest first) and the mail that moved nothing."""

    as_of: datetime
    cycles: tuple[CycleLedger, ...] = ()
    ignored: tuple[Note, ...] = ()


def note(facts: MessageFacts, reason: str) -> Note:
    """A ``Note`` about ``facts``."""
    return Note(facts.arrived_at, facts.message_id, _sender(facts), reason)


def segment(step: Step, facts: MessageFacts, reason: str) -> Segment:
    """A ``Segment`` caused by ``facts``."""
    return Segment(step, facts.arrived_at, facts.message_id, _sender(facts), reason)


def _sender(facts: MessageFacts) -> str | None:
    return facts.sender.email if facts.sender else None


@dataclass
class Trail:
    """What changed a cycle's clocks, recorded in order while the history is replayed."""

    first_reply: MessageFacts | None = None
    auto_ack: MessageFacts | None = None
    action_plan: Segment | None = None
    pauses: list[Segment] = field(default_factory=list)

    def paused(self, facts: MessageFacts, reason: str) -> None:
        """The action-plan clock paused at ``facts`` (a team message waiting on the client)."""
        self.pauses.append(segment(Step.PAUSED, facts, reason))

    def resumed(self, facts: MessageFacts, reason: str) -> None:
        """The action-plan clock resumed at ``facts``."""
        self.pauses.append(segment(Step.RESUMED, facts, reason))

    def stopped(self, facts: MessageFacts, reason: str) -> None:
        """The action-plan clock stopped at ``facts`` (the action plan)."""
        self.action_plan = segment(Step.STOPPED, facts, reason)


class CycleView(Protocol):
    """What ``cycle_ledger`` reads of the engine's cycle."""

    number: int
    opening: MessageFacts
    account: Account
    action_plan_at: datetime | None
    paused_since: datetime | None
    pauses: list[tuple[datetime, datetime]]
    courtesies: list[Note]
    """The cycle's courtesy replies, each with why it is one."""
    trail: Trail

    @property
    def opened_at(self) -> datetime:
        """When the cycle's opening message arrived."""
        ...


def due_at(
    calendar: Calendar, cycle: CycleView, policy: ClockPolicy, pausable: bool, now: datetime
) -> datetime:
    """When the clock's target is reached, counting only time the clock ran.

    The engine's due time of a cycle's clock (the pausable one is the action plan). While
    the clock is paused the due time is shown as if it resumed now.
    """
    if not pausable or (not cycle.pauses and cycle.paused_since is None):
        return calendar.add(cycle.opened_at, policy.within)
    consumed = timedelta(0)
    start = cycle.opened_at
    for paused_at, resumed_at in cycle.pauses:
        consumed += calendar.elapsed(start, paused_at)
        start = resumed_at
    if cycle.paused_since is not None:
        consumed += calendar.elapsed(start, cycle.paused_since)
        start = max(now, cycle.paused_since)
    return calendar.add(start, policy.within - consumed)


def cycle_ledger(
    cycle: CycleView,
    rules: Rules,
    clocks: tuple[ClockStatus, ClockStatus],
    acknowledged_by: AcknowledgedBy | None,
    auto_ack_key: str,
    now: datetime,
) -> CycleLedger:
    """The ledger of one cycle, from the engine's clocks of it at ``now``.

    ``auto_ack_key`` names the cycle's auto-ack notice, the cause when it acknowledged.
    """
    policy = rules.policy_for(cycle.account)
    calendar = rules.calendar_for(policy)
    ack, plan = clocks
    opening = cycle.opening
    started = segment(Step.STARTED, opening, "client message")
    ack_segments = [started]
    if ack.stopped_at is not None:
        ack_segments.append(_ack_stop(cycle.trail, ack.stopped_at, acknowledged_by, auto_ack_key))
    counted = calendar.elapsed(opening.arrived_at, ack.stopped_at or now)
    ack_ledger = _clock(ack, policy, ack_segments, counted, _ZERO, now)
    closed = (
        sum((calendar.elapsed(p, r) for p, r in cycle.pauses), _ZERO) if cycle.pauses else _ZERO
    )
    paused = closed
    ends = [now]
    if cycle.paused_since is not None:
        paused += calendar.elapsed(cycle.paused_since, max(now, cycle.paused_since))
        ends.append(cycle.paused_since)
    if plan.stopped_at is not None:
        ends.append(plan.stopped_at)
    plan_segments = [started, *cycle.trail.pauses]
    if cycle.trail.action_plan is not None:
        plan_segments.append(cycle.trail.action_plan)
    counted = calendar.elapsed(opening.arrived_at, min(ends)) - closed
    plan_ledger = _clock(plan, policy, plan_segments, counted, paused, now)
    courtesies = tuple(cycle.courtesies)
    return CycleLedger(
        cycle.number, opening.message_id, opening.arrived_at, (ack_ledger, plan_ledger), courtesies
    )


_ZERO = timedelta(0)


def _ack_stop(trail: Trail, at: datetime, by: AcknowledgedBy | None, auto_ack_key: str) -> Segment:
    """The segment that stopped the acknowledge clock: a human reply or the auto-ack."""
    if by is AcknowledgedBy.HUMAN and trail.first_reply is not None:
        return segment(Step.STOPPED, trail.first_reply, "human reply")
    if trail.auto_ack is not None and trail.auto_ack.arrived_at == at:
        return segment(Step.STOPPED, trail.auto_ack, "auto-ack (its copy in the mailbox)")
    return Segment(Step.STOPPED, at, None, None, "auto-ack", notice_key=auto_ack_key)


def _clock(
    clock: ClockStatus,
    policy: Policy,
    segments: Sequence[Segment],
    counted: timedelta,
    paused: timedelta,
    now: datetime,
) -> ClockLedger:
    target = policy.acknowledge if clock.name is ClockName.ACKNOWLEDGE else policy.action_plan
    end = clock.stopped_at if clock.stopped_at is not None else now
    return ClockLedger(
        clock=clock.name,
        calendar=policy.calendar,
        within=target.within,
        segments=tuple(segments),
        counted=counted,
        paused=paused,
        due_at=clock.due_at,
        stopped_at=clock.stopped_at,
        breached=clock.breached,
        late_by=end - clock.due_at if clock.breached else None,
    )
