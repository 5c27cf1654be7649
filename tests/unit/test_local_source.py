from __future__ import annotations

import mailbox
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.local import BATCH_SIZE, LocalSource, folder_uidvalidity
from sla_daemon.adapters.mailparse import parse_message
from sla_daemon.core.model import FolderKind
from sla_daemon.ports import FolderBatch, FolderCursor, MailSource

BACKFILL = datetime(2026, 11, 1, tzinfo=UTC)
"""Every message built with the default date is after this."""


def message(
    ident: str, date: str | None = "Tue, 24 Nov 2026 09:30:00 +0000", body: str = ""
) -> bytes:
    """A small message whose Message-ID is ``<ident@x>``."""
    lines = ["From: client@globex.example", f"Subject: message {ident}", f"Message-ID: <{ident}@x>"]
    if date is not None:
        lines.append(f"Date: {date}")
    return ("\n".join(lines) + "\n\n" + (body or f"Body of {ident}\n")).encode()


def ids(batches: Iterable[FolderBatch]) -> list[str]:
    """The ``ident`` of every message in ``batches``, in order."""
    return [message_id_of(fetched.raw) for batch in batches for fetched in batch.messages]


def message_id_of(raw: bytes) -> str:
    """The ``ident`` that ``message`` put into the Message-ID of ``raw``."""
    for line in raw.splitlines():
        if line.startswith(b"Message-ID: <"):
            return line[len(b"Message-ID: <") :].split(b"@")[0].decode()
    raise AssertionError(f"no Message-ID in {raw[:80]!r}")


def maildir(root: Path, messages: Iterable[bytes], *, folder: str | None = None) -> mailbox.Maildir:
    """Add ``messages`` to the maildir at ``root`` (or its Maildir++ ``folder``)."""
    box = mailbox.Maildir(root, create=True)
    target = box.add_folder(folder) if folder else box
    for raw in messages:
        target.add(raw)
    return target


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Content and modification time of every file under ``root``, by relative path."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def source(
    root: Path,
    fmt: str = "maildir",
    inbox: tuple[str, ...] = ("INBOX",),
    sent: tuple[str, ...] = (),
) -> LocalSource:
    """A LocalSource named ``team`` over ``root``."""
    return LocalSource("team", root, fmt, inbox, sent)  # type: ignore[arg-type]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Where a test's maildir or mbox directory goes (not created yet)."""
    return tmp_path / "mail"


# -- maildir -----------------------------------------------------------------------------


def test_local_source_satisfies_the_mail_source_protocol(root: Path) -> None:
    """A LocalSource can stand wherever the service expects a MailSource."""
    src: MailSource = source(root)
    assert src.name == "team"
    src.close()


def test_maildir_inbox_is_the_root_and_other_folders_are_maildirplusplus(root: Path) -> None:
    """INBOX is the maildir itself, ``Sent`` is ``.Sent``; inbox folders come first."""
    maildir(root, [message("in-1")])
    maildir(root, [message("sent-1")], folder="Sent")
    batches = list(source(root, sent=("Sent",)).poll({}, BACKFILL))
    assert [(b.mailbox, b.folder, b.kind) for b in batches] == [
        ("team", "INBOX", FolderKind.INBOX),
        ("team", "Sent", FolderKind.SENT),
    ]
    assert ids(batches[:1]) == ["in-1"]
    assert ids(batches[1:]) == ["sent-1"]


def test_plain_subdirectory_maildir_is_the_fallback_for_a_folder(root: Path) -> None:
    """Without ``path/.Archive``, a maildir at ``path/Archive`` is the Archive folder."""
    root.mkdir()
    maildir(root / "Archive", [message("archived")])
    batches = list(source(root, inbox=("Archive",)).poll({}, BACKFILL))
    assert ids(batches) == ["archived"]


def test_messages_are_ordered_by_maildir_key_across_new_and_cur(root: Path) -> None:
    """UIDs are 1-based positions in key order, whichever of new/ and cur/ holds the file."""
    box = maildir(root, [])
    for key, sub, ident in [
        ("1700000003.c", "new", "third"),
        ("1700000001.a", "cur", "first"),
        ("1700000002.b", "new", "second"),
    ]:
        name = key + (":2,S" if sub == "cur" else "")
        (root / sub / name).write_bytes(message(ident))
    assert len(box) == 3
    [batch] = source(root).poll({}, BACKFILL)
    assert [m.uid for m in batch.messages] == [1, 2, 3]
    assert ids([batch]) == ["first", "second", "third"]
    assert batch.last_uid == 3


def test_generated_keys_are_read_in_sorted_key_order(root: Path) -> None:
    """For keys made by the stdlib ``mailbox`` module, the order is ``sorted(keys)``."""
    box = maildir(root, [])
    key_to_ident = {box.add(message(f"m{i}")): f"m{i}" for i in range(12)}
    [batch] = source(root).poll({}, BACKFILL)
    assert ids([batch]) == [key_to_ident[key] for key in sorted(key_to_ident)]


def test_raw_bytes_are_the_file_bytes_and_internaldate_is_none(root: Path) -> None:
    """Messages come as the exact file bytes; local files have no INTERNALDATE."""
    raw = message("exact", body="Line one\r\nLine two\r\n")
    maildir(root, [raw])
    [batch] = source(root).poll({}, BACKFILL)
    [fetched] = batch.messages
    assert fetched.raw == raw
    assert fetched.internaldate is None


def test_maildir_info_flags_become_imap_flags(root: Path) -> None:
    r"""``:2,DFRST`` maps to \Draft \Flagged \Answered \Seen \Deleted; new/ has no flags."""
    box = maildir(root, [])
    unread = mailbox.MaildirMessage(message("a-new"))
    read = mailbox.MaildirMessage(message("b-cur"))
    read.set_subdir("cur")
    read.set_flags("DFRST")
    box.add(unread)
    box.add(read)
    [batch] = source(root).poll({}, BACKFILL)
    flags = {message_id_of(m.raw): m.flags for m in batch.messages}
    assert flags == {
        "a-new": (),
        "b-cur": ("\\Draft", "\\Flagged", "\\Answered", "\\Seen", "\\Deleted"),
    }


def test_cursor_with_matching_uidvalidity_reads_only_newer_uids(root: Path) -> None:
    """Like IMAP: with a valid cursor only UIDs above ``last_uid`` come, old dates or not."""
    maildir(root, [])
    for i, date in enumerate(["Mon, 1 Jan 2024 00:00:00 +0000"] * 5):
        (root / "new" / f"17000000{i}.x").write_bytes(message(f"m{i + 1}", date))
    src = source(root)
    [first] = src.poll({}, datetime(2000, 1, 1, tzinfo=UTC))
    cursor = FolderCursor(first.uidvalidity, 3)
    [batch] = src.poll({"INBOX": cursor}, BACKFILL)
    assert ids([batch]) == ["m4", "m5"]
    assert [m.uid for m in batch.messages] == [4, 5]
    assert batch.last_uid == 5


def test_cursor_at_the_last_uid_yields_nothing(root: Path) -> None:
    """A folder with nothing new produces no batch, as IMAP does."""
    maildir(root, [message("only")])
    src = source(root)
    [batch] = src.poll({}, BACKFILL)
    assert list(src.poll({"INBOX": FolderCursor(batch.uidvalidity, 1)}, BACKFILL)) == []


def test_changed_uidvalidity_reads_again_from_backfill(root: Path) -> None:
    """A cursor from another UIDVALIDITY is ignored: the folder is read from backfill."""
    maildir(root, [message("a"), message("b")])
    [batch] = source(root).poll({"INBOX": FolderCursor(12345, 2)}, BACKFILL)
    assert sorted(ids([batch])) == ["a", "b"]


def test_cursor_beyond_the_folder_end_reads_again_from_backfill(root: Path) -> None:
    """Deleting messages shifts positions; a cursor past the end must not hide new mail.

    IMAP never reuses a UID. Here deleted messages hand their positions on, so a folder
    holding fewer messages than the cursor is read again from the backfill time (the
    store knows the messages it has already seen by their Message-ID).
    """
    maildir(root, [])
    for i in range(5):
        (root / "cur" / f"170000000{i}.x:2,S").write_bytes(message(f"m{i}"))
    src = source(root)
    [first] = src.poll({}, BACKFILL)
    for i in range(3):
        (root / "cur" / f"170000000{i}.x:2,S").unlink()
    (root / "new" / "1800000000.x").write_bytes(message("fresh"))
    with capture_logs() as logs:
        [again] = src.poll({"INBOX": FolderCursor(first.uidvalidity, first.last_uid)}, BACKFILL)
    assert ids([again]) == ["m3", "m4", "fresh"]
    assert again.last_uid == 3
    assert [e["event"] for e in logs] == [
        "local folder has fewer messages than its cursor, reading again from backfill"
    ]


def test_stale_cursor_on_an_emptied_folder_is_reset_once(root: Path) -> None:
    """An emptied folder answers a stale cursor with an empty batch resetting it to 0."""
    maildir(root, [])
    src = source(root)
    uidvalidity = folder_uidvalidity(root)
    [reset] = src.poll({"INBOX": FolderCursor(uidvalidity, 7)}, BACKFILL)
    assert (reset.messages, reset.last_uid) == ((), 0)
    with capture_logs() as logs:
        assert list(src.poll({"INBOX": FolderCursor(uidvalidity, 0)}, BACKFILL)) == []
    assert logs == []


def test_backfill_reads_messages_dated_since_or_undated(root: Path) -> None:
    """Without a cursor: Date at or after ``backfill_since``, or no readable Date."""
    maildir(root, [])
    dated = [
        ("old", "Sat, 31 Oct 2026 23:59:59 +0000"),
        ("exact", "Sun, 01 Nov 2026 00:00:00 +0000"),
        ("zoned-old", "Sun, 01 Nov 2026 00:30:00 +0100"),
        ("new", "Tue, 24 Nov 2026 09:30:00 +0000"),
        ("undated", None),
        ("garbled", "yesterday-ish"),
    ]
    for i, (ident, date) in enumerate(dated):
        (root / "new" / f"1700000{i}.x").write_bytes(message(ident, date))
    batches = list(source(root).poll({}, BACKFILL))
    assert ids(batches) == ["exact", "new", "undated", "garbled"]
    assert [m.uid for m in batches[0].messages] == [2, 4, 5, 6]


def test_backfill_skipping_everything_still_moves_the_cursor(root: Path) -> None:
    """When every message is older than the backfill, an empty batch records the scan."""
    maildir(root, [message("old", "Mon, 1 Jan 2024 00:00:00 +0000")])
    [batch] = source(root).poll({}, BACKFILL)
    assert batch.messages == ()
    assert batch.last_uid == 1


def test_batches_hold_at_most_two_hundred_messages(root: Path) -> None:
    """450 messages come as 200 + 200 + 50, each batch's last UID being its cursor."""
    maildir(root, [])
    for i in range(450):
        (root / "cur" / f"{1700000000 + i}.x:2,S").write_bytes(message(f"m{i}"))
    batches = list(source(root).poll({}, BACKFILL))
    assert BATCH_SIZE == 200
    assert [len(b.messages) for b in batches] == [200, 200, 50]
    assert [b.last_uid for b in batches] == [200, 400, 450]
    assert [m.uid for b in batches for m in b.messages] == list(range(1, 451))


def test_uidvalidity_is_stable_across_instances_and_distinct_per_folder(root: Path) -> None:
    """The same folder has the same UIDVALIDITY in every run; other folders differ."""
    maildir(root, [message("a")])
    maildir(root, [message("b")], folder="Sent")
    first = list(source(root, sent=("Sent",)).poll({}, BACKFILL))
    again = list(source(root, sent=("Sent",)).poll({}, BACKFILL))
    assert [b.uidvalidity for b in first] == [b.uidvalidity for b in again]
    assert first[0].uidvalidity != first[1].uidvalidity
    assert first[0].uidvalidity == folder_uidvalidity(root)
    assert 0 < first[0].uidvalidity < 2**32


def test_uidvalidity_follows_the_resolved_path(root: Path) -> None:
    """Reaching a folder through a symlink does not change its UIDVALIDITY."""
    root.mkdir()
    maildir(root / "real", [message("a")])
    (root / "link").symlink_to(root / "real")
    [direct] = source(root / "real").poll({}, BACKFILL)
    [linked] = source(root / "link").poll({}, BACKFILL)
    assert direct.uidvalidity == linked.uidvalidity


def test_missing_folder_is_logged_and_skipped(root: Path) -> None:
    """A folder that does not exist gives a warning; the other folders are still read."""
    maildir(root, [message("a")])
    with capture_logs() as logs:
        batches = list(source(root, sent=("Sent", "Gone")).poll({}, BACKFILL))
    assert [b.folder for b in batches] == ["INBOX"]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert {e["folder"] for e in warnings} == {"Sent", "Gone"}
    assert all(e["event"] == "local folder missing, skipped" for e in warnings)


def test_files_are_left_byte_for_byte_and_in_place(root: Path) -> None:
    """Polling never writes, renames or moves a file (new/ stays new/)."""
    box = maildir(root, [message("a"), message("b")])
    seen = mailbox.MaildirMessage(message("c"))
    seen.set_subdir("cur")
    seen.set_flags("S")
    box.add(seen)
    maildir(root, [message("d")], folder="Sent")
    before = snapshot(root)
    src = source(root, sent=("Sent",))
    batches = list(src.poll({}, BACKFILL))
    list(src.poll({b.folder: FolderCursor(b.uidvalidity, 1) for b in batches}, BACKFILL))
    src.close()
    assert snapshot(root) == before
    assert len(os.listdir(root / "new")) == 2


def test_naive_backfill_time_is_refused(root: Path) -> None:
    """A backfill time without a zone is a programming error, as for IMAP."""
    with pytest.raises(ValueError, match="timezone-aware"):
        list(source(root).poll({}, datetime(2026, 1, 1)))


def test_unknown_format_is_refused(root: Path) -> None:
    """Only ``maildir`` and ``mbox`` are understood."""
    with pytest.raises(ValueError, match="unknown local format"):
        source(root, fmt="pst")


# -- mbox --------------------------------------------------------------------------------


def write_mbox(path: Path, messages: Iterable[bytes]) -> None:
    """Write ``messages`` to a new mbox file at ``path`` with the stdlib."""
    path.parent.mkdir(exist_ok=True)
    box = mailbox.mbox(path, create=True)
    for raw in messages:
        box.add(raw)
    box.flush()
    box.close()


def test_mbox_folders_are_files_read_in_order(root: Path) -> None:
    """Folder X is the file ``path/X``; UIDs are positions; bytes match ``mailbox.mbox``."""
    write_mbox(root / "INBOX", [message(f"in{i}") for i in range(1, 4)])
    write_mbox(root / "Sent", [message("out1")])
    batches = list(source(root, fmt="mbox", sent=("Sent",)).poll({}, BACKFILL))
    assert [(b.folder, b.kind) for b in batches] == [
        ("INBOX", FolderKind.INBOX),
        ("Sent", FolderKind.SENT),
    ]
    assert ids(batches) == ["in1", "in2", "in3", "out1"]
    assert [m.uid for m in batches[0].messages] == [1, 2, 3]
    box = mailbox.mbox(root / "INBOX", create=False)
    assert [m.raw for m in batches[0].messages] == [box.get_bytes(k) for k in box.iterkeys()]
    box.close()


def test_mbox_body_line_starting_with_from_does_not_split_a_message(root: Path) -> None:
    """A quoted ``>From`` line in a body stays inside its message."""
    raw = message("quoted", body="Hello\nFrom the team, with love\nBye\n")
    write_mbox(root / "INBOX", [raw, message("next")])
    [batch] = source(root, fmt="mbox").poll({}, BACKFILL)
    assert ids([batch]) == ["quoted", "next"]
    assert b">From the team" in batch.messages[0].raw


def test_mbox_respects_cursor_and_backfill(root: Path) -> None:
    """The mbox folders follow the same cursor and backfill rules as maildirs."""
    write_mbox(
        root / "INBOX",
        [message("old", "Mon, 1 Jan 2024 00:00:00 +0000"), message("new1"), message("new2")],
    )
    src = source(root, fmt="mbox")
    [backfilled] = src.poll({}, BACKFILL)
    assert ids([backfilled]) == ["new1", "new2"]
    assert backfilled.last_uid == 3
    [after] = src.poll({"INBOX": FolderCursor(backfilled.uidvalidity, 1)}, BACKFILL)
    assert ids([after]) == ["new1", "new2"]
    assert [m.uid for m in after.messages] == [2, 3]


def test_mbox_missing_file_is_logged_and_file_left_unchanged(root: Path) -> None:
    """A missing mbox is a warning; an existing one is read without being touched."""
    write_mbox(root / "INBOX", [message("a")])
    before = snapshot(root)
    with capture_logs() as logs:
        batches = list(source(root, fmt="mbox", sent=("Sent",)).poll({}, BACKFILL))
    assert ids(batches) == ["a"]
    assert [e["folder"] for e in logs if e["log_level"] == "warning"] == ["Sent"]
    assert snapshot(root) == before


def test_local_messages_parse_with_the_date_as_arrival(root: Path) -> None:
    """Without INTERNALDATE, the parser takes arrival from the Date header."""
    maildir(root, [message("a", "Tue, 24 Nov 2026 09:30:00 +0100")])
    [batch] = source(root).poll({}, BACKFILL)
    [fetched] = batch.messages
    facts = parse_message(
        fetched.raw,
        mailbox=batch.mailbox,
        folder=batch.folder,
        folder_kind=batch.kind,
        internaldate=fetched.internaldate,
        flags=fetched.flags,
        now=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert facts.arrived_at == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
