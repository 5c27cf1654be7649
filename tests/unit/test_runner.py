"""The runner loop: cycles, wake-ups, deadlines and stopping."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from sla_daemon.clock import FixedClock
from sla_daemon.errors import StateDatabaseError
from sla_daemon.runner import Runner
from sla_daemon.service import CycleReport
from tests.unit.builders import NOW


def test_waits_the_poll_interval_when_no_deadline_is_near() -> None:
    """Without a pending deadline the runner sleeps the whole poll interval."""
    runner = Runner(CycleReport, timedelta(seconds=60), clock=FixedClock(NOW))
    assert runner.seconds_to_wait(CycleReport()) == 60


def test_wakes_for_the_next_deadline_before_the_interval() -> None:
    """A warning due in 5 s shortens the sleep to 5 s, so it goes out on time."""
    runner = Runner(CycleReport, timedelta(seconds=60), clock=FixedClock(NOW))
    report = CycleReport(next_check_at=NOW + timedelta(seconds=5))
    assert runner.seconds_to_wait(report) == 5
    overdue = CycleReport(next_check_at=NOW - timedelta(seconds=5))
    assert runner.seconds_to_wait(overdue) == 0


def test_wake_starts_the_next_cycle_at_once_and_stop_ends_the_loop() -> None:
    """A watcher's wake() runs a cycle without waiting the (hour-long) interval."""
    cycles = threading.Semaphore(0)

    def cycle() -> CycleReport:
        cycles.release()
        return CycleReport()

    runner = Runner(cycle, timedelta(hours=1))
    thread = threading.Thread(target=runner.run)
    thread.start()
    try:
        assert cycles.acquire(timeout=10)
        runner.wake()
        assert cycles.acquire(timeout=10), "wake() did not start a cycle"
    finally:
        runner.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_failing_cycle_does_not_stop_the_loop() -> None:
    """An unexpected exception is logged and the next cycle still runs."""
    calls: list[int] = []

    def cycle() -> CycleReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        runner.stop()
        return CycleReport()

    runner = Runner(cycle, timedelta(seconds=0))
    runner.run()
    assert len(calls) == 2


def test_a_damaged_state_database_ends_the_loop_instead_of_a_retry() -> None:
    """A StateDatabaseError from a cycle leaves the runner: no second cycle, no cycle.failed."""
    calls: list[int] = []

    def cycle() -> CycleReport:
        calls.append(1)
        if len(calls) > 1:  # a retry (the bug this guards against): end the loop
            runner.stop()
            return CycleReport()
        raise StateDatabaseError("state.sqlite3 is not a usable sla-daemon state database")

    runner = Runner(cycle, timedelta(seconds=0))
    with capture_logs() as logs, pytest.raises(StateDatabaseError):
        runner.run()
    assert len(calls) == 1
    assert [e["event"] for e in logs if e["event"] == "cycle.failed"] == []
