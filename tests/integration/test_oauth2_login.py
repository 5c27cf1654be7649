"""OAuth2 logins against real servers that check tokens at a local token server.

Dovecot checks them with its oauth2 passdb, the SMTP sink with the same token server.

Each test starts its own token server and Dovecot (about 0.3 s each).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from imapclient import IMAPClient
from structlog.testing import capture_logs

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.imap_connect import token_login
from sla_daemon.adapters.oauth2 import (
    REFRESH_MARGIN,
    AccessTokens,
    CommandTokens,
    RefreshGrant,
    RefreshTokens,
)
from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.errors import AuthenticationError, PermanentError, TransientError
from tests.clocks import ManualClock
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.oauth import OAuthServer
from tests.servers.smtp_sink import SmtpSink
from tests.servers.sources import plain_imap_source

pytestmark = pytest.mark.integration

USER = "support"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def oauth() -> Iterator[OAuthServer]:
    """A token server on loopback, issuing one-hour tokens."""
    with OAuthServer() as server:
        yield server


@pytest.fixture
def dovecot(oauth: OAuthServer, private_dovecot: Callable[..., DovecotServer]) -> DovecotServer:
    """A Dovecot taking XOAUTH2/OAUTHBEARER checked at ``oauth``, with one client mail."""
    server = private_dovecot(oauth2_introspection_url=oauth.introspection_url)
    server.add_user(USER, "unused-password")
    mail = build_mail("m1@globex.example", sender="c@globex.example", subject="Help", at=NOW)
    server.append(USER, "INBOX", mail.as_bytes(), NOW)
    return server


def _source(dovecot: DovecotServer, tokens: AccessTokens) -> ImapSource:
    return plain_imap_source(dovecot.host, dovecot.port, USER, "", tokens=tokens)


def _subjects(source: ImapSource) -> list[str]:
    return [
        message.raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode().strip()
        for batch in source.poll({}, NOW - timedelta(days=1))
        for message in batch.messages
    ]


def _grant(oauth: OAuthServer, refresh_token: str) -> RefreshGrant:
    return RefreshGrant(
        endpoint=oauth.token_endpoint,
        client_id=oauth.client_id,
        client_secret=None,
        refresh_token=refresh_token,
    )


def test_imap_login_with_a_token_command(oauth: OAuthServer, dovecot: DovecotServer) -> None:
    """The token a command prints logs in by XOAUTH2 and the mailbox is read."""
    token = oauth.issue_access_token(USER)
    command = [sys.executable, "-c", f"print({token!r})"]
    source = _source(
        dovecot, CommandTokens("support", command, timedelta(minutes=50), ManualClock(NOW))
    )
    try:
        assert _subjects(source) == ["Help"]
    finally:
        source.close()
    assert f"user=<{USER}>, method=XOAUTH2" in dovecot.log_text()


def test_oauthbearer_login_reaches_the_mailbox(oauth: OAuthServer, dovecot: DovecotServer) -> None:
    """The OAUTHBEARER login (for servers without XOAUTH2) is accepted by Dovecot."""
    client = IMAPClient(dovecot.host, port=dovecot.port, ssl=False, timeout=10)
    try:
        token_login(client, "OAUTHBEARER", USER, oauth.issue_access_token(USER))
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 1
    finally:
        client.logout()
    assert f"user=<{USER}>, method=OAUTHBEARER" in dovecot.log_text()


def test_refresh_flow_fetches_a_new_token_before_the_old_one_expires(
    oauth: OAuthServer, dovecot: DovecotServer
) -> None:
    """The refresh-token grant logs in; a reconnect near expiry presents a new token."""
    clock = ManualClock(NOW)
    tokens = RefreshTokens("support", _grant(oauth, oauth.add_refresh_token(USER)), clock)
    source = _source(dovecot, tokens)
    try:
        assert _subjects(source) == ["Help"]
        first = tokens.access_token()
        source.close()
        assert _subjects(source) == ["Help"]  # a reconnect well before expiry: same token
        assert oauth.token_requests == 1
        # Within the margin of expiry, and the server no longer taking the old token:
        # only a new token can log in.
        clock.advance(timedelta(seconds=oauth.expires_in) - REFRESH_MARGIN)
        oauth.revoke(first)
        source.close()
        assert _subjects(source) == ["Help"]
        assert oauth.token_requests == 2
    finally:
        source.close()


def test_a_token_the_server_stopped_taking_is_replaced_once(
    oauth: OAuthServer, dovecot: DovecotServer
) -> None:
    """A cached token revoked early is refused; the login asks for a new one and succeeds."""
    tokens = RefreshTokens(
        "support", _grant(oauth, oauth.add_refresh_token(USER)), ManualClock(NOW)
    )
    oauth.revoke(tokens.access_token())
    source = _source(dovecot, tokens)
    try:
        assert _subjects(source) == ["Help"]
    finally:
        source.close()
    assert oauth.token_requests == 2


def test_a_revoked_refresh_token_is_a_login_refusal(
    oauth: OAuthServer, dovecot: DovecotServer
) -> None:
    """invalid_grant from the token endpoint is an AuthenticationError that says what to do."""
    refresh_token = oauth.add_refresh_token(USER)
    oauth.revoke(refresh_token)
    source = _source(
        dovecot, RefreshTokens("mailbox support", _grant(oauth, refresh_token), ManualClock(NOW))
    )
    with pytest.raises(AuthenticationError) as caught:
        _subjects(source)
    message = str(caught.value)
    assert message.startswith(
        f"mailbox support: the token endpoint {oauth.token_endpoint} refused the refresh token "
        "(HTTP 400 invalid_grant token revoked); get a new refresh token"
    )
    assert refresh_token not in message


def test_rotated_refresh_token_is_used_and_written_back(oauth: OAuthServer, tmp_path: Path) -> None:
    """A refresh token the endpoint replaces is used next time and saved to its file."""
    oauth.rotate = True
    path = tmp_path / "refresh-token"
    path.write_text(oauth.add_refresh_token(USER) + "\n")
    grant = RefreshGrant(
        endpoint=oauth.token_endpoint,
        client_id=oauth.client_id,
        client_secret=None,
        refresh_token=path.read_text().strip(),
        refresh_token_file=path,
    )
    clock = ManualClock(NOW)
    tokens = RefreshTokens("support", grant, clock)
    tokens.access_token()
    saved = path.read_text().strip()
    assert saved != grant.refresh_token
    clock.advance(timedelta(hours=1))
    tokens.access_token()  # the old refresh token is revoked: only the new one works
    assert oauth.token_requests == 2


def test_an_unavailable_or_unreachable_token_endpoint_is_transient(oauth: OAuthServer) -> None:
    """A 503 or a closed port at the token endpoint is retried later, not a refusal."""
    tokens = RefreshTokens(
        "support", _grant(oauth, oauth.add_refresh_token(USER)), ManualClock(NOW)
    )
    oauth.respond_with = 503
    with pytest.raises(TransientError, match=r"is unavailable \(HTTP 503 temporarily_unavailable"):
        tokens.access_token()
    endpoint = oauth.token_endpoint
    oauth.stop()
    with pytest.raises(TransientError, match=f"the token endpoint {endpoint} cannot be reached"):
        tokens.access_token()


def test_a_rotated_refresh_token_without_a_file_is_kept_in_memory(oauth: OAuthServer) -> None:
    """With the refresh token from the environment, a rotated one is used and the log says so."""
    oauth.rotate = True
    clock = ManualClock(NOW)
    tokens = RefreshTokens("support", _grant(oauth, oauth.add_refresh_token(USER)), clock)
    with capture_logs() as logs:
        tokens.access_token()
        clock.advance(timedelta(hours=1))
        tokens.access_token()
    rotated = [entry for entry in logs if entry["event"] == "oauth2 refresh token rotated"]
    assert [entry["kept"] for entry in rotated] == ["in memory only", "in memory only"]
    assert oauth.token_requests == 2


def _notice() -> EmailMessage:
    return build_mail(
        "ack-1@acme.example", sender="support@acme.example", to="c@globex.example",
        subject="Re: Help", at=NOW,
    )  # fmt: skip


def test_smtp_delivery_logs_in_with_xoauth2(oauth: OAuthServer) -> None:
    """A notice sent with a token from the refresh flow reaches the sink, logged in as USER."""
    tokens = RefreshTokens("smtp", _grant(oauth, oauth.add_refresh_token(USER)), ManualClock(NOW))
    with SmtpSink(oauth2_user_of=oauth.user_of) as sink:
        sender = SmtpSender(sink.host, sink.port, "none", USER, None, tokens=tokens)
        sender.send(_notice())
        [received] = sink.wait_for(1)
    assert received.login == USER
    assert received.message["Message-ID"] == "<ack-1@acme.example>"


def test_smtp_refusal_of_the_token_is_permanent_and_forgets_it(oauth: OAuthServer) -> None:
    """A token the server refuses fails the notice for good; the next try gets a new one."""
    command = [sys.executable, "-c", "print('not-a-valid-token')"]
    tokens = CommandTokens("smtp", command, timedelta(hours=1), ManualClock(NOW))
    with SmtpSink(oauth2_user_of=oauth.user_of) as sink:
        sender = SmtpSender(sink.host, sink.port, "none", USER, None, tokens=tokens)
        with pytest.raises(PermanentError) as caught:
            sender.send(_notice())
        assert sink.messages == []
    assert str(caught.value).startswith(
        f"SMTP server {sink.host}:{sink.port} refused the login of user 'support': 535"
    )
    assert "not-a-valid-token" not in str(caught.value)
    assert "check the SMTP username and oauth2 settings" in str(caught.value)


def test_smtp_with_a_revoked_refresh_token_fails_the_notice(oauth: OAuthServer) -> None:
    """A refused refresh token fails the notice as a refused password does, saying why."""
    refresh_token = oauth.add_refresh_token(USER)
    oauth.revoke(refresh_token)
    tokens = RefreshTokens("smtp", _grant(oauth, refresh_token), ManualClock(NOW))
    with SmtpSink(oauth2_user_of=oauth.user_of) as sink:
        sender = SmtpSender(sink.host, sink.port, "none", USER, None, tokens=tokens)
        with pytest.raises(PermanentError, match="refused the refresh token"):
            sender.send(_notice())
