"""The protocols the service talks to, and the plain records that cross them.

Adapters implement these; unit tests use fakes; ``app.py`` is the only place that picks
the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol

from sla_daemon.core.model import FolderKind, NoticeKind


@dataclass(frozen=True)
class FolderCursor:
    """How far a folder has been read: the last UID stored under this UIDVALIDITY.

    ``highest_modseq`` is the folder's HIGHESTMODSEQ (RFC 7162 CONDSTORE) when it was
    read, or None when the server offers none: flag changes are asked for from there.
    """

    uidvalidity: int
    last_uid: int
    highest_modseq: int | None = None


@dataclass(frozen=True)
class FetchedMessage:
    """One message as a source delivers it, before parsing.

    ``internaldate`` is the server's arrival time (aware, UTC) or None when the source has
    none (local files: the parser then falls back to the Date header).
    """

    uid: int
    raw: bytes
    internaldate: datetime | None = None
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class FolderBatch:
    """Messages newer than a folder's cursor; ``last_uid`` becomes the new cursor.

    ``highest_modseq`` goes into the new cursor with ``last_uid`` (None without
    CONDSTORE). ``flag_updates`` are messages read before whose flags changed: each UID
    at or below the old cursor with its full new flag set. A batch may carry flag
    updates and no messages (then ``last_uid`` is the old cursor's).
    """

    mailbox: str
    folder: str
    kind: FolderKind
    uidvalidity: int
    last_uid: int
    messages: tuple[FetchedMessage, ...]
    highest_modseq: int | None = None
    flag_updates: tuple[tuple[int, tuple[str, ...]], ...] = ()


class MailSource(Protocol):
    """A mailbox the daemon reads (IMAP, or a local Maildir/mbox). Never changes it."""

    name: str

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        """Yield batches of messages newer than each folder's cursor (keyed by folder name).

        A folder without a cursor, or whose UIDVALIDITY changed, is read from
        ``backfill_since`` on. A source that can see flag changes of messages read
        before reports them as the batches' ``flag_updates``. Raises ``TransientError``
        when the server cannot be reached and ``AuthenticationError`` when it refuses the
        credentials.
        """
        ...

    def watch(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Start watching for changes in the background and return at once.

        An IMAP source keeps one connection per folder in IDLE and calls ``wake`` when
        the server reports new mail or changed flags, so the runner starts a cycle within
        seconds. Watching ends when ``stop`` is set. A source that cannot watch (a local
        Maildir, a server without IDLE) does nothing: the runner's poll interval covers it.
        """
        ...

    def close(self) -> None:
        """Release connections; the source may be polled again afterwards."""
        ...


class NoticeSender(Protocol):
    """Delivers rendered notices."""

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Send ``message`` to ``recipients`` (default: its To/Cc/Bcc recipients).

        Returns the recipients the server refused while it accepted others, each with
        the reply code and text. Raises ``TransientError`` (retry later) or
        ``PermanentError`` (give up, record) when nobody got it.
        """
        ...


@dataclass(frozen=True)
class BatchedNotice:
    """One notice inside a batch mail: what it said, as it was rendered."""

    key: str
    kind: NoticeKind
    subject: str
    text: str


class ServiceNotifier(Protocol):
    """The service manager's view of the daemon (systemd's notify protocol)."""

    watchdog_interval: timedelta | None
    """How often the manager expects a sign of life, or None when it expects none."""

    def ready(self, status: str) -> None:
        """The daemon does its job now."""
        ...

    def status(self, status: str) -> None:
        """One line on what the daemon is doing."""
        ...

    def watchdog(self) -> None:
        """A sign of life from a healthy main loop."""
        ...

    def reloading(self) -> None:
        """The configuration is being re-read."""
        ...

    def stopping(self) -> None:
        """The daemon is shutting down."""
        ...
