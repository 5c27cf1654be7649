"""What the status page at ``/`` shows, as plain values built from evaluations and a time.

Pure functions: the daemon's latest evaluations, the rules they were made with, the
display time zone and the time of the request go in; rows, filter choices and charts
come out. Nothing here reads a database or a clock, so every figure is unit-tested; the
HTML is drawn by ``adapters.status_html`` and served by ``adapters.web``.

A conversation is on the page while the team owes the client something: a clock is
running (awaiting the acknowledgement or the action plan) or paused while the team
waits on the client. Rows are sorted by their next deadline; paused ones come last.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from sla_daemon.core.model import (
    ClockName,
    ClockStatus,
    ConversationState,
    ConversationStatus,
    Evaluation,
    Rules,
)
from sla_daemon.core.report import NO_ACCOUNT, NO_OWNER, Report, build_report
from sla_daemon.explain_view import explain_text
from sla_daemon.report_html import compliance_chart

CHART_DAYS = 30
"""How far back the compliance charts look."""

OPEN_STATES = (
    ConversationState.AWAITING_ACK,
    ConversationState.AWAITING_ACTION_PLAN,
    ConversationState.WAITING_ON_CLIENT,
)
"""The states in which the team still owes the client something."""

CLOCK_LABELS = {ClockName.ACKNOWLEDGE: "acknowledge", ClockName.ACTION_PLAN: "action plan"}


class Urgency(StrEnum):
    """How a row is marked: the CSS class and the label it carries."""

    LATE = "late"
    AT_RISK = "at-risk"
    ON_TRACK = "on-track"
    PAUSED = "paused"


@dataclass(frozen=True)
class ConversationRow:
    """One open conversation as the page lists it."""

    id: str
    subject: str
    """As the client wrote it: untrusted text, escaped when drawn."""
    client: str
    account: str
    owner: str
    state: str
    clock: str
    """The clock whose deadline is next (``acknowledge``, ``action plan``), or empty."""
    due_at: datetime | None
    """That deadline; None while the clock is paused."""
    warn_at: datetime | None
    """When the first warning offset of that clock passes (None: it has none)."""
    due_local: str
    urgency: Urgency
    ledger: str
    """The conversation's ledger, as ``explain`` prints it."""
    visible: bool = True
    """False when the page's account or owner filter leaves the row out."""


@dataclass(frozen=True)
class AccountChart:
    """One account's compliance over the last ``CHART_DAYS`` days."""

    account: str
    owner: str
    cycles: int
    compliant: int
    svg: str
    """Inline SVG drawn by ``report_html.compliance_chart`` (already escaped)."""
    visible: bool = True

    @property
    def share(self) -> str:
        """The share of cycles with both clocks within target, or a dash without cycles."""
        return f"{self.compliant / self.cycles:.0%}" if self.cycles else "-"


@dataclass(frozen=True)
class StatusPage:
    """Everything the page shows, as of ``now``."""

    now: datetime
    evaluated_at: datetime | None
    """When the daemon last evaluated (None before its first cycle)."""
    evaluated_local: str
    """``evaluated_at`` in the display zone, with seconds (a dash without it)."""
    zone_name: str
    rows: tuple[ConversationRow, ...]
    accounts: tuple[str, ...]
    owners: tuple[str, ...]
    account_filter: str
    owner_filter: str
    charts: tuple[AccountChart, ...]

    @property
    def counts(self) -> Mapping[Urgency, int]:
        """How many visible rows carry each mark."""
        return {u: sum(r.urgency is u for r in self.rows if r.visible) for u in Urgency}


def _local(value: datetime, zone: tzinfo) -> str:
    return value.astimezone(zone).strftime("%a %d %b %H:%M")


def _next_clock(status: ConversationStatus) -> ClockStatus | None:
    running = [c for c in status.clocks if c.stopped_at is None]
    return min(running, key=lambda c: c.due_at, default=None)


def _warn_at(rules: Rules, account: str | None, clock: ClockStatus) -> datetime | None:
    """The due time less the clock's largest warning offset, as the engine counts it."""
    found = rules.account_named(account) if account else None
    if found is None:
        return None
    policy = rules.policy_for(found)
    offsets = policy.acknowledge if clock.name is ClockName.ACKNOWLEDGE else policy.action_plan
    return clock.due_at - max(offsets.warn_before) if offsets.warn_before else None


def urgency(due_at: datetime | None, warn_at: datetime | None, now: datetime) -> Urgency:
    """Late once the deadline has passed, at risk once a warning offset has."""
    if due_at is None:
        return Urgency.PAUSED
    if now >= due_at:
        return Urgency.LATE
    if warn_at is not None and now >= warn_at:
        return Urgency.AT_RISK
    return Urgency.ON_TRACK


def conversation_rows(
    evaluations: Sequence[Evaluation], rules: Rules, zone: tzinfo, now: datetime
) -> list[ConversationRow]:
    """The open conversations, next deadline first, paused ones last.

    A conversation that appears more than once (a check-in carries the status of its
    account's latest conversation) is listed once.
    """
    owners = {a.name: a.owner for a in rules.accounts}
    rows: dict[str, ConversationRow] = {}
    for evaluation in evaluations:
        status = evaluation.status
        if status.cycle == 0 or status.state not in OPEN_STATES or status.id in rows:
            continue
        clock = _next_clock(status)
        paused = status.state is ConversationState.WAITING_ON_CLIENT or clock is None
        due_at = None if paused or clock is None else clock.due_at
        warn_at = (
            None if due_at is None or clock is None else _warn_at(rules, status.account, clock)
        )
        account = status.account or NO_ACCOUNT
        rows[status.id] = ConversationRow(
            id=status.id,
            subject=status.subject or "(no subject)",
            client=status.client or "-",
            account=account,
            owner=owners.get(account, NO_OWNER),
            state=status.state.value.replace("_", " "),
            clock="" if clock is None else CLOCK_LABELS[clock.name],
            due_at=due_at,
            warn_at=warn_at,
            due_local=_local(due_at, zone) if due_at else "paused",
            urgency=urgency(due_at, warn_at, now),
            ledger=explain_text(status, zone),
        )
    return sorted(rows.values(), key=lambda r: (r.due_at is None, r.due_at or now, r.id))


def account_charts(report: Report, zone: tzinfo) -> list[AccountChart]:
    """One compliance chart per account of ``report``, each drawn from its own cycles."""
    charts = []
    for index, row in enumerate(report.accounts):
        mine = tuple(c for c in report.cycles if c.account == row.name)
        svg = compliance_chart(replace(report, cycles=mine), zone, name=f"compliance-{index}")
        charts.append(
            AccountChart(row.name, row.owner, len(mine), sum(c.compliant for c in mine), svg)
        )
    return charts


def status_page(
    evaluations: Sequence[Evaluation],
    rules: Rules,
    zone: tzinfo,
    now: datetime,
    *,
    evaluated_at: datetime | None,
    account: str = "",
    owner: str = "",
) -> StatusPage:
    """The page at ``now``, with rows and charts outside ``account``/``owner`` hidden.

    An empty filter shows everything; a filter naming nobody known hides everything,
    as a shared link to a removed account should.
    """
    rows = conversation_rows(evaluations, rules, zone, now)
    statuses = {e.status.id: e.status for e in evaluations}.values()
    since = now - timedelta(days=CHART_DAYS)
    report = build_report(statuses, rules, (), since, now, now)
    charts = account_charts(report, zone)

    def shown(row_account: str, row_owner: str) -> bool:
        return account in ("", row_account) and owner in ("", row_owner)

    accounts = sorted({a.name for a in rules.accounts} | {r.account for r in rows})
    owners = sorted({a.owner for a in rules.accounts} | {r.owner for r in rows})
    return StatusPage(
        now=now,
        evaluated_at=evaluated_at,
        evaluated_local=(
            evaluated_at.astimezone(zone).strftime("%a %d %b %H:%M:%S") if evaluated_at else "-"
        ),
        zone_name=str(now.astimezone(zone).tzname()),
        rows=tuple(replace(r, visible=shown(r.account, r.owner)) for r in rows),
        accounts=tuple(accounts),
        owners=tuple(owners),
        account_filter=account,
        owner_filter=owner,
        charts=tuple(replace(c, visible=shown(c.account, c.owner)) for c in charts),
    )
