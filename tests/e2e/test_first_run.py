"""The ``sla-daemon`` command end to end, against a real Dovecot and a real SMTP sink.

Four client mails are appended with backdated INTERNALDATEs: (a) one minute old and
unanswered, (b) 45 hours old and (c) 49 hours old, each acknowledged by a team reply in
Sent ten minutes later without an action plan, and (d) 30 hours old and answered with an
action plan. One ``run --once`` must send exactly one auto-ack (a), one warning (b) and
one breach escalation (c); a second run must send nothing.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.configs import MailboxSpec, Replace, merged, write_config
from tests.conftest import ImapUser
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

SLA_DAEMON = str(Path(sys.executable).parent / "sla-daemon")
OWNER = "alice@acme.example"
LEAD = "lead@acme.example"
# The reload and systemd tests set this variable and find it in the config text.
PASSWORD_ENV = "E2E_IMAP_PASSWORD"


def _mail(
    message_id: str,
    sender: str,
    to: str,
    subject: str,
    body: str,
    at: datetime,
    parent: str | None = None,
) -> bytes:
    mail = build_mail(
        message_id, sender=sender, to=to, subject=subject, body=body, at=at, parent=parent
    )
    return mail.as_bytes()


def support_mailbox(user: ImapUser) -> MailboxSpec:
    """The one mailbox of these runs: IDLE and the poll interval left at the defaults."""
    return MailboxSpec("support", user, idle=None, poll_interval=None, password_env=PASSWORD_ENV)


def _config(
    tmp_path: Path,
    user: ImapUser,
    sink: SmtpSink,
    overrides: Mapping[str, Any] | None = None,
    mailbox: MailboxSpec | None = None,
) -> Path:
    """The run's config with ``overrides`` merged in; ``mailbox`` replaces the support one."""
    # Each run sends its team notices at once (the builder's digest_window: 0s).
    first_run = {
        "timezone": "Europe/Berlin",
        "policies": Replace(
            {
                "standard": {
                    "acknowledge": {"within": "1h"},
                    "action_plan": {"within": "48h", "warn_before": ["24h", "4h"]},
                }
            }
        ),
        "accounts": [
            {"name": "Globex", "domains": ["globex.example"], "owner": OWNER, "escalate_to": [LEAD]}
        ],
    }
    return write_config(
        tmp_path / "config.yaml",
        mailboxes=[mailbox or support_mailbox(user)],
        sink=sink,
        overrides=merged(first_run, overrides or {}),
    )


def _cli(config: Path, user: ImapUser, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLA_DAEMON, "--config", str(config), *args],
        capture_output=True,
        text=True,
        check=False,
        env={PASSWORD_ENV: user.password, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def _seed(server: DovecotServer, user: ImapUser, now: datetime) -> dict[str, datetime]:
    """Append the four scenarios; return each client mail's arrival time by letter."""
    arrivals = {
        "a": now - timedelta(minutes=1),
        "b": now - timedelta(hours=45),
        "c": now - timedelta(hours=49),
        "d": now - timedelta(hours=30),
    }
    support = "Acme Support <support@acme.example>"
    inbox = [
        (
            _mail(
                f"{k}@globex.example",
                f"Client {k.upper()} <{k}@globex.example>",
                support,
                f"Request {k}",
                f"Please look at problem {k}.",
                at,
            ),
            at,
            (),
        )
        for k, at in arrivals.items()
    ]
    sent = []
    for k in ("b", "c", "d"):
        at = arrivals[k] + timedelta(minutes=10)
        body = "Thanks, we are looking into it."
        if k == "d":
            body = "Hello,\n\nAction plan: rotate the keys today, then re-run the import.\n"
        sent.append(
            (
                _mail(
                    f"reply-{k}@acme.example",
                    "Bob <bob@acme.example>",
                    f"{k}@globex.example",
                    f"Re: Request {k}",
                    body,
                    at,
                    parent=f"{k}@globex.example",
                ),
                at,
                (),
            )
        )
    server.append_many(user.username, "INBOX", inbox)
    server.append_many(user.username, "Sent", sent)
    return arrivals


def _by_client(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["client"].split("@")[0]: c for c in document["conversations"]}


def test_first_run_acks_warns_escalates_once_and_second_run_sends_nothing(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """One run sends one auto-ack, one warning and one breach; a second run sends nothing."""
    now = datetime.now(UTC).replace(microsecond=0)
    arrivals = _seed(dovecot_server, imap_user, now)
    flags_before = dovecot_server.flags(imap_user.username, "INBOX")
    config = _config(tmp_path, imap_user, smtp_sink)

    first = _cli(config, imap_user, "run", "--once")
    assert first.returncode == 0, first.stderr

    mails = smtp_sink.messages
    assert len(mails) == 3, [m.message["Subject"] for m in mails]
    auto_acks = [m for m in mails if m.message["Auto-Submitted"] == "auto-replied"]
    warnings = [m for m in mails if m.message["X-SLA-Daemon"] == "warning"]
    breaches = [m for m in mails if m.message["X-SLA-Daemon"] == "breach"]
    assert len(auto_acks) == len(warnings) == len(breaches) == 1

    [ack] = auto_acks
    assert ack.rcpt_tos == ("a@globex.example",)
    assert ack.message["Subject"] == "Re: Request a"
    assert ack.message["In-Reply-To"] == "<a@globex.example>"
    assert "<a@globex.example>" in ack.message["References"]
    assert ack.message["X-Auto-Response-Suppress"] == "All"
    assert "support@acme.example" in ack.message["From"]

    [warning] = warnings
    assert warning.rcpt_tos == (OWNER,)
    assert "Request b" in warning.message["Subject"]
    # Due 3h after now, less the seconds the run took: "2h 59m" (or 58m on a slow run).
    assert re.search(r"due in 2h 5\dm", warning.message["Subject"])

    [breach] = breaches
    assert sorted(breach.rcpt_tos) == sorted([OWNER, LEAD])
    assert "Request c" in breach.message["Subject"]
    text = breach.message.get_body(("plain",))
    assert text is not None
    content = text.get_content()
    for expected in ("Globex", "c@globex.example", "Request c", "action plan"):
        assert expected in content

    status = _cli(config, imap_user, "status", "--json")
    assert status.returncode == 0, status.stderr
    document = json.loads(status.stdout)
    conversations = _by_client(document)
    assert sorted(conversations) == ["a", "b", "c", "d"]
    expected_states = {
        "a": "awaiting_action_plan",  # the auto-ack acknowledged it
        "b": "awaiting_action_plan",
        "c": "awaiting_action_plan",
        "d": "action_plan_sent",
    }
    for letter, state in expected_states.items():
        conversation = conversations[letter]
        opened = arrivals[letter]
        assert conversation["state"] == state, letter
        assert conversation["account"] == "Globex"
        assert conversation["subject"] == f"Request {letter}"
        assert datetime.fromisoformat(conversation["opened_at"]) == opened
        assert datetime.fromisoformat(conversation["acknowledge_due"]) == opened + timedelta(
            hours=1
        )
        assert datetime.fromisoformat(conversation["action_plan_due"]) == opened + timedelta(
            hours=48
        )
        assert f"{letter}@globex.example" in conversation["message_ids"]
    assert conversations["a"]["acknowledged_by"] == "auto"
    assert conversations["a"]["first_human_response_at"] is None
    for letter in ("b", "c", "d"):
        reply_at = arrivals[letter] + timedelta(minutes=10)
        assert conversations[letter]["acknowledged_by"] == "human"
        assert datetime.fromisoformat(conversations[letter]["first_human_response_at"]) == reply_at
        assert f"reply-{letter}@acme.example" in conversations[letter]["message_ids"]
    assert datetime.fromisoformat(conversations["d"]["action_plan_at"]) == arrivals[
        "d"
    ] + timedelta(minutes=10)
    assert conversations["c"]["breaches"] == ["action_plan"]
    assert conversations["a"]["breaches"] == conversations["b"]["breaches"] == []
    assert conversations["d"]["breaches"] == []

    second = _cli(config, imap_user, "run", "--once")
    assert second.returncode == 0, second.stderr
    assert len(smtp_sink.messages) == 3

    assert dovecot_server.flags(imap_user.username, "INBOX") == flags_before


def test_status_as_of_looks_back_without_changing_anything(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Looking back with --as-of shows the clocks as they were and changes nothing."""
    now = datetime.now(UTC).replace(microsecond=0)
    arrivals = _seed(dovecot_server, imap_user, now)
    config = _config(tmp_path, imap_user, smtp_sink)
    assert _cli(config, imap_user, "run", "--once").returncode == 0
    sent = len(smtp_sink.messages)
    database = tmp_path / "state" / "state.sqlite3"
    before = database.read_bytes()

    as_of = (arrivals["c"] + timedelta(hours=47)).isoformat()
    result = _cli(config, imap_user, "status", "--json", "--as-of", as_of)
    assert result.returncode == 0, result.stderr
    conversations = _by_client(json.loads(result.stdout))
    assert "a" not in conversations  # it had not arrived yet
    assert conversations["c"]["breaches"] == []
    assert conversations["c"]["state"] == "awaiting_action_plan"
    assert len(smtp_sink.messages) == sent
    assert database.read_bytes() == before


def test_wrong_imap_password_exits_78(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A refused login stops run --once with status 78 and a message naming the mailbox."""
    config = _config(tmp_path, imap_user, smtp_sink)
    wrong = ImapUser(imap_user.username, "not-the-password", imap_user.host, imap_user.port)
    result = _cli(config, wrong, "run", "--once")
    assert result.returncode == 78
    assert "support" in result.stderr
    assert "not-the-password" not in result.stderr + result.stdout


def test_daemon_runs_cycles_until_sigterm_then_exits_cleanly(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """`run` keeps cycling every poll_interval, picks up new mail, and exits 0 on SIGTERM."""
    mailbox = dataclasses.replace(support_mailbox(imap_user), poll_interval="1s")
    config = _config(tmp_path, imap_user, smtp_sink, mailbox=mailbox)
    daemon = subprocess.Popen(
        [SLA_DAEMON, "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={PASSWORD_ENV: imap_user.password, "PATH": "/usr/bin:/bin"},
    )
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        raw = _mail(
            "late@globex.example",
            "Dana <dana@globex.example>",
            "support@acme.example",
            "Arrives while running",
            "Hello",
            now,
        )
        # Give the daemon its first cycle on an empty mailbox, then deliver a mail.
        time.sleep(1.5)
        dovecot_server.append(imap_user.username, "INBOX", raw, now)
        [ack] = smtp_sink.wait_for(1, timeout=30)
        assert ack.rcpt_tos == ("dana@globex.example",)
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
    assert daemon.returncode == 0, stderr
    assert "runner.stopped" in stderr
