"""SIGHUP re-reads the configuration: a valid one is applied, an invalid one refused."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import ImapUser
from tests.e2e.test_first_run import SLA_DAEMON, _config, _mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink


def _until(sock: socket.socket, prefix: str) -> str:
    """The next notify datagram starting with ``prefix`` (others are skipped)."""
    while True:
        message = sock.recv(4096).decode()
        if message.startswith(prefix):
            return message


def _deliver(server: DovecotServer, user: str, message_id: str, to: str) -> None:
    """A client's new request, arriving now in ``user``'s INBOX."""
    now = datetime.now(UTC).replace(microsecond=0)
    raw = _mail(message_id, "Dana <dana@globex.example>", to, f"Help {message_id}", "Hi", now)
    server.append(user, "INBOX", raw, now)


def test_sighup_applies_a_valid_config_and_keeps_running_on_an_invalid_one(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A reload connects a new mailbox; a broken file is logged with its line and ignored.

    No notice is sent twice across the reloads, and SIGTERM still ends the daemon with 0.
    """
    config = _config(tmp_path, imap_user, smtp_sink)
    valid = config.read_text().replace("    folders:", "    poll_interval: 1s\n    folders:")
    config.write_text(valid)
    second = ImapUser(f"second-{os.getpid()}", "second-pw", imap_user.host, imap_user.port)
    dovecot_server.add_user(second.username, second.password)
    (tmp_path / "second-password").write_text(second.password)
    with_second = valid.replace(
        "smtp:\n",
        f"""  - name: alice
    host: {second.host}
    port: {second.port}
    security: none
    username: {second.username}
    password_file: {tmp_path / "second-password"}
    poll_interval: 1s
smtp:
""",
    )
    notify = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(notify)
        sock.settimeout(30)
        daemon = subprocess.Popen(
            [SLA_DAEMON, "--config", str(config), "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={
                "E2E_IMAP_PASSWORD": imap_user.password,
                "PATH": "/usr/bin:/bin",
                "NOTIFY_SOCKET": notify,
            },
        )
        try:
            _until(sock, "READY=1")
            _deliver(
                dovecot_server, imap_user.username, "one@globex.example", "support@acme.example"
            )
            smtp_sink.wait_for(1, timeout=30)

            config.write_text(with_second)
            daemon.send_signal(signal.SIGHUP)
            _until(sock, "RELOADING=1")
            assert "configuration reloaded; 2 mailbox(es)" in _until(sock, "READY=1")
            _deliver(dovecot_server, second.username, "two@globex.example", "alice@acme.example")
            smtp_sink.wait_for(2, timeout=30)

            config.write_text(with_second.replace("within: 1h", "within: soon"))
            daemon.send_signal(signal.SIGHUP)
            assert "reload refused" in _until(sock, "READY=1")
            _deliver(dovecot_server, second.username, "three@globex.example", "alice@acme.example")
            received = smtp_sink.wait_for(3, timeout=30)

            daemon.send_signal(signal.SIGTERM)
            _until(sock, "STOPPING=1")
            _, stderr = daemon.communicate(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
    assert daemon.returncode == 0, stderr
    subjects = sorted(str(mail.message["Subject"]) for mail in received)
    assert subjects == [
        "Re: Help one@globex.example",
        "Re: Help three@globex.example",
        "Re: Help two@globex.example",
    ]
    assert len(smtp_sink.messages) == 3  # nothing decided before a reload went out again
    assert "reload.applied" in stderr and "reload.refused" in stderr
    assert f"{config}:" in stderr and "policies.standard.acknowledge.within" in stderr
