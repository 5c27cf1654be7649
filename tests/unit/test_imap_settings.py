"""The IMAP settings: config keys, what build_source passes on, and the watch backoff."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.imap_idle import Backoff
from sla_daemon.adapters.local import LocalSource
from sla_daemon.app import build_source
from sla_daemon.config import IngestConfig, MailboxConfig, parse_config
from sla_daemon.errors import ConfigError

BASE = """\
team: {{from: "Acme <support@acme.example>"}}
smtp: {{host: smtp.acme.example}}
ingest: {{max_body_bytes: 64KiB}}
mailboxes:
  - name: support
    host: imap.acme.example
    username: support@acme.example
    password: secret
{extra}"""


def mailbox(extra: str = "") -> MailboxConfig:
    """The first mailbox of a small valid file with ``extra`` lines added to it."""
    return parse_config(BASE.format(extra=extra), "config.yaml").mailboxes[0]


def test_sent_folders_are_discovered_unless_folders_sent_is_given() -> None:
    r"""No folders.sent means None (find by SPECIAL-USE \Sent); given, even empty, it is kept."""
    assert mailbox().sent_folders is None
    assert mailbox("    folders: {inbox: [INBOX]}\n").sent_folders is None
    assert mailbox("    folders: {sent: [Sent Items]}\n").sent_folders == ["Sent Items"]
    assert mailbox("    folders: {sent: []}\n").sent_folders == []


def test_idle_renew_defaults_to_25_minutes_and_stays_below_the_29_minute_limit() -> None:
    """idle_renew is a duration of at most 29m; more is refused with the key's line."""
    assert mailbox().idle_renew == timedelta(minutes=25)
    assert mailbox("    idle_renew: 10m\n").idle_renew == timedelta(minutes=10)
    with pytest.raises(ConfigError) as refused:
        mailbox("    idle_renew: 30m\n")
    [problem] = refused.value.problems
    assert problem.startswith("config.yaml:9: mailboxes[0].idle_renew: ")
    assert "at most 29m" in problem


def test_reconnect_max_bounds_the_idle_reconnect_backoff() -> None:
    """reconnect_max (default 60s, 1s to 1h) is the ceiling of the watchers' waits.

    A value out of range is refused with the key's line.
    """
    assert mailbox().reconnect_max == timedelta(seconds=60)
    config = parse_config(BASE.format(extra="    reconnect_max: 5s\n"), "c.yaml")
    source = build_source(config.mailboxes[0], config.ingest)
    assert isinstance(source, ImapSource)
    assert source.watch_retry_wait == (1.0, 5.0)
    with pytest.raises(ConfigError) as refused:
        mailbox("    reconnect_max: 0s\n")
    [problem] = refused.value.problems
    assert problem.startswith("config.yaml:9: mailboxes[0].reconnect_max: ")
    assert "from 1s to 1h" in problem


def test_build_source_passes_body_limit_idle_and_discovery_to_imap() -> None:
    """build_source hands the IMAP source max_body_bytes, idle, idle_renew and sent=None."""
    config = parse_config(BASE.format(extra="    idle: false\n    idle_renew: 5m\n"), "c.yaml")
    source = build_source(config.mailboxes[0], config.ingest)
    assert isinstance(source, ImapSource)
    assert source.max_body_bytes == 64 * 1024
    assert source.idle is False
    assert source.idle_renew == 300.0
    assert source.sent_folders is None  # found by SPECIAL-USE on first use
    default = build_source(config.mailboxes[0])
    assert isinstance(default, ImapSource)
    assert default.max_body_bytes == IngestConfig().max_body_bytes


def test_build_source_gives_a_local_source_sent_when_not_configured(tmp_path: Path) -> None:
    """A Maildir has no SPECIAL-USE: without folders.sent it reads the folder Sent."""
    local = MailboxConfig(name="archive", path=tmp_path)
    source = build_source(local, IngestConfig())
    assert isinstance(source, LocalSource)
    assert source.sent_folders == ("Sent",)


def test_backoff_doubles_up_to_its_ceiling_and_starts_over_after_reset() -> None:
    """Waits go 1, 2, 4, ... up to 60 s, and back to 1 s once a connection works again."""
    backoff = Backoff(1.0, 60.0)
    assert [backoff() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    backoff.reset()
    assert backoff() == 1.0
    with pytest.raises(ValueError, match="low <= high"):
        Backoff(5.0, 1.0)


def test_source_refuses_an_idle_renew_beyond_the_rfc_limit() -> None:
    """RFC 2177 servers may drop a client idle for 30 minutes; 29m is the most allowed."""
    with pytest.raises(ValueError, match="idle_renew"):
        ImapSource(
            name="support",
            host="127.0.0.1",
            port=143,
            security="none",
            username="u",
            password="p",
            inbox_folders=["INBOX"],
            sent_folders=None,
            idle_renew=30 * 60.0,
        )
