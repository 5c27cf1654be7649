"""The status page's source: the daemon's latest evaluations, handed over after each cycle.

The daemon evaluates every conversation once per cycle (``SlaService.last_evaluations``);
the board keeps the latest of those with the rules and time zone they were made with, so
the HTTP listener's threads can draw the page without touching the store or evaluating
again. Countdowns and the at-risk and late marks are worked out at the time of the
request, from the deadlines the evaluations hold.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from urllib.parse import parse_qs

from sla_daemon.clock import Clock
from sla_daemon.core.model import Evaluation, Rules
from sla_daemon.status_page import StatusPage, status_page


@dataclass(frozen=True)
class _Snapshot:
    evaluations: tuple[Evaluation, ...]
    rules: Rules
    zone: tzinfo
    evaluated_at: datetime


class StatusBoard:
    """The latest evaluations (safe to read from any thread), and the page drawn from them."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: _Snapshot | None = None

    def observe(
        self, evaluations: Sequence[Evaluation], rules: Rules, zone: tzinfo, at: datetime
    ) -> None:
        """Take in one cycle's evaluations, made with ``rules`` at ``at``."""
        snapshot = _Snapshot(tuple(evaluations), rules, zone, at)
        with self._lock:
            self._snapshot = snapshot

    def page(self, query: str) -> StatusPage | None:
        """The page now, filtered by the query's ``account`` and ``owner``; None before a cycle."""
        with self._lock:
            snapshot = self._snapshot
        if snapshot is None:
            return None
        params = parse_qs(query)
        return status_page(
            snapshot.evaluations,
            snapshot.rules,
            snapshot.zone,
            self.clock.now(),
            evaluated_at=snapshot.evaluated_at,
            account=params.get("account", [""])[0],
            owner=params.get("owner", [""])[0],
        )
