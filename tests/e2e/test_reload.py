"""SIGHUP re-reads the configuration: a valid one is applied, an invalid one refused."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from tests.configs import MailboxSpec, password_env, write_config
from tests.conftest import ImapUser
from tests.e2e.test_first_run import _config
from tests.mailbuild import build_mail
from tests.notified_daemon import notified_daemon
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink
from tests.tcp_connections import client_connections, server_connections, wait_until


def _deliver(
    server: DovecotServer, user: str, message_id: str, to: str = "support@acme.example"
) -> None:
    """A client's new request, arriving now in ``user``'s INBOX."""
    now = datetime.now(UTC).replace(microsecond=0)
    mail = build_mail(
        message_id, sender="Dana <dana@globex.example>", subject=f"Help {message_id}", at=now, to=to
    )
    server.append(user, "INBOX", mail.as_bytes(), now)


def test_sighup_applies_a_valid_config_and_keeps_running_on_an_invalid_one(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A reload connects a new mailbox; a broken file is logged with its line and ignored.

    A file that moves ``state_dir`` is refused too: the lock is on the old directory.

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
    env = {"E2E_IMAP_PASSWORD": imap_user.password}
    with notified_daemon(config, env, tmp_path) as daemon:
        daemon.until("READY=1")
        _deliver(dovecot_server, imap_user.username, "one@globex.example", "support@acme.example")
        smtp_sink.wait_for(1, timeout=30)

        config.write_text(with_second)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.until("RELOADING=1")
        assert "configuration reloaded; 2 mailbox(es)" in daemon.until("READY=1")
        _deliver(dovecot_server, second.username, "two@globex.example", "alice@acme.example")
        smtp_sink.wait_for(2, timeout=30)

        config.write_text(with_second.replace("within: 1h", "within: soon"))
        daemon.process.send_signal(signal.SIGHUP)
        assert "reload refused" in daemon.until("READY=1")
        _deliver(dovecot_server, second.username, "three@globex.example", "alice@acme.example")
        received = smtp_sink.wait_for(3, timeout=30)

        # The daemon holds its state directory's lock: moving it needs a restart.
        moved = with_second.replace(f"state_dir: {tmp_path / 'state'}", "state_dir: /elsewhere")
        assert moved != with_second
        config.write_text(moved)
        daemon.process.send_signal(signal.SIGHUP)
        assert "reload refused" in daemon.until("READY=1")
        assert not Path("/elsewhere").exists()

        daemon.process.send_signal(signal.SIGTERM)
        daemon.until("STOPPING=1")
        status = daemon.wait()
    log = daemon.log_text()
    assert status == 0, log
    subjects = sorted(str(mail.message["Subject"]) for mail in received)
    assert subjects == [
        "Re: Help one@globex.example",
        "Re: Help three@globex.example",
        "Re: Help two@globex.example",
    ]
    assert len(smtp_sink.messages) == 3  # nothing decided before a reload went out again
    assert "reload.applied" in log and "reload.refused" in log
    assert f"{config}:" in log and "policies.standard.acknowledge.within" in log
    assert "state_dir: changed from" in log


def test_sighup_that_removes_a_mailbox_disconnects_it_and_keeps_the_others(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    private_dovecot: Callable[..., DovecotServer],
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    """A reload without a mailbox ends all of its IMAP connections; the other one goes on.

    The removed mailbox lives on a Dovecot of its own, so that its connections are told
    apart by port. Before the reload the daemon holds three connections to each server
    (polling, and IDLE on INBOX and on Sent); after it, the kernel's socket tables show
    none left to the removed mailbox's server, on the daemon's side and on Dovecot's. A
    request that then arrives in the removed mailbox is never read (Dovecot logs no login
    but the test's own APPEND), while one in the remaining mailbox is acknowledged.
    """
    removed_server = private_dovecot()
    removed_user = ImapUser("removed", "removed-pw", removed_server.host, removed_server.port)
    removed_server.add_user(removed_user.username, removed_user.password)
    kept = MailboxSpec("support", imap_user, idle=True)
    removed = MailboxSpec("alice", removed_user, idle=True)
    accounts = {
        "accounts": [
            {"name": "Globex", "domains": ["globex.example"], "owner": "owner@acme.example"}
        ]
    }
    config = write_config(
        tmp_path / "config.yaml", mailboxes=[kept, removed], sink=smtp_sink, overrides=accounts
    )

    def logins() -> int:
        return removed_server.log_text().count(f"Login: user=<{removed_user.username}>")

    with notified_daemon(config, password_env([kept, removed]), tmp_path) as daemon:
        daemon.until("READY=1")
        to_kept = partial(client_connections, daemon.pid, dovecot_server.port)
        to_removed = partial(client_connections, daemon.pid, removed_server.port)
        wait_until(to_kept, 3, "daemon connections to the kept mailbox")
        wait_until(to_removed, 3, "daemon connections to the removed mailbox")
        dovecot_sessions = partial(server_connections, removed_server.port)
        wait_until(dovecot_sessions, 3, "Dovecot's sessions of the removed mailbox")
        _deliver(removed_server, removed_user.username, "before@globex.example")
        smtp_sink.wait_for(1, timeout=30)  # the removed mailbox was read while configured

        write_config(config, mailboxes=[kept], sink=smtp_sink, overrides=accounts)
        daemon.process.send_signal(signal.SIGHUP)
        assert "configuration reloaded; 1 mailbox(es)" in daemon.until("READY=1")
        wait_until(to_removed, 0, "daemon connections to the removed mailbox")
        wait_until(dovecot_sessions, 0, "Dovecot's sessions of the removed mailbox")
        logins_after_reload = logins()

        _deliver(removed_server, removed_user.username, "after@globex.example")
        _deliver(dovecot_server, imap_user.username, "kept@globex.example")
        smtp_sink.wait_for(2, timeout=30)  # a cycle read the kept mailbox after both arrived
        assert logins() == logins_after_reload + 1  # the test's APPEND, nobody else
        assert to_removed() == 0
        wait_until(to_kept, 3, "daemon connections to the kept mailbox")

        daemon.process.send_signal(signal.SIGTERM)
        daemon.until("STOPPING=1")
        status = daemon.wait()
    log = daemon.log_text()
    assert status == 0, log
    subjects = sorted(str(mail.message["Subject"]) for mail in smtp_sink.messages)
    assert subjects == ["Re: Help before@globex.example", "Re: Help kept@globex.example"]
    assert '"mailboxes_removed": ["alice"]' in log
