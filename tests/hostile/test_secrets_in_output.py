"""No password ever reaches an output: logs, errors, tracebacks, status, or the state files.

A full life of the daemon through its command line, at log level debug, against the
real Dovecot and an SMTP sink that wants a login: check-config, a run with the wrong
IMAP password, a run whose SMTP login is refused, a run whose SMTP server defers, the
run that delivers, status, status --json, explain, report, and a run refused on a
corrupt state database (exit 65). Every stdout and stderr, and every byte of the state
directory, is searched for each password, plain and base64 (as SMTP AUTH sends it).
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import ImapUser
from tests.hostile.cli import Endpoints, run_cli, write_config
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

SMTP_USER = "notices@acme.example"
SMTP_PASSWORD = "Smtp-Right-Secret-4f1c"
WRONG_SMTP_PASSWORD = "Smtp-Wrong-Secret-9d2e"
WRONG_IMAP_PASSWORD = "Imap-Wrong-Secret-77ab"


def _accept_only(password: str) -> Any:
    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)

    return authenticator


def _forms(secret: str) -> list[str]:
    """The secret as written and as base64 alone or in an AUTH PLAIN string."""
    plain = f"\0{SMTP_USER}\0{secret}".encode()
    return [
        secret,
        base64.b64encode(secret.encode()).decode(),
        base64.b64encode(plain).decode(),
    ]


def _client_mail(number: int, at: datetime) -> bytes:
    mail = build_mail(
        f"secret-{number}@globex.example",
        sender="Dana <dana@globex.example>",
        subject=f"Problem {number}",
        at=at,
    )
    return mail.as_bytes()


def test_no_password_appears_in_any_output_or_state_file(
    dovecot_server: DovecotServer, imap_user: ImapUser, tmp_path: Path
) -> None:
    """Each command's output and the state directory hold none of the four passwords.

    The runs really failed and succeeded as scripted (exit codes, a failed delivery, a
    delivered mail), so the secrets had every chance to leak.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    dovecot_server.append(imap_user.username, "INBOX", _client_mail(1, now), now)
    smtp_password_file = tmp_path / "smtp-password"
    state = tmp_path / "state"
    outputs: list[subprocess.CompletedProcess[str]] = []
    old_umask = os.umask(0o022)  # a permissive umask: the state must be private anyway
    try:
        with SmtpSink(authenticator=_accept_only(SMTP_PASSWORD), auth_require_tls=False) as sink:
            ends = Endpoints(
                imap_host=imap_user.host,
                imap_port=imap_user.port,
                imap_security="none",
                imap_user=imap_user.username,
                smtp_host=sink.host,
                smtp_port=sink.port,
                smtp_security="none",
                smtp_user=SMTP_USER,
                smtp_password_file=smtp_password_file,
            )
            config = write_config(tmp_path / "config.yaml", state, ends)

            def run(password: str, *args: str) -> subprocess.CompletedProcess[str]:
                outputs.append(run_cli(config, password, *args))
                return outputs[-1]

            smtp_password_file.write_text(WRONG_SMTP_PASSWORD + "\n")
            assert run(WRONG_IMAP_PASSWORD, "check-config").returncode == 0
            assert run(WRONG_IMAP_PASSWORD, "run", "--once").returncode == 78
            # The login is refused: the auto-ack fails for good, with the server's reply.
            assert run(imap_user.password, "run", "--once").returncode == 0
            smtp_password_file.write_text(SMTP_PASSWORD + "\n")
            later = now + timedelta(seconds=1)
            dovecot_server.append(imap_user.username, "INBOX", _client_mail(2, later), later)
            sink.data_replies.append("451 4.3.0 try again later")
            assert run(imap_user.password, "run", "--once").returncode == 0
            assert sink.messages == []
            time.sleep(1.1)  # the deferred notice's next attempt is due (retry_first: 1s)
            assert run(imap_user.password, "run", "--once").returncode == 0
            assert len(sink.wait_for(1)) == 1
            status = run(imap_user.password, "status", "--json")
            conversations = json.loads(status.stdout)["conversations"]
            assert len(conversations) == 2
            assert "535" in run(imap_user.password, "status").stdout
            assert run(imap_user.password, "explain", conversations[0]["id"]).returncode == 0
            assert run(imap_user.password, "report", "--format", "json").returncode == 0

            database = state / "state.sqlite3"
            for path in state.iterdir():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            assert stat.S_IMODE(state.stat().st_mode) == 0o700
            state_bytes = b"".join(path.read_bytes() for path in sorted(state.iterdir()))
            database.write_bytes(b"this is not a database" * 100)
            for name in ("state.sqlite3-wal", "state.sqlite3-shm"):
                (state / name).unlink(missing_ok=True)
            refused = run(imap_user.password, "run", "--once")
            assert refused.returncode == 65 and "state.unusable" in refused.stderr
    finally:
        os.umask(old_umask)

    text = "\n".join(f"{p.args}\n{p.stdout}\n{p.stderr}" for p in outputs)
    assert imap_user.username in text  # the outputs name the user, so they were searched
    for secret in (imap_user.password, WRONG_IMAP_PASSWORD, SMTP_PASSWORD, WRONG_SMTP_PASSWORD):
        for form in _forms(secret):
            assert form not in text, form
            assert form.encode() not in state_bytes, form
