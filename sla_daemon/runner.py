"""The daemon's loop: ``run -> one_iteration -> wait`` until told to stop.

Between cycles the runner sleeps until the first of: the poll interval, the next moment
a deadline calls for a notice (so a warning goes out on time even when no mail
arrives), a wake-up from a mailbox watcher (IMAP IDLE), or a stop request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import structlog

from sla_daemon.clock import Clock, SystemClock
from sla_daemon.service import CycleReport

log = structlog.get_logger(__name__)


class Runner:
    """Runs a cycle, then waits; see the module docstring for what ends the wait.

    An unexpected exception in one cycle is logged with its traceback and the loop goes
    on: one bad cycle must not stop a service that others rely on. ``stop`` (from a
    signal handler or a test) lets the current cycle finish and ends ``run``.
    """

    def __init__(
        self,
        cycle: Callable[[], CycleReport],
        interval: timedelta,
        stop_event: threading.Event | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.cycle = cycle
        self.interval = interval
        self.stop_event = stop_event or threading.Event()
        self.clock = clock or SystemClock()
        self.iterations = 0
        self._wake = threading.Event()

    def one_iteration(self) -> CycleReport | None:
        """Run one cycle; return its report, or None when it failed unexpectedly."""
        self.iterations += 1
        try:
            return self.cycle()
        except Exception:
            log.exception("cycle.failed", iteration=self.iterations)
            return None

    def seconds_to_wait(self, report: CycleReport | None) -> float:
        """How long to sleep after a cycle: the poll interval or the next deadline."""
        wait = self.interval.total_seconds()
        if report is not None and report.next_check_at is not None:
            until_due = (report.next_check_at - self.clock.now()).total_seconds()
            wait = min(wait, max(0.0, until_due))
        return wait

    def run(self) -> None:
        """Loop until ``stop`` is called (or ``stop_event`` is set and ``wake`` called)."""
        log.info("runner.started", interval_seconds=self.interval.total_seconds())
        while not self.stop_event.is_set():
            report = self.one_iteration()
            if self.stop_event.is_set():
                break
            self.wait_after(report)
        log.info("runner.stopped", iterations=self.iterations)

    def wait_after(self, report: CycleReport | None) -> None:
        """Sleep after a cycle until the interval, the next deadline, a wake or a stop."""
        woken = self._wake.wait(self.seconds_to_wait(report))
        self._wake.clear()
        if woken and not self.stop_event.is_set():
            log.debug("runner.woken")

    def wake(self) -> None:
        """Start the next cycle now (a watcher saw new mail); safe from any thread."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish after the current cycle; safe from a signal handler."""
        self.stop_event.set()
        self._wake.set()
