"""The daemon under systemd's notify protocol: READY, STATUS, WATCHDOG, STOPPING."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

from tests.conftest import ImapUser
from tests.e2e.test_first_run import SLA_DAEMON, _config
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink


def _next_message(sock: socket.socket) -> str:
    return sock.recv(4096).decode()


def test_run_reports_ready_status_and_watchdog_then_stops_cleanly(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """`run` with NOTIFY_SOCKET: READY=1 after the first sync, signs of life, STOPPING=1.

    The socket is a real datagram socket, as systemd creates for ``Type=notify``.
    """
    config = _config(tmp_path, imap_user, smtp_sink)
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        daemon = subprocess.Popen(
            [SLA_DAEMON, "--config", str(config), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                "E2E_IMAP_PASSWORD": imap_user.password,
                "PATH": "/usr/bin:/bin",
                "NOTIFY_SOCKET": path,
                "WATCHDOG_USEC": "1000000",
            },
        )
        try:
            ready = _next_message(sock)
            assert ready.startswith("READY=1\nSTATUS=1 mailbox(es) synced")
            assert f"MAINPID={daemon.pid}" in ready
            # The poll interval is 60 s; with WatchdogSec=1s the wait is sliced.
            assert _next_message(sock) == "WATCHDOG=1"
            assert _next_message(sock) == "WATCHDOG=1"
            daemon.send_signal(signal.SIGTERM)
            rest = [_next_message(sock)]
            while not rest[-1].startswith("STOPPING=1"):
                rest.append(_next_message(sock))
            _, stderr = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert daemon.returncode == 0, stderr
