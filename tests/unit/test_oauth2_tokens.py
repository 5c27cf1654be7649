"""Access tokens: when a new one is fetched, and how a token command's failures read."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sla_daemon.adapters.imap_connect import oauth2_mechanism
from sla_daemon.adapters.oauth2 import (
    REFRESH_MARGIN,
    AccessToken,
    CommandTokens,
    needs_refresh,
    xoauth2_string,
)
from sla_daemon.errors import ConfigError, TransientError
from sla_daemon.logs import REDACTED, redact_secrets
from tests.clocks import ManualClock

NOON = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_a_token_is_replaced_only_within_the_margin_of_its_expiry() -> None:
    """No token, or one expiring within the margin, needs a refresh; an earlier one does not."""
    token = AccessToken("t", expires_at=NOON + timedelta(hours=1))
    margin = timedelta(minutes=5)
    assert needs_refresh(None, NOON, margin)
    assert not needs_refresh(token, NOON, margin)
    assert not needs_refresh(token, NOON + timedelta(minutes=54, seconds=59), margin)
    assert needs_refresh(token, NOON + timedelta(minutes=55), margin)
    assert needs_refresh(token, NOON + timedelta(hours=2), margin)


def test_a_token_never_shows_in_its_repr() -> None:
    """``repr`` of a token (as in a traceback or a log) does not contain its value."""
    assert "s3cret-token" not in repr(AccessToken("s3cret-token", NOON))


def test_xoauth2_string_has_the_documented_layout() -> None:
    """The XOAUTH2 response is user=, auth=Bearer, separated and ended by ^A."""
    assert xoauth2_string("a@b.example", "tok") == "user=a@b.example\x01auth=Bearer tok\x01\x01"


def _counting_command(tmp_path: Path) -> list[str]:
    """A command printing token-1, token-2, ... one more on each run."""
    script = tmp_path / "token.py"
    script.write_text(
        "import pathlib, sys\n"
        f"p = pathlib.Path({str(tmp_path / 'count')!r})\n"
        "n = int(p.read_text()) + 1 if p.exists() else 1\n"
        "p.write_text(str(n))\n"
        "print(f'token-{n}')\n"
        "print('a second line is ignored')\n"
    )
    return [sys.executable, str(script)]


def test_command_token_is_kept_for_its_lifetime_then_fetched_again(tmp_path: Path) -> None:
    """The command runs once per lifetime: again only within the margin of its expiry."""
    clock = ManualClock(NOON)
    tokens = CommandTokens(
        "mailbox support", _counting_command(tmp_path), timedelta(minutes=50), clock
    )
    assert tokens.access_token() == "token-1"
    clock.advance(timedelta(minutes=44))
    assert tokens.access_token() == "token-1"
    clock.advance(timedelta(minutes=50) - timedelta(minutes=44) - REFRESH_MARGIN)
    assert tokens.access_token() == "token-2"


def test_a_refused_token_is_forgotten(tmp_path: Path) -> None:
    """After ``forget`` the next login gets a new token; forgetting an old one changes nothing."""
    tokens = CommandTokens(
        "smtp", _counting_command(tmp_path), timedelta(hours=1), ManualClock(NOON)
    )
    first = tokens.access_token()
    tokens.forget("some-older-token")
    assert tokens.access_token() == first
    tokens.forget(first)
    assert tokens.access_token() == "token-2"


def test_a_string_command_runs_through_the_shell(tmp_path: Path) -> None:
    """A string is a shell line: a pipe works."""
    tokens = CommandTokens(
        "smtp", "echo shell-token | tr a-z A-Z", timedelta(hours=1), ManualClock(NOON)
    )
    assert tokens.access_token() == "SHELL-TOKEN"


def test_a_failing_command_is_transient_and_shows_stderr_not_stdout() -> None:
    """Exit status and stderr's last line are reported; what it printed on stdout is not."""
    command = [
        sys.executable,
        "-c",
        "import sys; print('half-a-token'); print('network down', file=sys.stderr); sys.exit(3)",
    ]
    tokens = CommandTokens("mailbox support", command, timedelta(hours=1), ManualClock(NOON))
    with pytest.raises(TransientError) as caught:
        tokens.access_token()
    assert str(caught.value) == (
        "mailbox support: oauth2.token_command exited with status 3: network down"
    )
    assert "half-a-token" not in str(caught.value)


def test_a_command_that_prints_nothing_is_an_error() -> None:
    """An empty output is no token."""
    tokens = CommandTokens(
        "smtp", [sys.executable, "-c", "pass"], timedelta(hours=1), ManualClock(NOON)
    )
    with pytest.raises(TransientError, match="printed no token"):
        tokens.access_token()


def test_a_missing_command_is_a_configuration_error(tmp_path: Path) -> None:
    """A command that does not exist needs a person: ConfigError (exit 78)."""
    tokens = CommandTokens("smtp", [str(tmp_path / "nope")], timedelta(hours=1), ManualClock(NOON))
    with pytest.raises(ConfigError, match=r"smtp: oauth2\.token_command cannot be run"):
        tokens.access_token()


def test_oauth2_keys_are_redacted_in_log_events() -> None:
    """Tokens, the client secret and an Authorization header never reach a log line."""
    event = {
        "event": "token reply",
        "access_token": "at-1",
        "refresh_token": "rt-1",
        "client_secret": "cs-1",
        "headers": {"Authorization": "Bearer at-1"},
        "bearer": "at-1",
        "expires_in": 3600,
    }
    assert redact_secrets(None, "info", event) == {
        "event": "token reply",
        "access_token": REDACTED,
        "refresh_token": REDACTED,
        "client_secret": REDACTED,
        "headers": {"Authorization": REDACTED},
        "bearer": REDACTED,
        "expires_in": 3600,
    }


def test_xoauth2_is_preferred_and_oauthbearer_used_where_it_is_all_there_is() -> None:
    """The mechanism follows the server's CAPABILITY: XOAUTH2, else OAUTHBEARER, else none."""
    assert oauth2_mechanism([b"IMAP4rev1", b"AUTH=OAUTHBEARER", b"AUTH=XOAUTH2"]) == "XOAUTH2"
    assert oauth2_mechanism([b"IMAP4rev1", b"AUTH=oauthbearer"]) == "OAUTHBEARER"
    assert oauth2_mechanism([b"IMAP4rev1", b"AUTH=PLAIN"]) is None
