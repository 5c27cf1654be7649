"""Logging setup: JSON lines on stderr, and secrets that never reach them."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from sla_daemon.logs import REDACTED, configure_logging, redact_secrets, reset_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Leave structlog and the root logger as the next test expects them."""
    root_level = logging.getLogger().level
    yield
    reset_logging()
    logging.getLogger().setLevel(root_level)


def test_redacts_secret_keys_whatever_their_case() -> None:
    """Keys containing password/secret/token/credential are masked in any case."""
    event = {
        "event": "login",
        "smtp_password": "hunter2",
        "API_TOKEN": "t0k",
        "ClientSecret": "s3",
        "credentials_file": "/run/credentials/x",
        "user": "alice",
    }
    redacted = redact_secrets(None, "info", event)
    assert redacted == {
        "event": "login",
        "smtp_password": REDACTED,
        "API_TOKEN": REDACTED,
        "ClientSecret": REDACTED,
        "credentials_file": REDACTED,
        "user": "alice",
    }
    assert event["smtp_password"] == "hunter2", "the input must not be changed"


def test_redacts_nested_mappings_and_lists() -> None:
    """Secrets inside nested dicts and lists of dicts are masked too."""
    event = {
        "event": "config",
        "smtp": {"host": "smtp.acme.example", "Password": "hunter2"},
        "mailboxes": [{"name": "support", "auth": {"token": "abc"}}],
    }
    redacted = redact_secrets(None, "info", event)
    assert redacted["smtp"] == {"host": "smtp.acme.example", "Password": REDACTED}
    assert redacted["mailboxes"] == [{"name": "support", "auth": {"token": REDACTED}}]


def test_json_mode_writes_one_json_line_without_the_secret(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With json=True an event is one JSON object on stderr: event, level, UTC time."""
    configure_logging(json=True, level="info")
    structlog.get_logger("test").info("smtp_login", user="alice", password="hunter2")
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    record = json.loads(line)
    assert record["event"] == "smtp_login"
    assert record["level"] == "info"
    assert record["user"] == "alice"
    assert record["password"] == REDACTED
    assert record["timestamp"].endswith(("Z", "+00:00"))
    assert "hunter2" not in captured.err


def test_level_filters_the_daemons_own_events(capsys: pytest.CaptureFixture[str]) -> None:
    """Below the configured level nothing is written."""
    configure_logging(json=True, level="warning")
    log = structlog.get_logger("test")
    log.info("quiet")
    log.warning("loud")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["loud"]


def test_library_logging_is_quiet_below_warning_and_formatted_alike(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Libraries' info is dropped; their warnings come out as JSON, secrets redacted."""
    configure_logging(json=True, level="debug")
    library = logging.getLogger("imapclient.imapclient")
    library.info("parsing a mail")
    library.warning("odd header", extra={"token": "abc"})
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "odd header"
    assert record["level"] == "warning"
    assert record["logger"] == "imapclient.imapclient"
    assert record["token"] == REDACTED


def test_console_mode_is_readable_and_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """With json=False the event is a plain text line, the secret still masked."""
    configure_logging(json=False, level="info")
    structlog.get_logger("test").info("smtp_login", user="alice", password="hunter2")
    err = capsys.readouterr().err
    assert "smtp_login" in err and "alice" in err
    assert "hunter2" not in err
    assert not err.lstrip().startswith("{")


def test_an_unknown_level_is_refused() -> None:
    """A misspelt level is an error, not a silent default."""
    with pytest.raises(ValueError, match="verbose"):
        configure_logging(json=True, level="verbose")


def test_mail_parser_warnings_are_silenced(capsys: pytest.CaptureFixture[str]) -> None:
    """mail-parser's per-part warnings do not reach the log; its errors do."""
    configure_logging(json=True, level="info")
    library = logging.getLogger("mailparser.core")
    library.warning("Email content 'rfc822-headers' not handled")
    library.error("broken")
    events = [json.loads(line)["event"] for line in capsys.readouterr().err.splitlines()]
    assert events == ["broken"]
