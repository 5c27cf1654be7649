"""Each owner's morning briefing: decided once a local day, recorded in the outbox.

Every cycle asks, for each account owner, whether their briefing for today is due
(``core.briefing``); a due one is rendered and recorded ``pending`` under
``briefing|<owner>|<local date>``, and the outbox's flush sends it with the other
notices. An owner with nothing late, at risk or due today gets no mail: the day's key is
recorded ``suppressed`` with that reason, so the decision is taken (and logged) once.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, time, tzinfo
from email.message import EmailMessage
from typing import Protocol

import structlog

from sla_daemon.core.briefing import (
    Briefing,
    briefing_due,
    briefing_key,
    build_briefing,
    next_briefing_at,
    owner_zone,
    owners,
)
from sla_daemon.core.model import Evaluation, NoticeKind, Rules
from sla_daemon.outbox import OutboxReport

log = structlog.get_logger(__name__)

NOTHING_TO_SAY = "nothing late, at risk or due today"
"""Why an owner's briefing was not sent (recorded as the suppression reason)."""


class BriefingRenderer(Protocol):
    """Renders a briefing (``adapters.render_briefing.BriefingRenderer``)."""

    def render_briefing(self, key: str, briefing: Briefing, now: datetime) -> EmailMessage:
        """Build the briefing mail for ``briefing.owner``."""
        ...


class BriefingStore(Protocol):
    """The outbox records the briefings need (``adapters.store.Store``)."""

    def transaction(self) -> AbstractContextManager[None]:
        """One unit of work."""
        ...

    def is_decided(self, key: str) -> bool:
        """Whether ``key`` is in the outbox."""
        ...

    def decide(
        self,
        key: str,
        conversation_id: str,
        kind: NoticeKind,
        recipients: tuple[str, ...],
        now: datetime,
        *,
        payload: bytes | None = None,
        message_id: str | None = None,
        suppressed_reason: str | None = None,
    ) -> bool:
        """Record a decision under ``key``; False when it was decided before."""
        ...


class Briefings:
    """Decides the owners' briefings at ``briefing_at`` in each owner's time zone."""

    def __init__(
        self,
        *,
        renderer: BriefingRenderer,
        rules: Rules,
        briefing_at: time,
        default_zone: tzinfo,
    ) -> None:
        self.renderer = renderer
        self.rules = rules
        self.briefing_at = briefing_at
        self.zones: dict[str, tzinfo] = {
            owner: owner_zone(rules, owner, default_zone) for owner in owners(rules)
        }
        """Each account owner's time zone, in the order the accounts are configured."""

    def decide(
        self,
        store: BriefingStore,
        evaluations: Sequence[Evaluation],
        now: datetime,
        report: OutboxReport,
        *,
        dry_run: bool = False,
    ) -> None:
        """Record every briefing due at ``now`` in ``store``'s outbox; plan the next.

        On a dry run a due briefing is only logged. ``report.next_check_at`` is moved
        forward to the next briefing instant when that comes first, so the runner wakes
        for it.
        """
        for owner, zone in self.zones.items():
            today = now.astimezone(zone).date()
            last_decided = today if store.is_decided(briefing_key(owner, today)) else None
            day = briefing_due(now, self.briefing_at, zone, last_decided)
            if day is not None:
                # Only when one is due: a kept evaluation decodes its status when asked.
                statuses = [evaluation.status for evaluation in evaluations]
                briefing = build_briefing(statuses, self.rules, owner, now, zone)
                self._record(store, briefing_key(owner, day), briefing, now, report, dry_run)
            upcoming = next_briefing_at(now, self.briefing_at, zone)
            if report.next_check_at is None or upcoming < report.next_check_at:
                report.next_check_at = upcoming

    def _record(
        self,
        store: BriefingStore,
        key: str,
        briefing: Briefing,
        now: datetime,
        report: OutboxReport,
        dry_run: bool,
    ) -> None:
        counts = {
            "late": len(briefing.late),
            "at_risk": len(briefing.at_risk),
            "due_today": len(briefing.due_today),
        }
        if dry_run:
            log.info(
                "briefing.would_decide",
                key=key,
                owner=briefing.owner,
                suppressed=NOTHING_TO_SAY if briefing.is_empty else None,
                **counts,
            )
            return
        if briefing.is_empty:
            with store.transaction():
                store.decide(
                    key,
                    "",
                    NoticeKind.BRIEFING,
                    (briefing.owner,),
                    now,
                    suppressed_reason=NOTHING_TO_SAY,
                )
            report.suppressed += 1
            log.info("briefing.suppressed", key=key, owner=briefing.owner, reason=NOTHING_TO_SAY)
            return
        try:
            message = self.renderer.render_briefing(key, briefing, now)
        except Exception as exc:
            # One owner's briefing that cannot be rendered (a broken template override)
            # must not hold back the other notices; it is tried again next cycle.
            log.error("briefing.render_failed", key=key, owner=briefing.owner, error=str(exc))
            return
        with store.transaction():
            store.decide(
                key,
                "",
                NoticeKind.BRIEFING,
                (briefing.owner,),
                now,
                payload=message.as_bytes(),
                message_id=str(message["Message-ID"]),
            )
        report.decided += 1
        log.info("briefing.queued", key=key, owner=briefing.owner, **counts)
