"""Signal handlers take no lock: a SIGTERM that lands while the daemon holds one still stops it.

A handler runs in the main thread between two bytecodes, maybe while that thread holds
the log stream's lock. A handler that logged there waited for itself forever: the
daemon hung on SIGTERM right after writing a log line.
"""

from __future__ import annotations

import signal
import threading
from datetime import timedelta
from typing import Any

import structlog

from sla_daemon.daemon import Daemon
from sla_daemon.runner import Runner
from sla_daemon.waker import Waker


class LockedLogger:
    """A logger that, like a stream, writes under a non-reentrant lock."""

    def __init__(self, lock: threading.Lock, lines: list[str]) -> None:
        self.lock = lock
        self.lines = lines

    def msg(self, message: str) -> None:
        """Write ``message``, failing (instead of hanging) when the lock is held."""
        if not self.lock.acquire(timeout=2):
            raise AssertionError("logged while the log lock was held: a handler would hang")
        try:
            self.lines.append(message)
        finally:
            self.lock.release()

    info = warning = error = debug = msg


def test_sigterm_while_the_log_lock_is_held_stops_the_loop_and_is_logged_after() -> None:
    """The handlers only record the signal and wake the loop; the loop logs it later."""
    lock = threading.Lock()
    lines: list[str] = []
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=lambda *args: LockedLogger(lock, lines),
        cache_logger_on_first_use=False,
    )
    daemon: Any = Daemon.__new__(Daemon)  # only the signal plumbing is exercised
    daemon._stopping = False
    daemon._reload_requested = False
    daemon.signals_received = []
    runner = Runner(lambda: None, timedelta(hours=1))  # type: ignore[arg-type,return-value]
    daemon._runner = runner
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        daemon.install_signal_handlers()
        with lock:  # the main thread is writing a log line
            signal.raise_signal(signal.SIGHUP)
            signal.raise_signal(signal.SIGTERM)
        assert runner.stopping()
        assert runner.stop_event.is_set()
        assert daemon._stopping and daemon._reload_requested
        assert lines == []  # nothing was logged inside the handlers
        daemon._log_signals()
        assert ['"SIGHUP"' in line for line in lines] == [True, False]
        assert '"SIGTERM"' in lines[1]
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        runner.close()
        structlog.reset_defaults()


def test_a_waker_set_before_the_wait_ends_it_at_once_and_only_once() -> None:
    """``set`` is remembered until the next ``wait``, which clears it."""
    waker = Waker()
    try:
        assert not waker.wait(0)
        waker.set()
        waker.set()
        assert waker.wait(5)
        assert not waker.wait(0)
    finally:
        waker.close()
    waker.set()  # a closed waker ignores a late wake-up
    assert not waker.wait(0)
