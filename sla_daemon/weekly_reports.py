"""The weekly report: decided once a week, recorded in the outbox, sent like every notice.

Every cycle asks whether the latest scheduled report (``core.weekly_report``) is
decided. When it is not, the report of its seven days is built from the cycle's
evaluations with the same ``build_report`` as ``sla-daemon report``, rendered with its
charts and recorded ``pending`` under ``weekly_report|<ISO week>`` with a delivery per
recipient; the outbox's flush sends it (retries included). A report whose week has
passed before it could be decided is never sent late; that is logged once, when the next
one is decided.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, tzinfo
from email.message import EmailMessage
from typing import Protocol

import structlog

from sla_daemon.briefings import BriefingStore
from sla_daemon.core.model import Evaluation, NoticeKind, Rules
from sla_daemon.core.report import NoticeRecord, Report, build_report
from sla_daemon.core.weekly_report import (
    ReportWeek,
    WeeklySchedule,
    next_report_at,
    skipped_week,
    weekly_report_due,
)
from sla_daemon.outbox import OutboxReport

log = structlog.get_logger(__name__)

TREND_WEEKS = 8
"""How many weeks, the reported one last, the weekly mail's compliance chart shows."""


class WeeklyReportMailRenderer(Protocol):
    """Renders the weekly report (``adapters.render_report.WeeklyReportRenderer``)."""

    def render_weekly_report(
        self,
        key: str,
        report: Report,
        zone: tzinfo,
        recipients: Sequence[str],
        now: datetime,
        trend: Report | None = None,
    ) -> EmailMessage:
        """Build the report mail with its charts (compliance from ``trend`` when given)."""
        ...


class NoticeRecordSource(Protocol):
    """One outbox entry as the store gives it (``store_outbox.OutboxEntry``)."""

    @property
    def key(self) -> str:
        """The notice's outbox key."""
        ...

    @property
    def kind(self) -> NoticeKind:
        """What kind of notice it is."""
        ...

    @property
    def conversation_id(self) -> str:
        """Its conversation ("" for team summaries)."""
        ...

    @property
    def decided_at(self) -> datetime:
        """When it was decided."""
        ...

    @property
    def status(self) -> str:
        """``pending``, ``sent``, ``suppressed`` ..."""
        ...


class NoticeHistory(BriefingStore, Protocol):
    """The outbox records the weekly report needs (``adapters.store.Store``)."""

    def outbox(self) -> Sequence[NoticeRecordSource]:
        """Every outbox entry."""
        ...


def notice_records(entries: Iterable[NoticeRecordSource]) -> list[NoticeRecord]:
    """The outbox entries as the report counts them (follow-ups and check-ins)."""
    return [
        NoticeRecord(e.key, e.kind, e.conversation_id, e.decided_at, e.status == "suppressed")
        for e in entries
    ]


class WeeklyReports:
    """Decides the weekly report at ``schedule`` for ``recipients``."""

    def __init__(
        self,
        *,
        renderer: WeeklyReportMailRenderer,
        rules: Rules,
        schedule: WeeklySchedule,
        recipients: Sequence[str],
    ) -> None:
        self.renderer = renderer
        self.rules = rules
        self.schedule = schedule
        self.recipients = tuple(recipients)

    def decide(
        self,
        store: NoticeHistory,
        evaluations: Sequence[Evaluation],
        now: datetime,
        report: OutboxReport,
        *,
        dry_run: bool = False,
    ) -> None:
        """Record the report due at ``now`` (only logged on a dry run); plan the next.

        ``report.next_check_at`` is moved forward to the next scheduled instant when that
        comes first, so the runner wakes for it.
        """
        week = weekly_report_due(now, self.schedule, store.is_decided)
        if week is not None:
            self._decide(store, week, evaluations, now, report, dry_run)
        upcoming = next_report_at(now, self.schedule)
        if report.next_check_at is None or upcoming < report.next_check_at:
            report.next_check_at = upcoming

    def _decide(
        self,
        store: NoticeHistory,
        week: ReportWeek,
        evaluations: Sequence[Evaluation],
        now: datetime,
        report: OutboxReport,
        dry_run: bool,
    ) -> None:
        statuses = [e.status for e in evaluations if e.status.cycle > 0]
        records = notice_records(store.outbox())
        figures = build_report(statuses, self.rules, records, week.since, week.until, now)
        # One week is one point on a per-week chart: the compliance chart shows the
        # weeks before it too, so a lead sees the trend the week belongs to.
        trend_since = week.until - TREND_WEEKS * timedelta(days=7)
        trend = build_report(statuses, self.rules, records, trend_since, week.until, now)
        cycles = len(figures.cycles)
        if dry_run:
            log.info("weekly_report.would_decide", key=week.key, cycles=cycles)
            return
        try:
            message = self.renderer.render_weekly_report(
                week.key, figures, self.schedule.zone, self.recipients, now, trend
            )
        except Exception as exc:
            # A broken template override must not hold back the other notices; the
            # report is tried again next cycle.
            log.error("weekly_report.render_failed", key=week.key, error=str(exc))
            return
        previous = skipped_week(week, self.schedule)
        with store.transaction():
            store.decide(
                week.key,
                "",
                NoticeKind.WEEKLY_REPORT,
                self.recipients,
                now,
                payload=message.as_bytes(),
                message_id=str(message["Message-ID"]),
            )
        report.decided += 1
        log.info(
            "weekly_report.queued",
            key=week.key,
            since=week.since.isoformat(),
            until=week.until.isoformat(),
            cycles=cycles,
            recipients=list(self.recipients),
        )
        if not store.is_decided(previous.key):
            log.info(
                "weekly_report.skipped",
                key=previous.key,
                due_at=previous.until.isoformat(),
                reason="not decided before the next week's report was due (the daemon was "
                "not running in that week, or weekly reports were not configured); a "
                "report is never sent for a week that has passed",
            )
