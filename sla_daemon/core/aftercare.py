"""After the action plan: follow-ups, closing quiet conversations, and account check-ins.

Pure functions over plain data, like the engine. ``after_plan`` looks at one
conversation whose current cycle has its action plan; ``account_contacts`` and
``check_in`` look across every conversation of an account, from what the service
gathers. Every duration is counted on the calendar of the account's policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sla_daemon.core.automated import NOTICE_HEADER
from sla_daemon.core.calendar import Calendar
from sla_daemon.core.classify import classify
from sla_daemon.core.model import (
    Account,
    ConversationStatus,
    Decision,
    Evaluation,
    MessageFacts,
    NoticeKind,
    Policy,
    Role,
    Rules,
)


def follow_up_key(opening_message_id: str) -> str:
    """Key of the follow-up reminder of a cycle (at most one per cycle)."""
    return f"{opening_message_id}|follow_up"


def check_in_key(account: str, period_start: datetime) -> str:
    """Key of the check-in reminder of an account for the period that began then."""
    return f"check_in|{account}|{period_start.isoformat(timespec='seconds')}"


@dataclass(frozen=True)
class AfterPlan:
    """Where a conversation stands after its action plan."""

    closed_at: datetime | None = None
    """When it closed (``close_after`` of quiet), or None while it is open."""
    follow_up: Decision | None = None
    """The follow-up reminder due now (the outbox keeps the first one per cycle)."""
    next_check_at: datetime | None = None
    """The next follow-up or close moment after ``now``."""


def _is_our_notice(facts: MessageFacts) -> bool:
    return bool((facts.header(NOTICE_HEADER) or "").strip())


def after_plan(
    conversation_id: str,
    cycle: int,
    opening: MessageFacts,
    account: Account,
    policy: Policy,
    calendar: Calendar,
    plan_at: datetime,
    history: Sequence[MessageFacts],
    now: datetime,
) -> AfterPlan:
    """Follow-up and closing of a cycle whose action plan was sent at ``plan_at``.

    ``history`` is the conversation up to ``now`` in arrival order. Every message after
    the plan (from anyone; the daemon's own notices aside) ends a quiet period. The
    conversation closes at the end of the first quiet period of ``close_after`` and
    stays closed until a client message opens a new cycle. The follow-up is due when the
    current quiet period has lasted ``follow_up_after``.
    """
    moments = [plan_at]
    moments += [m.arrived_at for m in history if m.arrived_at > plan_at and not _is_our_notice(m)]
    if policy.close_after is not None:
        for start, end in zip(moments, [*moments[1:], now], strict=True):
            closes = calendar.add(start, policy.close_after)
            if closes <= end:
                return AfterPlan(closed_at=closes)
    quiet_since = moments[-1]
    upcoming: list[datetime] = []
    follow_up = None
    if policy.close_after is not None:
        upcoming.append(calendar.add(quiet_since, policy.close_after))
    if policy.follow_up_after is not None:
        due = calendar.add(quiet_since, policy.follow_up_after)
        if now >= due:
            follow_up = Decision(
                key=follow_up_key(opening.message_id),
                kind=NoticeKind.FOLLOW_UP,
                conversation_id=conversation_id,
                cycle=cycle,
                recipients=(account.owner,),
                level="follow_up",
                due_at=due,
                trigger_message_id=opening.message_id,
                quiet_since=quiet_since,
            )
        else:
            upcoming.append(due)
    later = [moment for moment in upcoming if moment > now]
    return AfterPlan(None, follow_up, min(later) if later else None)


@dataclass(frozen=True)
class AccountContact:
    """What the check-in of one account needs from all of its conversations."""

    account: str
    first_client_at: datetime
    """The first message the client wrote (only accounts that wrote are tracked)."""
    last_team_at: datetime | None
    """The latest team message to the client, if any."""

    def merged(self, other: AccountContact) -> AccountContact:
        """The contact over both sets of conversations."""
        team = [t for t in (self.last_team_at, other.last_team_at) if t is not None]
        return AccountContact(
            self.account,
            min(self.first_client_at, other.first_client_at),
            max(team) if team else None,
        )


def account_contacts(
    histories: Iterable[Sequence[MessageFacts]], rules: Rules, now: datetime
) -> dict[str, AccountContact]:
    """The first client message and the latest team message to it, per account.

    ``histories`` are the stored conversations; mail that arrived after ``now`` is
    ignored. A team message counts for the account of its external recipients.
    """
    first: dict[str, datetime] = {}
    last_team: dict[str, datetime] = {}
    for history in histories:
        for facts in history:
            if facts.arrived_at > now:
                continue
            verdict = classify(facts, rules)
            if verdict.account is None:
                continue
            name, at = verdict.account.name, facts.arrived_at
            if verdict.role is Role.CLIENT:
                first[name] = min(first.get(name, at), at)
            elif verdict.role is Role.TEAM:
                last_team[name] = max(last_team.get(name, at), at)
    return {
        name: AccountContact(name, first_at, last_team.get(name))
        for name, first_at in first.items()
    }


def check_in(
    account: Account, contact: AccountContact, calendar: Calendar, now: datetime
) -> tuple[Decision | None, datetime | None]:
    """The check-in reminder due now for ``account``, and the next moment one falls due.

    The quiet time runs from the latest team message to the client (from the client's
    first message when the team never wrote). Each full ``check_in_every`` of it is a
    period with its own key, named by the moment it began, so one reminder per period.
    """
    every = account.check_in_every
    if every is None or not every:
        return None, None
    since = contact.last_team_at or contact.first_client_at
    if since > now:
        return None, None
    periods = int(calendar.elapsed(since, now) / every)
    next_at = calendar.add(since, (periods + 1) * every)
    if periods < 1:
        return None, next_at
    start = calendar.add(since, periods * every)
    decision = Decision(
        key=check_in_key(account.name, start),
        kind=NoticeKind.CHECK_IN,
        conversation_id="",
        cycle=0,
        recipients=(account.owner,),
        level="check_in",
        repetition=periods - 1,
        due_at=start,
        quiet_since=since,
    )
    return decision, next_at


def check_in_evaluations(
    evaluations: Iterable[Evaluation],
    contacts: Mapping[str, AccountContact],
    rules: Rules,
    now: datetime,
) -> list[Evaluation]:
    """One evaluation per account with ``check_in_every``: its check-in, if due now.

    It carries the status of the account's latest conversation (what the owner may want
    to pick up on); the check-in itself belongs to no conversation (``conversation_id``
    is empty). Accounts whose client never wrote are left alone.
    """
    latest: dict[str, ConversationStatus] = {}
    for evaluation in evaluations:
        status = evaluation.status
        if status.account is None or status.opened_at is None:
            continue
        known = latest.get(status.account)
        if known is None or (known.opened_at is not None and status.opened_at > known.opened_at):
            latest[status.account] = status
    result = []
    for name, contact in sorted(contacts.items()):
        account = rules.account_named(name)
        if account is None or account.check_in_every is None or name not in latest:
            continue
        calendar = rules.calendar_for(rules.policy_for(account))
        decision, next_at = check_in(account, contact, calendar, now)
        status = latest[name]
        decisions: tuple[Decision, ...] = ()
        if decision is not None:
            decisions = (replace(decision, trigger_message_id=status.opening_message_id),)
        result.append(Evaluation(status, decisions, next_at))
    return result
