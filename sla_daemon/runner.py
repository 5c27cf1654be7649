"""The daemon's loop: ``run -> one_iteration -> wait(stop_event)`` until told to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import structlog

from sla_daemon.service import CycleReport

log = structlog.get_logger(__name__)


class Runner:
    """Runs a cycle, then sleeps ``interval`` or until ``stop_event`` is set.

    An unexpected exception in one cycle is logged with its traceback and the loop goes
    on: one bad cycle must not stop a service that others rely on. A signal handler (or a
    test) sets ``stop_event``; the current cycle finishes and ``run`` returns.
    """

    def __init__(
        self,
        cycle: Callable[[], CycleReport],
        interval: timedelta,
        stop_event: threading.Event | None = None,
    ) -> None:
        self.cycle = cycle
        self.interval = interval
        self.stop_event = stop_event or threading.Event()
        self.iterations = 0

    def one_iteration(self) -> CycleReport | None:
        """Run one cycle; return its report, or None when it failed unexpectedly."""
        self.iterations += 1
        try:
            return self.cycle()
        except Exception:
            log.exception("cycle.failed", iteration=self.iterations)
            return None

    def run(self) -> None:
        """Loop until ``stop_event`` is set."""
        log.info("runner.started", interval_seconds=self.interval.total_seconds())
        while not self.stop_event.is_set():
            self.one_iteration()
            self.stop_event.wait(self.interval.total_seconds())
        log.info("runner.stopped", iterations=self.iterations)

    def stop(self) -> None:
        """Ask the loop to finish after the current cycle."""
        self.stop_event.set()
