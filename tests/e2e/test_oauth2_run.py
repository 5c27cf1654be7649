"""``run --once`` with OAuth2 logins: IMAP by the refresh flow, SMTP by a token command.

A token server on loopback issues and checks the tokens; Dovecot's oauth2 passdb and the
SMTP sink ask it. The whole output of a run must not contain any token or the client
secret, and a revoked refresh token must stop the run with exit status 78. Two runs of
the CLI, about 3 s in all.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sla_daemon.errors import EX_CONFIG
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth import OAuthServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

SLA_DAEMON = str(Path(sys.executable).parent / "sla-daemon")
USER = "support"
CLIENT_SECRET = "client-secret-" + "x7Qe"


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    """A token server that wants the client secret."""
    with OAuthServer(client_secret=CLIENT_SECRET) as server:
        yield server


@pytest.fixture
def dovecot(oauth: OAuthServer, private_dovecot: Callable[..., DovecotServer]) -> DovecotServer:
    """A Dovecot checking tokens at ``oauth``, holding one fresh client request."""
    server = private_dovecot(oauth2_introspection_url=oauth.introspection_url)
    server.add_user(USER, "unused-password")
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    mail = build_mail(
        "req-1@globex.example", sender="Client <c@globex.example>", subject="Help", at=now
    )
    server.append(USER, "INBOX", mail.as_bytes(), now)
    return server


def _config(tmp_path: Path, dovecot: DovecotServer, oauth: OAuthServer, sink: SmtpSink) -> Path:
    smtp_token = oauth.issue_access_token(USER)
    (tmp_path / "smtp-token").write_text(smtp_token + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
state_dir: {tmp_path / "state"}
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: {dovecot.host}
    port: {dovecot.port}
    security: none
    username: {USER}
    auth: oauth2
    oauth2:
      provider: custom
      token_endpoint: {oauth.token_endpoint}
      client_id: {oauth.client_id}
      client_secret_env: E2E_CLIENT_SECRET
      refresh_token_file: {tmp_path / "refresh-token"}
    folders: {{inbox: [INBOX], sent: [Sent]}}
smtp:
  host: {sink.host}
  port: {sink.port}
  security: none
  username: {USER}
  auth: oauth2
  oauth2:
    token_command: [cat, {tmp_path / "smtp-token"}]
accounts:
  - name: Globex
    domains: [globex.example]
    owner: alice@acme.example
""",
        encoding="utf-8",
    )
    return path


def _run_once(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLA_DAEMON, "--config", str(config), "--log-level", "debug", "run", "--once"],
        capture_output=True,
        text=True,
        check=False,
        env={"E2E_CLIENT_SECRET": CLIENT_SECRET, "PATH": "/usr/bin:/bin"},
        timeout=120,
    )


def test_run_once_with_oauth2_sends_the_auto_ack_and_shows_no_secret(
    tmp_path: Path, dovecot: DovecotServer, oauth: OAuthServer
) -> None:
    """IMAP and SMTP log in with tokens, the auto-ack arrives, and no secret is printed."""
    refresh_token = oauth.add_refresh_token(USER)
    (tmp_path / "refresh-token").write_text(refresh_token + "\n")
    with SmtpSink(oauth2_user_of=oauth.user_of) as sink:
        done = _run_once(_config(tmp_path, dovecot, oauth, sink))
        assert done.returncode == 0, done.stderr
        [ack] = sink.wait_for(1)
    assert ack.login == USER and ack.rcpt_tos == ("c@globex.example",)
    assert oauth.token_requests == 1
    output = done.stdout + done.stderr
    assert "oauth2 access token obtained" in output  # the log did speak of tokens
    secrets = [refresh_token, CLIENT_SECRET, *oauth.issued_tokens()]
    assert [secret for secret in secrets if secret in output] == []


def test_run_once_with_a_revoked_refresh_token_exits_78(
    tmp_path: Path, dovecot: DovecotServer, oauth: OAuthServer
) -> None:
    """A refresh token the endpoint refuses stops the run with 78 and says what to do."""
    refresh_token = oauth.add_refresh_token(USER)
    oauth.revoke(refresh_token)
    (tmp_path / "refresh-token").write_text(refresh_token + "\n")
    with SmtpSink(oauth2_user_of=oauth.user_of) as sink:
        done = _run_once(_config(tmp_path, dovecot, oauth, sink))
    assert done.returncode == EX_CONFIG
    assert "refused the refresh token (HTTP 400 invalid_grant token revoked)" in done.stderr
    assert "get a new refresh token" in done.stderr
    assert refresh_token not in done.stdout + done.stderr
    assert CLIENT_SECRET not in done.stdout + done.stderr
