"""`run --dry-run`: every notice decided and rendered, logged, and nothing sent or kept."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sla_daemon.adapters.store import DATABASE_NAME
from tests.conftest import ImapUser
from tests.e2e.test_first_run import _cli, _config, _mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink


def test_dry_run_logs_each_rendered_notice_and_sends_nothing(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The auto-ack and the breach are logged with their rendered subjects, nothing more.

    The sink receives nothing and the outbox of the state database stays empty.
    """
    config = _config(tmp_path, imap_user, smtp_sink)
    now = datetime.now(UTC).replace(microsecond=0)
    for message_id, subject, age in (
        ("new@globex.example", "Printer offline", timedelta(minutes=5)),
        ("late@globex.example", "Export fails", timedelta(hours=50)),
    ):
        raw = _mail(
            message_id,
            "Dana <dana@globex.example>",
            "support@acme.example",
            subject,
            "Please help",
            now - age,
        )
        dovecot_server.append(imap_user.username, "INBOX", raw, now - age)

    result = _cli(config, imap_user, "run", "--once", "--dry-run")

    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    would = {e["key"]: e for e in events if e["event"] == "notice.would_decide"}
    subjects = {e["subject"] for e in would.values() if e["subject"] is not None}
    assert "Re: Printer offline" in subjects
    assert any("Export fails" in s and "breach" in s.lower() for s in subjects), subjects
    assert smtp_sink.messages == []
    database = tmp_path / "state" / DATABASE_NAME
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone() == (2,)
        assert db.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
