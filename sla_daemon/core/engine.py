"""The SLA engine: a conversation's history and the time in, its status and decisions out.

``evaluate`` is a pure function. It is called for every open conversation on every cycle
and by ``status``; because each decision carries a deterministic key, taking the same
decision twice is harmless: the outbox keeps the first and ignores the rest.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sla_daemon.core.aftercare import after_plan
from sla_daemon.core.automated import NOTICE_HEADER
from sla_daemon.core.classify import classify, courtesy_reason, is_team_address, marker_reason
from sla_daemon.core.ledger import CycleLedger, Ledger, Note, Trail, cycle_ledger, due_at, note
from sla_daemon.core.model import (
    Account,
    AcknowledgedBy,
    ClockName,
    ClockPolicy,
    ClockStatus,
    ConversationState,
    ConversationStatus,
    Decision,
    Evaluation,
    MessageFacts,
    NoticeKind,
    Policy,
    Role,
    Rules,
    SentNotice,
)
from sla_daemon.core.next_check import next_check


def notice_key(opening_message_id: str, clock: ClockName, level: str, repetition: int = 0) -> str:
    """The deterministic identity of a notice: decided once, ever.

    The cycle is named by the Message-ID of the client message that opened it, so the
    key survives the merge of two conversations that turn out to be one thread.
    """
    return f"{opening_message_id}|{clock.value}|{level}|{repetition}"


def auto_ack_key(opening_message_id: str) -> str:
    """Key of the automatic acknowledgement of a cycle (at most one per cycle)."""
    return notice_key(opening_message_id, ClockName.ACKNOWLEDGE, "auto_ack")


@dataclass
class _Cycle:
    """One client request and the team's answers to it (mutable while the history is read)."""

    number: int
    opening: MessageFacts
    account: Account
    first_human_response_at: datetime | None = None
    action_plan_at: datetime | None = None
    paused_since: datetime | None = None
    pauses: list[tuple[datetime, datetime]] = field(default_factory=list)
    auto_ack_seen_at: datetime | None = None
    courtesies: list[Note] = field(default_factory=list)
    trail: Trail = field(default_factory=Trail)

    @property
    def opened_at(self) -> datetime:
        return self.opening.arrived_at


def _cycles(messages: Sequence[MessageFacts], rules: Rules, ignored: list[Note]) -> list[_Cycle]:
    """Replay the history in arrival order and cut it into cycles; note mail it ignores."""
    cycles: list[_Cycle] = []
    for facts in messages:
        verdict = classify(facts, rules)
        current = cycles[-1] if cycles else None
        if current is not None and _is_our_auto_ack_of(facts, current.opening):
            # Our own auto-ack, found in Sent or a copy in INBOX: it acknowledges (as
            # "auto"), even when the outbox that sent it is gone; never a human reply.
            if current.auto_ack_seen_at is None:
                current.auto_ack_seen_at = facts.arrived_at
                current.trail.auto_ack = facts
            continue
        if verdict.role in (Role.AUTOMATED, Role.OTHER):
            ignored.append(note(facts, f"{verdict.role.value}: {verdict.reason}"))
        if verdict.role is Role.CLIENT and verdict.account is not None:
            courtesy = courtesy_reason(facts, rules.markers.courtesy)
            if courtesy is not None:
                # "Thanks, that works!" neither opens a cycle nor answers a question the
                # team is waiting on; it is kept for the ledger.
                if current is not None:
                    current.courtesies.append(note(facts, courtesy))
                continue
            if current is None or current.action_plan_at is not None:
                cycles.append(_Cycle(len(cycles) + 1, facts, verdict.account))
            elif current.paused_since is not None:
                current.pauses.append((current.paused_since, facts.arrived_at))
                current.paused_since = None
                current.trail.resumed(facts, "client message")
        elif verdict.role is Role.TEAM and current is not None and verdict.account is not None:
            if current.first_human_response_at is None:
                current.first_human_response_at = facts.arrived_at
                current.trail.first_reply = facts
            plan = marker_reason(facts, rules.markers.action_plan)
            if current.action_plan_at is None and plan:
                current.action_plan_at = facts.arrived_at
                current.trail.stopped(facts, f"action plan: {plan}")
            waiting = marker_reason(facts, rules.markers.waiting_on_client)
            if waiting and current.paused_since is None and current.action_plan_at is None:
                current.paused_since = facts.arrived_at
                current.trail.paused(facts, f"waiting: {waiting}")
            elif not waiting and current.paused_since is not None:
                current.pauses.append((current.paused_since, facts.arrived_at))
                current.paused_since = None
                current.trail.resumed(facts, "team message without the waiting marker")
    return cycles


def _is_our_auto_ack_of(facts: MessageFacts, opening: MessageFacts) -> bool:
    """Whether ``facts`` is the auto-ack we sent in reply to ``opening``."""
    if facts.in_reply_to != opening.message_id:
        return False
    kind = (facts.first_headers.get(NOTICE_HEADER) or "").strip().lower()
    return kind == NoticeKind.AUTO_ACK.value


def _breached(stopped_at: datetime | None, due_at: datetime, now: datetime) -> bool:
    """A clock is breached once it runs past its due time, or stopped after it."""
    return now >= due_at if stopped_at is None else stopped_at > due_at


def _clock_decisions(
    conversation_id: str,
    cycle: _Cycle,
    clock: ClockStatus,
    policy: Policy,
    clock_policy: ClockPolicy,
    notices: Mapping[str, SentNotice],
    now: datetime,
) -> list[Decision]:
    """The warning or breach due for one running clock now (the most urgent only)."""
    if clock.stopped_at is not None:
        return []
    account = cycle.account
    if now >= clock.due_at:
        level, since = "breach-1", clock.due_at
        recipients = tuple(dict.fromkeys((account.owner, *account.escalate_to)))
        second = policy.second_level
        if second is not None and now >= clock.due_at + second.after:
            # The breach has lasted long enough to go one level up; level 2 has its own
            # keys, so it is announced once even after level-1 reminders.
            level, since = "breach-2", clock.due_at + second.after
            recipients = tuple(dict.fromkeys((*recipients, *second.to)))
        repetition = 0
        if policy.re_escalate_every:
            repetition = int((now - since) / policy.re_escalate_every)
        earlier = notice_key(cycle.opening.message_id, clock.name, level, 0)[:-1]
        reminder = sum(
            1
            for key, notice in notices.items()
            if key.startswith(earlier) and notice.sent_at is not None
        )
        seen_at = cycle.opening.seen_at
        return [
            Decision(
                key=notice_key(cycle.opening.message_id, clock.name, level, repetition),
                kind=NoticeKind.BREACH,
                conversation_id=conversation_id,
                cycle=cycle.number,
                recipients=recipients,
                clock=clock.name,
                level=level,
                repetition=repetition,
                due_at=clock.due_at,
                trigger_message_id=cycle.opening.message_id,
                reminder=reminder,
                pre_existing=repetition == 0 and seen_at is not None and seen_at >= since,
            )
        ]
    passed = [w for w in clock_policy.warn_before if now >= clock.due_at - w]
    if not passed:
        return []
    most_urgent = min(passed)
    level = f"warn-{int(most_urgent.total_seconds())}s"
    return [
        Decision(
            key=notice_key(cycle.opening.message_id, clock.name, level),
            kind=NoticeKind.WARNING,
            conversation_id=conversation_id,
            cycle=cycle.number,
            recipients=(account.owner,),
            clock=clock.name,
            level=level,
            due_at=clock.due_at,
            trigger_message_id=cycle.opening.message_id,
        )
    ]


def _auto_ack_decision(
    conversation_id: str, cycle: _Cycle, policy: Policy, rules: Rules, now: datetime
) -> Decision | None:
    """The automatic acknowledgement of the cycle's opening message, or why not."""
    if not policy.auto_ack:
        return None
    opening = cycle.opening
    reply_to = opening.reply_to[0] if opening.reply_to else opening.sender
    assert reply_to is not None  # a client message always has a sender
    suppressed: str | None = None
    if cycle.first_human_response_at is not None:
        suppressed = "a team member has already replied"
    elif now - cycle.opened_at > rules.auto_ack_max_age:
        suppressed = (
            f"the message is older than auto_ack_max_age "
            f"({int(rules.auto_ack_max_age.total_seconds())}s)"
        )
    elif is_team_address(reply_to.email, rules):
        suppressed = f"the reply address {reply_to.email} belongs to the team"
    return Decision(
        key=auto_ack_key(opening.message_id),
        kind=NoticeKind.AUTO_ACK,
        conversation_id=conversation_id,
        cycle=cycle.number,
        recipients=(reply_to.email,),
        clock=ClockName.ACKNOWLEDGE,
        level="auto_ack",
        trigger_message_id=opening.message_id,
        suppressed_reason=suppressed,
    )


def _clocks(
    cycle: _Cycle, rules: Rules, notices: Mapping[str, SentNotice], now: datetime
) -> tuple[tuple[ClockStatus, ClockStatus], AcknowledgedBy | None]:
    """The cycle's two clocks at ``now``, and what acknowledged it (the first that counts)."""
    policy = rules.policy_for(cycle.account)
    calendar = rules.calendar_for(policy)
    auto_ack = notices.get(auto_ack_key(cycle.opening.message_id))
    auto_ack_at = cycle.auto_ack_seen_at
    if auto_ack is not None and auto_ack.sent_at is not None and auto_ack.sent_at <= now:
        auto_ack_at = min(auto_ack.sent_at, auto_ack_at or auto_ack.sent_at)
    candidates: list[tuple[datetime, AcknowledgedBy]] = []
    if cycle.first_human_response_at is not None:
        candidates.append((cycle.first_human_response_at, AcknowledgedBy.HUMAN))
    if auto_ack_at is not None and policy.counts_auto_ack:
        candidates.append((auto_ack_at, AcknowledgedBy.AUTO))
    acknowledged_at, acknowledged_by = min(candidates) if candidates else (None, None)
    ack_due = due_at(calendar, cycle, policy.acknowledge, False, now)
    plan_due = due_at(calendar, cycle, policy.action_plan, True, now)
    ack_late = _breached(acknowledged_at, ack_due, now)
    plan_late = cycle.paused_since is None and _breached(cycle.action_plan_at, plan_due, now)
    start = cycle.opened_at
    return (
        ClockStatus(ClockName.ACKNOWLEDGE, start, ack_due, acknowledged_at, ack_late),
        ClockStatus(ClockName.ACTION_PLAN, start, plan_due, cycle.action_plan_at, plan_late),
    ), acknowledged_by


def _cycle_ledgers(
    cycles: Sequence[_Cycle],
    rules: Rules,
    notices: Mapping[str, SentNotice],
    now: datetime,
    last: tuple[tuple[ClockStatus, ClockStatus], AcknowledgedBy | None],
) -> Iterator[CycleLedger]:
    """The ledger of every cycle, from the same clocks the status shows (``last``'s)."""
    for cycle in cycles:
        clocks, by = last if cycle is cycles[-1] else _clocks(cycle, rules, notices, now)
        yield cycle_ledger(cycle, rules, clocks, by, auto_ack_key(cycle.opening.message_id), now)


def evaluate(
    conversation_id: str,
    messages: Sequence[MessageFacts],
    rules: Rules,
    notices: Mapping[str, SentNotice],
    now: datetime,
) -> Evaluation:
    """Work out where a conversation stands at ``now`` and what should be sent.

    ``messages`` is the conversation's stored history (any order; mail that arrived after
    ``now`` is ignored so that ``status --as-of`` can look back); ``notices`` are the
    outbox's decisions by key (only those sent by ``now`` count).
    """
    history = sorted(
        (m for m in messages if m.arrived_at <= now), key=lambda m: (m.arrived_at, m.message_id)
    )
    ignored: list[Note] = []
    cycles = _cycles(history, rules, ignored)
    subject = history[0].subject if history else ""
    message_ids = tuple(m.message_id for m in history)
    if not cycles:
        return Evaluation(
            ConversationStatus(
                id=conversation_id,
                account=None,
                subject=subject,
                client=None,
                state=ConversationState.CLOSED,
                opened_at=None,
                cycle=0,
                acknowledged_at=None,
                acknowledged_by=None,
                first_human_response_at=None,
                action_plan_at=None,
                acknowledge_due=None,
                action_plan_due=None,
                breaches=(),
                message_ids=message_ids,
                ledger=Ledger(now, (), tuple(ignored)),
            )
        )
    cycle = cycles[-1]
    policy = rules.policy_for(cycle.account)

    auto_ack = notices.get(auto_ack_key(cycle.opening.message_id))
    clocks, acknowledged_by = _clocks(cycle, rules, notices, now)
    acknowledged_at, ack_due, plan_due = clocks[0].stopped_at, clocks[0].due_at, clocks[1].due_at

    if acknowledged_at is None:
        state = ConversationState.AWAITING_ACK
    elif cycle.action_plan_at is not None:
        state = ConversationState.ACTION_PLAN_SENT
        aftercare = after_plan(
            conversation_id,
            cycle.number,
            cycle.opening,
            cycle.account,
            policy,
            rules.calendar_for(policy),
            cycle.action_plan_at,
            history,
            now,
        )
    elif cycle.paused_since is not None:
        state = ConversationState.WAITING_ON_CLIENT
    else:
        state = ConversationState.AWAITING_ACTION_PLAN

    decisions: list[Decision] = []
    ack_decision = _auto_ack_decision(conversation_id, cycle, policy, rules, now)
    if ack_decision is not None and auto_ack is None and cycle.auto_ack_seen_at is None:
        decisions.append(ack_decision)
    decisions += _clock_decisions(
        conversation_id, cycle, clocks[0], policy, policy.acknowledge, notices, now
    )
    if cycle.paused_since is None:
        decisions += _clock_decisions(
            conversation_id, cycle, clocks[1], policy, policy.action_plan, notices, now
        )
    if state is ConversationState.ACTION_PLAN_SENT:
        if aftercare.closed_at is not None:  # a closed conversation sends nothing more
            state, decisions = ConversationState.CLOSED, []
        elif aftercare.follow_up is not None:
            decisions.append(aftercare.follow_up)

    opening = cycle.opening
    status = ConversationStatus(
        id=conversation_id,
        account=cycle.account.name,
        subject=opening.subject,
        client=opening.sender.email if opening.sender else None,
        state=state,
        opened_at=cycle.opened_at,
        cycle=cycle.number,
        acknowledged_at=acknowledged_at,
        acknowledged_by=acknowledged_by,
        first_human_response_at=cycle.first_human_response_at,
        action_plan_at=cycle.action_plan_at,
        acknowledge_due=ack_due,
        action_plan_due=plan_due,
        breaches=tuple(c.name for c in clocks if c.breached),
        message_ids=message_ids,
        opening_message_id=opening.message_id,
        clocks=clocks,
        ledger=Ledger(
            now,
            tuple(_cycle_ledgers(cycles, rules, notices, now, (clocks, acknowledged_by))),
            tuple(ignored),
        ),
    )
    checks = [next_check(clocks[0], policy.acknowledge, policy, now)]
    if cycle.paused_since is None:
        checks.append(next_check(clocks[1], policy.action_plan, policy, now))
    if state is ConversationState.ACTION_PLAN_SENT:
        checks.append(aftercare.next_check_at)
    next_check_at = min((c for c in checks if c is not None), default=None)
    return Evaluation(status, tuple(decisions), next_check_at)
