"""The systemd notify protocol, over a real datagram socket like systemd's."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from sla_daemon.adapters.systemd import SystemdNotifier
from sla_daemon.clock import FixedClock
from sla_daemon.runner import Runner
from sla_daemon.service import CycleReport
from tests.unit.builders import NOW


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A bound AF_UNIX datagram socket, as systemd passes in NOTIFY_SOCKET."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(5)
        yield path, sock


def _received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on the socket, as text."""
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(5)
    return messages


def test_ready_status_watchdog_and_stopping_reach_the_socket(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """Each call sends one datagram of KEY=VALUE lines; READY carries the main PID."""
    path, sock = notify_socket
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.watchdog_interval is None
    notifier.ready("1 mailbox(es) synced")
    notifier.status("line one\nline two")
    notifier.watchdog()
    notifier.stopping()
    assert _received(sock) == [
        f"READY=1\nSTATUS=1 mailbox(es) synced\nMAINPID={os.getpid()}",
        "STATUS=line one line two",
        "WATCHDOG=1",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_abstract_socket_names_are_supported() -> None:
    """A NOTIFY_SOCKET starting with @ names a Linux abstract socket."""
    name = f"sla-daemon-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        SystemdNotifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(100) == b"WATCHDOG=1"


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path: Path) -> None:
    """No NOTIFY_SOCKET: disabled; a socket that went away: logged, never raised."""
    assert not SystemdNotifier({}).enabled
    SystemdNotifier({}).ready("x")
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "missing")})
    gone.ready("x")
    gone.watchdog()


def test_watchdog_period_is_read_for_this_process_only() -> None:
    """WATCHDOG_USEC is the period; a WATCHDOG_PID of another process disables it."""
    mine = SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval == timedelta(seconds=30)
    assert (
        SystemdNotifier({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}).watchdog_interval
        is None
    )
    assert SystemdNotifier({"WATCHDOG_USEC": "0"}).watchdog_interval is None


def _runner(path: str, report: CycleReport | None, watchdog_usec: str = "200000") -> Runner:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": watchdog_usec})

    def cycle() -> CycleReport:
        if report is None:
            raise RuntimeError("boom")
        return report

    return Runner(cycle, timedelta(seconds=0.35), clock=FixedClock(NOW), notifier=notifier)


def test_ready_only_after_a_cycle_that_read_a_mailbox(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """A first cycle with every mailbox down reports status, not READY; the next says READY."""
    path, sock = notify_socket
    down = CycleReport(source_errors=["support: connection refused"])
    runner = _runner(path, down)
    runner.one_iteration()
    first = _received(sock)
    assert not any("READY=1" in m for m in first)
    assert "STATUS=0 mailbox(es) synced; 1 unavailable (support)" in first[0]
    runner.cycle = lambda: CycleReport(synced=["support"], stored=2)
    runner.one_iteration()
    runner.one_iteration()
    ready = [m for m in _received(sock) if m.startswith("READY=1")]
    assert len(ready) == 1 and "2 new message(s)" in ready[0]


def test_signs_of_life_while_waiting_only_when_healthy(
    notify_socket: tuple[str, socket.socket],
) -> None:
    """Waits are cut at half the watchdog period with WATCHDOG=1 between the slices.

    After a cycle that failed unexpectedly no sign of life is sent, so systemd restarts a
    daemon whose cycles keep failing.
    """
    path, sock = notify_socket
    runner = _runner(path, CycleReport(synced=["support"]))
    report = runner.one_iteration()
    runner.wait_after(report)  # 0.35 s in slices of 0.1 s: three signs of life between
    assert _received(sock).count("WATCHDOG=1") == 1 + 3
    failing = _runner(path, None)
    failing.wait_after(failing.one_iteration())
    messages = _received(sock)
    assert "WATCHDOG=1" not in messages
    assert messages == ["STATUS=the last cycle failed unexpectedly; see the log"]
