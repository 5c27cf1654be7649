"""The daemon under systemd's notify protocol: READY, STATUS, WATCHDOG, STOPPING."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.conftest import ImapUser
from tests.e2e.test_first_run import _config
from tests.notified_daemon import notified_daemon
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink


def test_run_reports_ready_status_and_watchdog_then_stops_cleanly(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """`run` with NOTIFY_SOCKET: READY=1 after the first sync, signs of life, STOPPING=1.

    The socket is a real datagram socket, as systemd creates for ``Type=notify``.
    """
    config = _config(tmp_path, imap_user, smtp_sink)
    env = {"E2E_IMAP_PASSWORD": imap_user.password, "WATCHDOG_USEC": "1000000"}
    with notified_daemon(config, env, tmp_path) as daemon:
        ready = daemon.next_message()
        assert ready.startswith("READY=1\nSTATUS=1 mailbox(es) synced")
        assert f"MAINPID={daemon.pid}" in ready
        # The poll interval is 60 s; with WatchdogSec=1s the wait is sliced.
        assert daemon.next_message() == "WATCHDOG=1"
        assert daemon.next_message() == "WATCHDOG=1"
        daemon.process.send_signal(signal.SIGTERM)
        daemon.until("STOPPING=1")
        status = daemon.wait()
    assert status == 0, daemon.log_text()
