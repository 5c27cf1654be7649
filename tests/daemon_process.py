"""``sla-daemon run`` as a real subprocess that a test can SIGKILL, restart and read.

The process writes its log (JSON lines) to a file that every start appends to, so that a
failed assertion can show what the daemon said across all of its lives.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

SLA_DAEMON = str(Path(sys.executable).parent / "sla-daemon")
BASE_ENV = {"PATH": "/usr/bin:/bin"}


class DaemonProcess:
    """One daemon, started and restarted on the same config, env and log file."""

    def __init__(self, config: Path, env: Mapping[str, str], log: Path) -> None:
        self.config = config
        self.env = {**BASE_ENV, **env}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start ``sla-daemon run``; refuse when the previous process still runs."""
        if self.running:
            raise RuntimeError("the daemon is already running")
        with self.log.open("ab") as stream:
            self.process = subprocess.Popen(
                [SLA_DAEMON, "--config", str(self.config), "run"],
                stdout=stream,
                stderr=stream,
                env=self.env,
            )
        self.starts += 1

    @property
    def running(self) -> bool:
        """Whether the process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def sigkill(self) -> None:
        """SIGKILL the daemon unless it died already, and check it died of it."""
        process = self._started()
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        status = process.wait(timeout=10)
        assert status == -signal.SIGKILL, f"exit status {status}\n{self.tail()}"

    def stop(self) -> int:
        """SIGTERM, wait for the exit and return its status (SIGKILL after 30s)."""
        process = self._started()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise AssertionError(f"the daemon ignored SIGTERM for 30s\n{self.tail()}") from None

    def ensure_dead(self) -> None:
        """Kill the process if it still runs (cleanup after a failed test)."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def log_text(self) -> str:
        """Everything every life of the daemon logged."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, characters: int = 3000) -> str:
        """The end of the log, for assertion messages."""
        return self.log_text()[-characters:]

    def cycles(self) -> int:
        """Cycles completed so far, over all lives."""
        return self.log_text().count('"cycle.done"')

    def wait_for_cycles(self, count: int, timeout: float) -> None:
        """Wait until ``count`` more cycles completed; fail after ``timeout`` seconds."""
        target = self.cycles() + count
        deadline = time.monotonic() + timeout
        while self.cycles() < target:
            assert time.monotonic() < deadline, f"no {count} cycle(s) in {timeout}s\n{self.tail()}"
            assert self.running, f"the daemon exited\n{self.tail()}"
            time.sleep(0.1)

    def _started(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError("the daemon was never started")
        return self.process


def pending_notices(database: Path) -> int | None:
    """Outbox entries not yet sent (nor failed), or None before the schema exists."""
    if not database.exists():
        return None
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10) as db:
        try:
            row = db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return None
    return int(row[0])


def integrity(database: Path) -> str:
    """What ``PRAGMA integrity_check`` says about the state database ("ok" when sound)."""
    with sqlite3.connect(database, timeout=10) as db:
        return "\n".join(str(row[0]) for row in db.execute("PRAGMA integrity_check"))


def run_once(config: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """``sla-daemon run --once`` on ``config``, bounded to two minutes."""
    return subprocess.run(
        [SLA_DAEMON, "--config", str(config), "run", "--once"],
        capture_output=True,
        text=True,
        check=False,
        env={**BASE_ENV, **env},
        timeout=120,
    )
