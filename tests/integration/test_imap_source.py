"""ImapSource against a real Dovecot server: cursors, dates, flags, errors."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.core.model import FolderKind
from sla_daemon.errors import (
    AuthenticationError,
    ConfigError,
    TransientError,
    UntrustedServerError,
)
from sla_daemon.ports import FolderBatch, FolderCursor
from tests.conftest import ImapUser
from tests.servers.dovecot import DovecotServer, free_port
from tests.servers.sources import plain_imap_source

pytestmark = pytest.mark.integration

SourceFactory = Callable[..., ImapSource]


def mail(number: int, subject: str = "Status of ticket") -> bytes:
    """A small RFC 5322 message with a unique Message-ID."""
    return (
        f"From: Client <client@globex.example>\r\n"
        f"To: support@acme.example\r\n"
        f"Subject: {subject} {number}\r\n"
        f"Message-ID: <msg-{number}@globex.example>\r\n"
        f"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n"
        f"\r\n"
        f"Body of message {number}.\r\n"
    ).encode()


def now_to_the_second() -> datetime:
    """The current time in UTC; INTERNALDATE has no fractions of a second."""
    return datetime.now(UTC).replace(microsecond=0)


def cursors_after(batches: Iterable[FolderBatch]) -> dict[str, FolderCursor]:
    """The cursors a caller stores after processing ``batches``."""
    cursors: dict[str, FolderCursor] = {}
    for batch in batches:
        cursors[batch.folder] = FolderCursor(batch.uidvalidity, batch.last_uid)
    return cursors


def subjects(batches: Iterable[FolderBatch]) -> list[str]:
    """The Subject numbers of every yielded message, in order."""
    found = []
    for batch in batches:
        for message in batch.messages:
            header = message.raw.split(b"Subject: ", 1)[1].split(b"\r\n", 1)[0]
            found.append(header.decode())
    return found


@pytest.fixture
def make_source(imap_user: ImapUser) -> Iterable[SourceFactory]:
    """Build ImapSources for the test's user; every one built is closed afterwards."""
    built: list[ImapSource] = []

    def build(**overrides: Any) -> ImapSource:
        account = {
            "host": imap_user.host,
            "port": imap_user.port,
            "username": imap_user.username,
            "password": imap_user.password,
        }
        source = plain_imap_source(**{**account, **overrides})
        built.append(source)
        return source

    yield build
    for source in built:
        source.close()


def poll_all(
    source: ImapSource,
    cursors: Mapping[str, FolderCursor] | None = None,
    since: datetime | None = None,
) -> list[FolderBatch]:
    """Run one poll to the end (backfill 14 days unless told otherwise)."""
    backfill_since = since or datetime.now(UTC) - timedelta(days=14)
    return list(source.poll(cursors or {}, backfill_since))


def test_reads_inbox_then_sent_with_exact_internaldate_kind_and_flags(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """Messages come back with their INTERNALDATE in UTC to the second, kind and flags."""
    user = imap_user.username
    received = (now_to_the_second() - timedelta(hours=47)).astimezone(
        timezone(timedelta(hours=5, minutes=30))
    )
    sent = now_to_the_second() - timedelta(hours=46, minutes=59, seconds=1)
    # Appended to Sent first so that yield order cannot come from append order.
    sent_uid = dovecot_server.append(user, "Sent", mail(2), sent, flags=["$ActionPlan"])
    inbox_uid = dovecot_server.append(user, "INBOX", mail(1), received, flags=["\\Flagged"])

    batches = poll_all(make_source())

    assert [(b.folder, b.kind) for b in batches] == [
        ("INBOX", FolderKind.INBOX),
        ("Sent", FolderKind.SENT),
    ]
    inbox, sent_batch = batches
    assert inbox.mailbox == "support"
    assert inbox.uidvalidity == dovecot_server.uidvalidity(user, "INBOX")
    assert sent_batch.uidvalidity == dovecot_server.uidvalidity(user, "Sent")
    assert (inbox.last_uid, sent_batch.last_uid) == (inbox_uid, sent_uid)
    [first] = inbox.messages
    [reply] = sent_batch.messages
    assert first.raw == mail(1)
    assert first.uid == inbox_uid
    assert first.internaldate == received
    assert first.internaldate is not None and first.internaldate.utcoffset() == timedelta(0)
    assert first.flags == ("\\Flagged",)
    assert reply.raw == mail(2)
    assert reply.internaldate == sent
    assert reply.flags == ("$ActionPlan",)


def test_polling_leaves_client_mail_out_of_the_imap_wire_trace(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    make_source: SourceFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The IMAP wire trace is off: a fetched body never reaches a DEBUG log record.

    imapclient switches the trace on and hands it to the ``imapclient.imaplib`` logger;
    with that logger at DEBUG the body of every fetched message would be logged.
    """
    body = b"Confidential figures for the board, quarter four.\r\n"
    dovecot_server.append(
        imap_user.username,
        "INBOX",
        mail(1).replace(b"Body of message 1.\r\n", body),
        now_to_the_second() - timedelta(hours=1),
    )
    caplog.set_level(logging.DEBUG, logger="imapclient")

    batches = poll_all(make_source())

    assert [m.raw.endswith(body) for b in batches for m in b.messages] == [True]
    assert any(r.name.startswith("imapclient") for r in caplog.records)  # the logger listened
    assert not [r for r in caplog.records if "Confidential figures" in r.getMessage()]


def test_second_poll_with_returned_cursors_yields_nothing(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """Polling again from the cursors just returned finds nothing new.

    The search ``UID n:*`` answers with the highest UID even when n is above it, so
    this fails unless the source drops UIDs at or below the cursor.
    """
    when = now_to_the_second() - timedelta(hours=1)
    dovecot_server.append(imap_user.username, "INBOX", mail(1), when)
    dovecot_server.append(imap_user.username, "Sent", mail(2), when)
    source = make_source()
    first = poll_all(source)
    assert subjects(first) == ["Status of ticket 1", "Status of ticket 2"]

    assert poll_all(source, cursors_after(first)) == []


def test_message_appended_after_a_poll_is_the_only_one_yielded_next(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """After a poll, only mail that arrived since is yielded, with a moved cursor."""
    user = imap_user.username
    when = now_to_the_second() - timedelta(hours=2)
    dovecot_server.append_many(user, "INBOX", [(mail(n), when, ()) for n in (1, 2)])
    source = make_source()
    cursors = cursors_after(poll_all(source))

    new_uid = dovecot_server.append(user, "INBOX", mail(3), when + timedelta(hours=1))
    batches = poll_all(source, cursors)

    assert subjects(batches) == ["Status of ticket 3"]
    assert [(b.folder, b.last_uid) for b in batches] == [("INBOX", new_uid)]


def test_source_can_poll_again_after_close(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """close() logs out, and the next poll connects again and carries on."""
    user = imap_user.username
    when = now_to_the_second() - timedelta(hours=2)
    dovecot_server.append(user, "INBOX", mail(1), when)
    source = make_source()
    cursors = cursors_after(poll_all(source))
    source.close()
    source.close()  # closing twice is harmless

    dovecot_server.append(user, "INBOX", mail(2), when)
    assert subjects(poll_all(source, cursors)) == ["Status of ticket 2"]


def test_polling_changes_no_flag_on_any_message(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    r"""Polling sets no \Seen and changes no flag: folders are EXAMINEd, bodies PEEKed.

    ``\Recent`` is only given up to a session that SELECTs read-write, so its survival
    also shows the source never opened a folder for writing.
    """
    user = imap_user.username
    when = now_to_the_second() - timedelta(hours=47)
    flag_sets: list[tuple[str, ...]] = [(), ("\\Flagged",), ("\\Answered", "$WaitingOnClient")]
    for folder in ("INBOX", "Sent"):
        dovecot_server.append_many(
            user, folder, [(mail(n), when, flags) for n, flags in enumerate(flag_sets)]
        )
    before = {folder: dovecot_server.flags(user, folder) for folder in ("INBOX", "Sent")}
    assert all("\\Recent" in flags for f in before.values() for flags in f.values())

    batches = poll_all(make_source())

    assert sum(len(batch.messages) for batch in batches) == 6
    after = {folder: dovecot_server.flags(user, folder) for folder in ("INBOX", "Sent")}
    assert after == before
    assert not any("\\Seen" in flags for f in after.values() for flags in f.values())


def test_changed_uidvalidity_rereads_from_backfill_since_exactly(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """A cursor from another UIDVALIDITY is ignored: the folder is read from backfill_since.

    Messages one second before backfill_since stay out even though the day-granular
    IMAP search finds them; the one at backfill_since exactly is read.
    """
    user = imap_user.username
    backfill_since = now_to_the_second() - timedelta(days=3)
    dovecot_server.append_many(
        user,
        "INBOX",
        [
            (mail(1), backfill_since - timedelta(days=7), ()),
            (mail(2), backfill_since - timedelta(seconds=1), ()),
            (mail(3), backfill_since, ()),
            (mail(4), now_to_the_second() - timedelta(hours=47), ()),
        ],
    )
    uidvalidity = dovecot_server.uidvalidity(user, "INBOX")
    stale = {"INBOX": FolderCursor(uidvalidity=uidvalidity + 1, last_uid=4)}

    with capture_logs() as logs:
        batches = poll_all(make_source(sent_folders=[]), stale, since=backfill_since)

    assert subjects(batches) == ["Status of ticket 3", "Status of ticket 4"]
    assert batches[-1].uidvalidity == uidvalidity
    assert batches[-1].last_uid == 4
    [warning] = [entry for entry in logs if "uidvalidity" in entry["event"]]
    assert warning["log_level"] == "warning"
    assert (warning["old_uidvalidity"], warning["new_uidvalidity"]) == (
        uidvalidity + 1,
        uidvalidity,
    )


def test_first_poll_without_cursor_respects_backfill_since(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """Without a cursor, mail older than backfill_since is not yielded."""
    user = imap_user.username
    now = now_to_the_second()
    dovecot_server.append(user, "Sent", mail(1), now - timedelta(days=20))
    dovecot_server.append(user, "Sent", mail(2), now - timedelta(days=2))

    batches = poll_all(make_source(), since=now - timedelta(days=14))

    assert subjects(batches) == ["Status of ticket 2"]


def test_missing_folder_is_logged_and_skipped(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """A folder the server does not have is skipped with a warning; the others are read."""
    user = imap_user.username
    when = now_to_the_second() - timedelta(hours=3)
    dovecot_server.append(user, "INBOX", mail(1), when)
    dovecot_server.append(user, "Sent", mail(2), when)
    source = make_source(inbox_folders=["Archive/Missing", "INBOX"], sent_folders=["Sent"])

    with capture_logs() as logs:
        batches = poll_all(source)

    assert [b.folder for b in batches] == ["INBOX", "Sent"]
    [skipped] = [entry for entry in logs if entry["event"] == "imap folder skipped"]
    assert skipped["log_level"] == "warning"
    assert skipped["folder"] == "Archive/Missing"
    assert "doesn't exist" in skipped["reason"]


def test_wrong_password_raises_authentication_error_without_the_password(
    imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """A refused login is an AuthenticationError naming mailbox, user and server only.

    It is not retried: only a person can fix a wrong password.
    """
    wrong = "Wrong-Secret-4711"
    source = make_source(password=wrong, retry_wait=(0.01, 0.02))

    with capture_logs() as logs, pytest.raises(AuthenticationError) as raised:
        poll_all(source)

    text = str(raised.value)
    assert isinstance(raised.value, ConfigError)
    assert wrong not in text
    assert wrong not in repr(raised.value.problems)
    assert wrong not in repr(source)
    assert "support" in text
    assert imap_user.username in text
    assert f"{imap_user.host}:{imap_user.port}" in text
    assert "([AUTHENTICATIONFAILED] Authentication failed.)" in text
    assert not [entry for entry in logs if "retrying" in entry["event"]]


def test_closed_port_raises_transient_error_after_bounded_retries(
    make_source: SourceFactory,
) -> None:
    """Nothing listening: three attempts, each retry logged once, then TransientError."""
    port = free_port()
    source = make_source(port=port, retry_wait=(0.01, 0.02))

    with capture_logs() as logs, pytest.raises(TransientError) as raised:
        poll_all(source)

    text = str(raised.value)
    assert f"127.0.0.1:{port}" in text
    assert "'support'" in text
    assert "3 attempts" in text
    retries = [entry for entry in logs if entry["event"] == "imap connect failed, retrying"]
    assert [entry["attempt"] for entry in retries] == [1, 2]
    assert all(entry["log_level"] == "warning" for entry in retries)


def test_batches_are_split_by_batch_size_in_uid_order(
    dovecot_server: DovecotServer, imap_user: ImapUser, make_source: SourceFactory
) -> None:
    """Five messages with batch_size 2 arrive as batches of 2, 2 and 1, UIDs ascending."""
    user = imap_user.username
    when = now_to_the_second() - timedelta(hours=5)
    uids = dovecot_server.append_many(user, "INBOX", [(mail(n), when, ()) for n in range(5)])

    batches = poll_all(make_source(sent_folders=[], batch_size=2))

    assert [[m.uid for m in batch.messages] for batch in batches] == [
        uids[0:2],
        uids[2:4],
        uids[4:5],
    ]
    assert [batch.last_uid for batch in batches] == [uids[1], uids[3], uids[4]]


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_certificates_are_verified_by_default(
    tls_dovecot_server: DovecotServer, security: str, make_source: SourceFactory
) -> None:
    """Without a context that trusts it, a self-signed certificate is refused (no login)."""
    server = tls_dovecot_server
    server.add_user(f"tls-refused-{security}", "Tls-Password-1")
    port = server.tls_port if security == "tls" else server.port
    source = make_source(
        host=server.host,
        port=port,
        security=security,
        username=f"tls-refused-{security}",
        password="Tls-Password-1",
        retry_wait=(0.01, 0.02),
    )

    with pytest.raises(UntrustedServerError, match="did not verify"):
        poll_all(source)


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_with_a_trusted_certificate_reads_mail(
    tls_dovecot_server: DovecotServer, security: str, make_source: SourceFactory
) -> None:
    """With a context that trusts the server's certificate, TLS and STARTTLS both work."""
    server = tls_dovecot_server
    user = f"tls-trusted-{security}"
    server.add_user(user, "Tls-Password-2")
    server.append(user, "INBOX", mail(1), now_to_the_second() - timedelta(hours=1))
    source = make_source(
        host=server.host,
        port=server.tls_port if security == "tls" else server.port,
        security=security,
        username=user,
        password="Tls-Password-2",
        ssl_context=ssl.create_default_context(cafile=str(server.certificate_path)),
    )

    assert subjects(poll_all(source)) == ["Status of ticket 1"]
