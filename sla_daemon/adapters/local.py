"""Local mail source: a Maildir or mbox tree read as if it were an IMAP account.

The demo and offline audits of mailbox exports use it in place of ``ImapSource``. It
behaves like IMAP where the daemon can tell: a message's UID is its 1-based position in
the folder (Maildir key order, or mbox order), UIDVALIDITY is derived from the folder's
path so it survives restarts, and the cursor rules are the same. As positions shift when
messages are deleted, a cursor beyond the last message is treated like a changed
UIDVALIDITY (the folder is read again from the backfill time). Files are only ever
opened for reading; in particular nothing is moved from ``new/`` to ``cur/``, which the
stdlib ``mailbox.Maildir`` would do.
"""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import os
import re
import threading
import zlib
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog

from sla_daemon.core.model import FolderKind
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor

BATCH_SIZE = 200
"""Most messages in one ``FolderBatch``."""

MAILDIR_FLAGS = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
"""Maildir info letters and the IMAP system flags they stand for."""

LocalFormat = Literal["maildir", "mbox"]

_log = structlog.get_logger(__name__)

_BLANK_LINE = re.compile(rb"(?:\r\n|\r(?!\n)|\n)(?:\r\n|\r(?!\n)|\n)")
_HEADER_SCAN_LIMIT = 256 * 1024  # a Date header further in than this is not worth finding


class LocalSource:
    """A ``MailSource`` over a local Maildir (Maildir++ subfolders) or a directory of mbox files.

    Maildir: folder ``INBOX`` is ``path`` itself and any other folder ``X`` is ``path/.X``
    (or ``path/X`` when that is a maildir). mbox: folder ``X`` is the file ``path/X``.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        format: LocalFormat,
        inbox_folders: Sequence[str],
        sent_folders: Sequence[str],
    ) -> None:
        if format not in ("maildir", "mbox"):
            raise ValueError(f"mailbox {name!r}: unknown local format {format!r}")
        self.name = name
        self.path = Path(path)
        self.format: LocalFormat = format
        self.inbox_folders = tuple(inbox_folders)
        self.sent_folders = tuple(sent_folders)

    def __repr__(self) -> str:
        return f"LocalSource(name={self.name!r}, path={str(self.path)!r}, format={self.format!r})"

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        """Yield batches of messages newer than each folder's cursor (keyed by folder name).

        Inbox folders come first, then sent folders. A folder without a cursor, whose
        UIDVALIDITY differs, or that holds fewer messages than its cursor says, is read
        from ``backfill_since`` on by its Date header (a message without a readable Date
        is read too). A missing folder is logged and skipped.
        """
        if backfill_since.tzinfo is None:
            raise ValueError("backfill_since must be timezone-aware")
        folders = [(folder, FolderKind.INBOX) for folder in self.inbox_folders]
        folders += [(folder, FolderKind.SENT) for folder in self.sent_folders]
        for folder, kind in folders:
            yield from self._poll_folder(folder, kind, cursors.get(folder), backfill_since)

    def watch(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Local folders are not watched: the runner's poll interval reads them."""

    def close(self) -> None:
        """Nothing to release: files are opened and closed per read."""

    def folder_path(self, folder: str) -> Path | None:
        """Where ``folder`` lives on disk, or None when it does not exist."""
        if self.format == "mbox":
            candidate = self.path / folder
            return candidate if candidate.is_file() else None
        if folder.upper() == "INBOX":
            return self.path if _is_maildir(self.path) else None
        for candidate in (self.path / f".{folder}", self.path / folder):
            if _is_maildir(candidate):
                return candidate
        return None

    def _poll_folder(
        self,
        folder: str,
        kind: FolderKind,
        cursor: FolderCursor | None,
        backfill_since: datetime,
    ) -> Iterator[FolderBatch]:
        location = self.folder_path(folder)
        if location is None:
            _log.warning(
                "local folder missing, skipped",
                mailbox=self.name,
                folder=folder,
                path=str(self.path),
                format=self.format,
            )
            return
        uidvalidity = folder_uidvalidity(location)
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            shifted = yield from self._read(
                location, folder, kind, uidvalidity, after_uid=cursor.last_uid, since=None
            )
            if not shifted:
                return
            # Positions are UIDs here, so deleting messages hands their UIDs to later
            # ones; an IMAP server would have changed UIDVALIDITY instead.
            _log.warning(
                "local folder has fewer messages than its cursor, reading again from backfill",
                mailbox=self.name,
                folder=folder,
                last_uid=cursor.last_uid,
                backfill_since=backfill_since.isoformat(),
            )
        elif cursor is not None:
            _log.warning(
                "local uidvalidity changed, reading folder again from backfill",
                mailbox=self.name,
                folder=folder,
                old_uidvalidity=cursor.uidvalidity,
                new_uidvalidity=uidvalidity,
                backfill_since=backfill_since.isoformat(),
            )
        yield from self._read(
            location,
            folder,
            kind,
            uidvalidity,
            after_uid=0,
            since=backfill_since,
            # A stale cursor must be replaced even when nothing is read, or every
            # later poll would find it stale again and warn again.
            always_report=cursor is not None,
        )

    def _read(
        self,
        location: Path,
        folder: str,
        kind: FolderKind,
        uidvalidity: int,
        *,
        after_uid: int,
        since: datetime | None,
        always_report: bool = False,
    ) -> Generator[FolderBatch, None, bool]:
        """Yield batches of the messages after ``after_uid`` (dated since ``since``).

        Returns whether the folder turned out to hold fewer than ``after_uid`` messages.
        With ``always_report`` a batch is yielded even when there is nothing to read.
        """

        def batch(messages: list[FetchedMessage], up_to: int) -> FolderBatch:
            return FolderBatch(
                mailbox=self.name,
                folder=folder,
                kind=kind,
                uidvalidity=uidvalidity,
                last_uid=up_to,
                messages=tuple(messages),
            )

        pending: list[FetchedMessage] = []
        count = 0
        scanned = yielded = after_uid
        for uid, message in self._messages(location, folder, after_uid):
            count = uid
            if uid <= after_uid:
                continue
            scanned = uid
            if message is None or (since is not None and not _dated_since(message.raw, since)):
                continue
            pending.append(message)
            if len(pending) == BATCH_SIZE:
                yield batch(pending, scanned)
                pending, yielded = [], scanned
        # Also when every remaining message was older than the backfill: moving the
        # cursor past them saves reading the whole folder again on every poll.
        if pending or scanned > yielded or (always_report and scanned == after_uid):
            yield batch(pending, scanned)
        return count < after_uid

    def _messages(
        self, location: Path, folder: str, after_uid: int
    ) -> Iterator[tuple[int, FetchedMessage | None]]:
        """Every position in the folder, with its message when it is after ``after_uid``."""
        if self.format == "mbox":
            for uid, raw in mbox_messages(location, skip_through=after_uid):
                yield uid, None if raw is None else FetchedMessage(uid=uid, raw=raw)
            return
        for uid, file in enumerate(maildir_files(location), start=1):
            if uid <= after_uid:
                yield uid, None
                continue
            try:
                raw = file.read_bytes()
            except OSError as exc:
                # Usually a mail client moving the file (new/ to cur/) while we list.
                _log.warning(
                    "local message unreadable, skipped",
                    mailbox=self.name,
                    folder=folder,
                    uid=uid,
                    path=str(file),
                    error=f"{type(exc).__name__}: {exc}",
                )
                yield uid, None
                continue
            yield uid, FetchedMessage(uid=uid, raw=raw, flags=maildir_flags(file.name))


def folder_uidvalidity(location: Path) -> int:
    """A UIDVALIDITY for a folder: a non-zero 32-bit checksum of its resolved path."""
    return zlib.crc32(os.fsencode(location.resolve())) or 1


def _is_maildir(path: Path) -> bool:
    return path.is_dir() and ((path / "cur").is_dir() or (path / "new").is_dir())


def maildir_files(maildir: Path) -> list[Path]:
    """The message files of a maildir (``new/`` and ``cur/``), in Maildir key order."""
    entries: list[tuple[str, str, Path]] = []
    for sub in ("cur", "new"):
        directory = maildir / sub
        if not directory.is_dir():
            continue
        with os.scandir(directory) as listing:
            for entry in listing:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                entries.append((entry.name.partition(":")[0], entry.name, Path(entry.path)))
    entries.sort()
    return [path for _key, _name, path in entries]


def maildir_flags(filename: str) -> tuple[str, ...]:
    r"""The IMAP flags in a maildir file name's ``:2,`` info (``S`` is ``\Seen``, ...)."""
    info = filename.partition(":")[2]
    if not info.startswith("2,"):
        return ()
    return tuple(MAILDIR_FLAGS[letter] for letter in info[2:] if letter in MAILDIR_FLAGS)


def mbox_messages(path: Path, *, skip_through: int = 0) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(position, raw bytes)`` for each message of an mbox file, from 1.

    Every line starting with ``From `` begins a message, as for the stdlib ``mailbox``
    module; that line is not part of the message, nor is the blank line that ends it
    (before the next one or at the end of the file). Messages at or before
    ``skip_through`` are not collected: their bytes come as None.
    """
    position = 0
    lines: list[bytes] | None = None
    with path.open("rb") as handle:
        for line in handle:
            if line.startswith(b"From "):
                if position:
                    yield position, None if lines is None else _without_separator(lines)
                position += 1
                lines = [] if position > skip_through else None
            elif lines is not None:
                lines.append(line)
    if position:
        yield position, None if lines is None else _without_separator(lines)


def _without_separator(lines: list[bytes]) -> bytes:
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)


def _dated_since(raw: bytes, since: datetime) -> bool:
    """Whether the Date header is at or after ``since``; True when there is no usable Date."""
    date = header_date(raw)
    return date is None or date >= since


def header_date(raw: bytes) -> datetime | None:
    """The Date header of a raw message as an aware datetime (naive read as UTC), or None."""
    head = raw[:_HEADER_SCAN_LIMIT]
    blank = _BLANK_LINE.search(head)
    if blank:
        head = head[: blank.start()]
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
        value = headers.get("Date")
        if value is None:
            return None
        parsed = email.utils.parsedate_to_datetime(str(value))
    except Exception:  # any unreadable Date means "no usable Date", never a failed poll
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed
