"""The daemon's loop: ``run -> one_iteration -> wait`` until told to stop.

Between cycles the runner sleeps until the first of: the poll interval, the next moment
a deadline calls for a notice (so a warning goes out on time even when no mail
arrives), a wake-up from a mailbox watcher (IMAP IDLE), or a stop request.

Under systemd (``Type=notify``) it says ``READY=1`` after the first cycle that read a
mailbox, keeps ``STATUS=`` current, and sends ``WATCHDOG=1`` only while its cycles end
normally: a loop that hangs or fails cycle after cycle stops the signs of life, and
systemd restarts the service after ``WatchdogSec=``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import structlog

from sla_daemon.clock import Clock, SystemClock
from sla_daemon.errors import StateDatabaseError, StateWriteError
from sla_daemon.ports import ServiceNotifier
from sla_daemon.service import CycleReport
from sla_daemon.waker import Waker

log = structlog.get_logger(__name__)


class Runner:
    """Runs a cycle, then waits; see the module docstring for what ends the wait.

    An unexpected exception in one cycle is logged with its traceback and the loop goes
    on: one bad cycle must not stop a service that others rely on. A state database that
    cannot be written (full disk) is logged as ``state.write_failed`` and retried the
    same way: what the cycle could not record is done again by a later one. A damaged one
    (``StateDatabaseError``) ends ``run``: no later cycle could mend it. ``stop`` (from a
    signal handler or a test) lets the current cycle finish and ends ``run``.
    """

    def __init__(
        self,
        cycle: Callable[[], CycleReport],
        interval: timedelta,
        stop_event: threading.Event | None = None,
        clock: Clock | None = None,
        notifier: ServiceNotifier | None = None,
    ) -> None:
        self.cycle = cycle
        self.interval = interval
        self.stop_event = stop_event or threading.Event()
        self.clock = clock or SystemClock()
        self.notifier = notifier
        self.iterations = 0
        self.healthy = False
        """Whether the last cycle ended normally (it may still report a mailbox down)."""
        self.ready_sent = False
        """Whether READY=1 was sent (once per process; a reload sends its own)."""
        self._wake = Waker()
        self._stop_requested = False

    def one_iteration(self) -> CycleReport | None:
        """Run one cycle; return its report, or None when it failed unexpectedly."""
        self.iterations += 1
        try:
            report = self.cycle()
        except StateDatabaseError:
            # A damaged state file: no later cycle can mend it, so the daemon stops (65).
            raise
        except StateWriteError as exc:
            # A full disk is the operator's to fix, not a bug: one clear line, no traceback.
            log.error("state.write_failed", iteration=self.iterations, error=str(exc))
            report = None
        except Exception:
            log.exception("cycle.failed", iteration=self.iterations)
            report = None
        self.after_cycle(report)
        return report

    def after_cycle(self, report: CycleReport | None) -> None:
        """Tell the service manager how the cycle went (ready, status, sign of life)."""
        self.healthy = report is not None
        if self.notifier is None:
            return
        if report is None:
            self.notifier.status("the last cycle failed unexpectedly; see the log")
            return
        line = cycle_status(report, self.clock)
        if not self.ready_sent and report.synced:
            self.ready_sent = True
            self.notifier.ready(line)
        else:
            self.notifier.status(line)
        self.notifier.watchdog()

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
        while not self.stopping():
            report = self.one_iteration()
            if self.stopping():
                break
            self.wait_after(report)
        log.info("runner.stopped", iterations=self.iterations)

    def wait_after(self, report: CycleReport | None) -> None:
        """Sleep after a cycle until the interval, the next deadline, a wake or a stop.

        With a systemd watchdog the sleep is cut into slices of half its period, with a
        sign of life between them while the last cycle was healthy.
        """
        remaining = self.seconds_to_wait(report)
        period = self.notifier.watchdog_interval if self.notifier is not None else None
        slice_seconds = period.total_seconds() / 2 if period is not None else None
        woken = False
        while True:
            step = remaining if slice_seconds is None else min(remaining, slice_seconds)
            woken = self._wake.wait(step)
            remaining -= step
            if woken or remaining <= 0:
                break
            if self.notifier is not None and self.healthy:
                self.notifier.watchdog()
        self._wake.clear()
        if woken and not self.stopping():
            log.debug("runner.woken")

    def wake(self) -> None:
        """Start the next cycle now (a watcher saw new mail); safe from any thread."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish after the current cycle; safe from a signal handler.

        Takes no lock (see ``sla_daemon.waker``): the loop sets ``stop_event``, which the
        watcher threads follow, when it next looks.
        """
        self._stop_requested = True
        self._wake.set()

    def close(self) -> None:
        """Release the wake-up channel once the loop has ended."""
        self._wake.close()

    def stopping(self) -> bool:
        """Whether the loop is to end; passes a ``stop`` request on to ``stop_event``."""
        if self._stop_requested and not self.stop_event.is_set():
            self.stop_event.set()
        return self.stop_event.is_set()


def cycle_status(report: CycleReport, clock: Clock) -> str:
    """One line for ``systemctl status``: what the last cycle read, sent and lacks."""
    parts = [f"{len(report.synced)} mailbox(es) synced"]
    down = report.source_errors + report.login_failures
    if down:
        parts.append(f"{len(down)} unavailable ({', '.join(e.split(':')[0] for e in down)})")
    parts.append(f"{report.stored} new message(s), {report.sent} notice(s) sent")
    if report.failed:
        parts.append(f"{report.failed} failed")
    if report.next_check_at is not None:
        minutes = max(0, int((report.next_check_at - clock.now()).total_seconds() // 60))
        parts.append(f"next deadline check in {minutes} min")
    return "; ".join(parts)
