"""``sla-daemon run`` as systemd starts a ``Type=notify`` service: with a NOTIFY_SOCKET.

The test binds a real datagram socket, as systemd does, and reads what the daemon says
on it (READY=1, STATUS=, RELOADING=1, WATCHDOG=1, STOPPING=1). The daemon's output goes
to a file rather than a pipe: a pipe nobody reads while the daemon runs would fill up
and stall it.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.daemon_process import BASE_ENV, SLA_DAEMON


class NotifiedDaemon:
    """A running daemon, its notify socket and its log file."""

    def __init__(self, process: subprocess.Popen[bytes], sock: socket.socket, log: Path) -> None:
        self.process = process
        self.sock = sock
        self.log = log

    @property
    def pid(self) -> int:
        """The daemon's process id."""
        return self.process.pid

    def next_message(self) -> str:
        """The next notify datagram (fails after the socket's timeout)."""
        return self.sock.recv(4096).decode()

    def until(self, prefix: str) -> str:
        """The next notify datagram starting with ``prefix`` (others are skipped)."""
        while True:
            message = self.next_message()
            if message.startswith(prefix):
                return message

    def log_text(self) -> str:
        """Everything the daemon wrote to stdout and stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait(self, timeout: float = 30) -> int:
        """Wait for the daemon to exit and return its status."""
        return self.process.wait(timeout=timeout)


@contextmanager
def notified_daemon(
    config: Path, env: Mapping[str, str], directory: Path, *, timeout: float = 30
) -> Iterator[NotifiedDaemon]:
    """Start ``sla-daemon run`` on ``config`` under a notify socket in ``directory``.

    ``env`` is added to a bare PATH and NOTIFY_SOCKET; reads from the socket fail after
    ``timeout`` seconds. The daemon is killed on the way out if it still runs.
    """
    path = directory / "notify"
    log = directory / "daemon.log"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(timeout)
        with log.open("ab") as stream:
            process = subprocess.Popen(
                [SLA_DAEMON, "--config", str(config), "run"],
                stdout=stream,
                stderr=stream,
                env={**BASE_ENV, "NOTIFY_SOCKET": str(path), **env},
            )
        try:
            yield NotifiedDaemon(process, sock, log)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
