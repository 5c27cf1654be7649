"""The morning briefing: what each account owner has late, at risk and due today.

Pure: the evaluated conversations, the rules, the owner, the time and the owner's time
zone come in; a ``Briefing`` comes out. When a briefing is due, and the next instant one
will be, are answered here too, so that the service only has to ask and record.

Rules (docs/sla.md, "Morning briefing"): only running clocks of the current cycle are
listed, a paused action-plan clock (waiting on the client) is not. Each clock is in at
most one list, the first that fits:

- **late**: it ran past its due time and is still running;
- **at risk**: it is due within its warning window (the largest ``warn_before``, in the
  policy's calendar time) or, on a business calendar, before today's working hours end;
- **due today**: it is due before the end of the owner's local day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum

# ``_wall`` is the calendars' own wall-clock rule (skipped and repeated times), kept as one.
from sla_daemon.core.calendar import BusinessCalendar, _wall
from sla_daemon.core.model import (
    ClockName,
    ConversationState,
    ConversationStatus,
    Rules,
)

_ONE_DAY = timedelta(days=1)


class BriefingSection(StrEnum):
    """The list of the briefing an item is in."""

    LATE = "late"
    AT_RISK = "at_risk"
    DUE_TODAY = "due_today"


@dataclass(frozen=True)
class BriefingItem:
    """One running clock the owner should know about this morning."""

    section: BriefingSection
    conversation_id: str
    account: str
    client: str | None
    subject: str
    clock: ClockName
    due_at: datetime


@dataclass(frozen=True)
class Briefing:
    """One owner's briefing for one local day; each list is sorted by due time."""

    owner: str
    day: date
    zone: tzinfo
    late: tuple[BriefingItem, ...] = ()
    at_risk: tuple[BriefingItem, ...] = ()
    due_today: tuple[BriefingItem, ...] = ()

    @property
    def is_empty(self) -> bool:
        """Whether there is nothing late, at risk or due today (no mail is sent)."""
        return not (self.late or self.at_risk or self.due_today)

    @property
    def items(self) -> tuple[BriefingItem, ...]:
        """Every item: the late ones, then those at risk, then those due today."""
        return self.late + self.at_risk + self.due_today


def briefing_key(owner: str, day: date) -> str:
    """The outbox key of ``owner``'s briefing for local date ``day``: decided once a day."""
    return f"briefing|{owner}|{day.isoformat()}"


def owners(rules: Rules) -> tuple[str, ...]:
    """Every distinct account owner, in the order the accounts are configured."""
    return tuple(dict.fromkeys(account.owner for account in rules.accounts))


def owner_zone(rules: Rules, owner: str, default: tzinfo) -> tzinfo:
    """The owner's time zone: the calendar of their first account's policy, else ``default``.

    A ``24x7`` calendar has no time zone of its own, so its owners get ``default``.
    """
    for account in rules.accounts:
        if account.owner == owner:
            calendar = rules.calendar_for(rules.policy_for(account))
            return calendar.zone if isinstance(calendar, BusinessCalendar) else default
    return default


def briefing_instant(day: date, at: time, zone: tzinfo) -> datetime:
    """The UTC instant of wall-clock ``at`` on local date ``day`` in ``zone``.

    On the day the clocks change this is still ``at`` on the wall. A wall time the
    clocks skip means the moment they jump; one that happens twice, its first occurrence
    (as for calendars).
    """
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
    return _wall(midnight, at.hour * 60 + at.minute)


def briefing_due(
    now: datetime, at: time, zone: tzinfo, last_decided_day: date | None
) -> date | None:
    """The local day whose briefing is due at ``now``, or None.

    It is the owner's current local day, once ``at`` has passed on it, unless that day's
    briefing was already decided. A day that has ended never gets its briefing late:
    after a stop over 08:00 the next briefing is the next day's.
    """
    today = now.astimezone(zone).date()
    if last_decided_day is not None and last_decided_day >= today:
        return None
    return today if now >= briefing_instant(today, at, zone) else None


def next_briefing_at(now: datetime, at: time, zone: tzinfo) -> datetime:
    """The first briefing instant after ``now`` (today's if still ahead, else the next)."""
    day = now.astimezone(zone).date()
    while True:
        instant = briefing_instant(day, at, zone)
        if instant > now:
            return instant
        day += _ONE_DAY


def build_briefing(
    statuses: Iterable[ConversationStatus],
    rules: Rules,
    owner: str,
    now: datetime,
    zone: tzinfo,
) -> Briefing:
    """``owner``'s briefing at ``now`` for their local day in ``zone``.

    ``statuses`` may name a conversation twice (a check-in carries the status of the
    account's latest conversation); it is listed once.
    """
    today = now.astimezone(zone).date()
    end_of_day = _start_of(today + _ONE_DAY, zone)
    sections: dict[BriefingSection, list[BriefingItem]] = {s: [] for s in BriefingSection}
    seen: set[str] = set()
    for status in statuses:
        account = rules.account_named(status.account) if status.account else None
        if account is None or account.owner != owner or status.id in seen:
            continue
        seen.add(status.id)
        if status.cycle == 0 or status.state is ConversationState.CLOSED:
            continue
        policy = rules.policy_for(account)
        calendar = rules.calendar_for(policy)
        for clock in status.clocks:
            if clock.stopped_at is not None:
                continue
            paused = status.state is ConversationState.WAITING_ON_CLIENT
            if paused and clock.name is ClockName.ACTION_PLAN:
                continue  # waiting on the client: the clock does not run, nothing to do
            clock_policy = (
                policy.acknowledge if clock.name is ClockName.ACKNOWLEDGE else policy.action_plan
            )
            window = max(clock_policy.warn_before, default=None)
            if clock.breached:
                section = BriefingSection.LATE
            elif (window is not None and calendar.elapsed(now, clock.due_at) <= window) or (
                isinstance(calendar, BusinessCalendar)
                and clock.due_at < _end_of_working_day(calendar, now)
            ):
                section = BriefingSection.AT_RISK
            elif clock.due_at < end_of_day:
                section = BriefingSection.DUE_TODAY
            else:
                continue
            sections[section].append(
                BriefingItem(
                    section=section,
                    conversation_id=status.id,
                    account=account.name,
                    client=status.client,
                    subject=status.subject,
                    clock=clock.name,
                    due_at=clock.due_at,
                )
            )

    def ordered(section: BriefingSection) -> tuple[BriefingItem, ...]:
        items = sections[section]
        return tuple(sorted(items, key=lambda i: (i.due_at, i.conversation_id, i.clock)))

    return Briefing(
        owner=owner,
        day=today,
        zone=zone,
        late=ordered(BriefingSection.LATE),
        at_risk=ordered(BriefingSection.AT_RISK),
        due_today=ordered(BriefingSection.DUE_TODAY),
    )


def _end_of_working_day(calendar: BusinessCalendar, now: datetime) -> datetime:
    """The end of today's working hours on ``calendar``: its next local midnight.

    Deadlines on a business calendar fall inside working hours, so one due before the
    calendar's next local midnight is due within the rest of today's working hours.
    """
    return _start_of(now.astimezone(calendar.zone).date() + _ONE_DAY, calendar.zone)


def _start_of(day: date, zone: tzinfo) -> datetime:
    """The UTC instant local date ``day`` begins in ``zone``."""
    return _wall(datetime(day.year, day.month, day.day, tzinfo=zone), 0)
