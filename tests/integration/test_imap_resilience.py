r"""ImapSource when things go wrong or look unusual, against real Dovecot servers.

Server restarts in the middle of a sync, a folder deleted and made again (new
UIDVALIDITY), a second mailbox whose server is down, sent folders found by SPECIAL-USE
``\Sent`` under another name, and a 50 MB message read without fetching its attachment.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.mailparse import parse_message
from sla_daemon.core.model import FolderKind
from sla_daemon.errors import TransientError
from sla_daemon.ports import FolderBatch, FolderCursor
from tests.conftest import ImapUser
from tests.servers.dovecot import DovecotServer
from tests.servers.sources import plain_imap_source

pytestmark = pytest.mark.integration

PrivateServer = Callable[..., DovecotServer]


def mail(number: int, subject: str = "Ticket") -> bytes:
    """A small message with a unique Message-ID."""
    return (
        f"From: Client <client@globex.example>\r\n"
        f"To: support@acme.example\r\n"
        f"Subject: {subject} {number}\r\n"
        f"Message-ID: <resilience-{number}@globex.example>\r\n"
        f"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n"
        f"\r\n"
        f"Body of message {number}.\r\n"
    ).encode()


def an_hour_ago() -> datetime:
    """An INTERNALDATE an hour ago, to the second."""
    return datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


def since() -> datetime:
    """The backfill start every poll here uses."""
    return datetime.now(UTC) - timedelta(days=14)


def cursors_after(batches: Iterable[FolderBatch]) -> dict[str, FolderCursor]:
    """The cursors a caller stores after processing ``batches``."""
    cursors: dict[str, FolderCursor] = {}
    for batch in batches:
        cursors[batch.folder] = FolderCursor(batch.uidvalidity, batch.last_uid)
    return cursors


def uids(batches: Iterable[FolderBatch]) -> list[int]:
    """The UIDs of every yielded message, in order."""
    return [message.uid for batch in batches for message in batch.messages]


def source_for(server: DovecotServer, username: str, password: str, **overrides: Any) -> ImapSource:
    """A plaintext source for ``username`` on ``server``; keywords override settings."""
    return plain_imap_source(
        server.host, server.port, username, password, **{"retry_wait": (0.01, 0.05), **overrides}
    )


def new_user(server: DovecotServer) -> tuple[str, str]:
    """Add a user with a random name and password; return both."""
    name, password = f"r{os.urandom(4).hex()}", f"pw-{os.urandom(6).hex()}"
    server.add_user(name, password)
    return name, password


def test_restart_in_the_middle_of_a_sync_resumes_from_the_cursor(
    private_dovecot: PrivateServer,
) -> None:
    """A restart between two batches raises TransientError; the next poll reads the rest.

    Every message is read exactly once over the two polls: nothing missed, nothing twice.
    """
    server = private_dovecot()
    user, password = new_user(server)
    appended = server.append_many(user, "INBOX", [(mail(n), an_hour_ago(), ()) for n in range(5)])
    source = source_for(server, user, password, sent_folders=[], batch_size=2)

    polling = source.poll({}, since())
    first = next(polling)
    server.restart()
    with pytest.raises(TransientError, match=r"127\.0\.0\.1"):
        list(polling)
    rest = list(source.poll(cursors_after([first]), since()))
    source.close()

    assert uids([first]) == appended[:2]
    assert uids(rest) == appended[2:]


def test_recreated_folder_with_a_new_uidvalidity_is_read_again_from_backfill(
    dovecot_server: DovecotServer, imap_user: ImapUser
) -> None:
    """A folder deleted and made again gets a new UIDVALIDITY; it is read from backfill."""
    user = imap_user.username
    admin = dovecot_server.connect(user)
    admin.create_folder("Requests")
    dovecot_server.append_many(user, "Requests", [(mail(n), an_hour_ago(), ()) for n in (1, 2)])
    source = source_for(
        dovecot_server, user, imap_user.password, inbox_folders=["Requests"], sent_folders=[]
    )
    before = list(source.poll({}, since()))
    old_uidvalidity = before[0].uidvalidity

    admin.delete_folder("Requests")
    admin.create_folder("Requests")
    admin.logout()
    again = dovecot_server.append_many(
        user, "Requests", [(mail(n), an_hour_ago(), ()) for n in (2, 3)]
    )
    with capture_logs() as logs:
        after = list(source.poll(cursors_after(before), since()))
    source.close()

    assert after[0].uidvalidity != old_uidvalidity
    assert uids(after) == again
    assert [m.raw for b in after for m in b.messages] == [mail(2), mail(3)]
    assert [e for e in logs if "uidvalidity changed" in e["event"]]


def test_a_mailbox_whose_server_is_down_does_not_affect_another(
    private_dovecot: PrivateServer, dovecot_server: DovecotServer, imap_user: ImapUser
) -> None:
    """Two sources: the one whose server is down raises TransientError; the other reads."""
    down = private_dovecot()
    down_user, down_password = new_user(down)
    down.halt()
    failing = source_for(down, down_user, down_password, name="manager")
    working = source_for(dovecot_server, imap_user.username, imap_user.password)
    dovecot_server.append(imap_user.username, "INBOX", mail(1), an_hour_ago())

    with pytest.raises(TransientError, match="'manager'"):
        list(failing.poll({}, since()))
    batches = list(working.poll({}, since()))
    working.close()

    assert [(b.mailbox, b.folder, len(b.messages)) for b in batches] == [("support", "INBOX", 1)]

    down.resume()  # the same mailbox comes back on its own once its server does
    assert list(failing.poll({}, since())) == []
    failing.close()


def test_sent_folder_is_found_by_special_use_under_another_name(
    private_dovecot: PrivateServer,
) -> None:
    r"""Without configured sent folders, the folder marked \Sent ("Sent Items") is read."""
    server = private_dovecot(sent_folder="Sent Items")
    user, password = new_user(server)
    server.append(user, "Sent Items", mail(7), an_hour_ago())
    source = source_for(server, user, password, sent_folders=None)

    with capture_logs() as logs:
        batches = list(source.poll({}, since()))
        list(source.poll(cursors_after(batches), since()))  # found once, then remembered
    source.close()

    assert [(b.folder, b.kind, len(b.messages)) for b in batches] == [
        ("Sent Items", FolderKind.SENT, 1)
    ]
    [found] = [e for e in logs if e["event"] == "imap sent folders found"]
    assert found["folders"] == ["Sent Items"]


def test_without_a_special_use_sent_folder_no_sent_folder_is_read(
    private_dovecot: PrivateServer,
) -> None:
    r"""No folder marked \Sent: a warning says so and only the inbox is read."""
    server = private_dovecot(sent_folder=None)
    user, password = new_user(server)
    server.append(user, "INBOX", mail(8), an_hour_ago())
    source = source_for(server, user, password, sent_folders=None)

    with capture_logs() as logs:
        batches = list(source.poll({}, since()))
    source.close()

    assert [b.folder for b in batches] == ["INBOX"]
    [warning] = [e for e in logs if e["event"] == "imap sent folder not found"]
    assert warning["log_level"] == "warning"


def test_a_50_mb_message_is_read_as_its_header_and_the_start_of_its_text(
    dovecot_server: DovecotServer, imap_user: ImapUser
) -> None:
    """Only the header and max_body_bytes of the text are fetched; the facts are complete."""
    header = (
        b"From: Client <client@globex.example>\r\n"
        b"To: support@acme.example\r\n"
        b"Subject: Logs attached\r\n"
        b"Message-ID: <huge-1@globex.example>\r\n"
        b"In-Reply-To: <earlier@acme.example>\r\n"
        b"Date: Mon, 2 Feb 2026 10:00:00 +0000\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n'
        b"\r\n"
    )
    line = b"QUJD" * 19 + b"\r\n"
    attachment = line * (50 * 1024 * 1024 // len(line))
    raw = (
        header + b"--b1\r\nContent-Type: text/plain\r\n\r\nAction plan: see the logs.\r\n"
        b"--b1\r\nContent-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + attachment + b"--b1--\r\n"
    )
    dovecot_server.append(imap_user.username, "INBOX", raw, an_hour_ago())
    limit = 64 * 1024
    source = source_for(
        dovecot_server,
        imap_user.username,
        imap_user.password,
        sent_folders=[],
        max_body_bytes=limit,
    )

    with capture_logs() as logs:
        [batch] = list(source.poll({}, since()))
    source.close()

    [message] = batch.messages
    assert len(message.raw) == len(header) + limit
    assert message.raw.startswith(header)
    [cut] = [e for e in logs if e["event"] == "imap message body cut"]
    assert cut["size"] == len(raw)
    facts = parse_message(
        message.raw,
        mailbox="support",
        folder="INBOX",
        folder_kind=FolderKind.INBOX,
        internaldate=message.internaldate,
        max_body_bytes=limit,
        now=datetime.now(UTC),
    )
    assert facts.subject == "Logs attached"
    assert facts.message_id == "huge-1@globex.example"
    assert facts.in_reply_to == "earlier@acme.example"
    assert "Action plan: see the logs." in facts.body_text
