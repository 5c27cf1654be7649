"""``sla-daemon audit``: the real engine replayed over a mailbox export; nothing is sent.

The export's messages are handed to a service (built by ``app_exports.audit_export`` over a
temporary state database) in the order they arrived, by a ``ReplaySource`` that only
shows what has arrived by the replay clock's time. The clock jumps from one event to
the next: the next message, or the next time the service asked to be woken (a deadline,
a warning, a held notice, a briefing). So each notice is decided when the running daemon
would have decided it; the ``RecordingSender`` keeps it instead of sending it.

Two results come out: the report of the period as the team measures up without the
daemon (each conversation evaluated without any notice, so no auto-acknowledgement counts),
and the notices the daemon would have sent.
"""

from __future__ import annotations

import email
import email.policy
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

import structlog

from sla_daemon.core.model import FolderKind, NoticeKind
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor
from sla_daemon.service import SlaService

log = structlog.get_logger(__name__)

EXPORT = "export"
"""The mailbox name the export's messages are stored under."""


class ReplayClock:
    """The replay's time: set by ``replay``, read by the service."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        """The replay's current time."""
        return self.at


class ReplaySource:
    """A ``MailSource`` over messages already read, showing those arrived by ``clock``.

    Every message is in one folder: a Takeout mbox holds both directions, and the role of
    a sender (client or team) is told by address, not by folder.
    """

    def __init__(self, messages: Sequence[tuple[datetime, bytes]], clock: ReplayClock) -> None:
        self.name = EXPORT
        self.clock = clock
        self.messages = sorted(messages, key=lambda pair: pair[0])
        """(arrival time, raw bytes), in arrival order; a message's UID is its position."""

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        """One batch of the messages arrived after the cursor and by the clock's time."""
        cursor = cursors.get("INBOX")
        seen = cursor.last_uid if cursor is not None else 0
        now = self.clock.now()
        fresh = tuple(
            FetchedMessage(uid, raw, internaldate=arrived)
            for uid, (arrived, raw) in enumerate(self.messages, start=1)
            if uid > seen and arrived <= now
        )
        if fresh:
            yield FolderBatch(EXPORT, "INBOX", FolderKind.INBOX, 1, fresh[-1].uid, fresh)

    def next_arrival(self, after: datetime) -> datetime | None:
        """When the first message after ``after`` arrives, or None."""
        return next((arrived for arrived, _ in self.messages if arrived > after), None)

    def watch(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Nothing to watch: the replay drives the cycles."""

    def close(self) -> None:
        """Nothing to release."""


class RecordingSender:
    """A ``NoticeSender`` that keeps every mail and sends nothing."""

    def __init__(self) -> None:
        self.kept: list[tuple[EmailMessage, tuple[str, ...]]] = []

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Keep ``message``; nobody is refused."""
        self.kept.append((message, tuple(recipients or ())))
        return {}


@dataclass(frozen=True)
class WouldSend:
    """A notice the daemon would have decided during the replay."""

    decided_at: datetime
    kind: str
    conversation_id: str
    recipients: tuple[str, ...]
    subject: str
    suppressed: str | None
    """Why it would not have been sent (e.g. the per-sender cap), or None."""


def replay(service: SlaService, source: ReplaySource, clock: ReplayClock, until: datetime) -> int:
    """Run cycles from the first message to ``until``, one per event; return how many."""
    cycles = 0
    while clock.at < until:
        report = service.run_cycle()
        cycles += 1
        upcoming = [t for t in (source.next_arrival(clock.at), report.next_check_at) if t]
        later = [t for t in upcoming if t > clock.at]
        if not later:
            break
        clock.at = min(min(later), until)
    log.info("audit.replayed", cycles=cycles, until=until.isoformat())
    return cycles


class OutboxRow(Protocol):
    """One outbox entry as the store gives it (``store_outbox.OutboxEntry``)."""

    @property
    def kind(self) -> NoticeKind:
        """The notice kind."""
        ...

    @property
    def conversation_id(self) -> str:
        """Its conversation ("" for team summaries)."""
        ...

    @property
    def recipients(self) -> tuple[str, ...]:
        """Who it is for."""
        ...

    @property
    def reason(self) -> str | None:
        """Why it was suppressed, or None."""
        ...

    @property
    def payload(self) -> bytes | None:
        """The rendered mail."""
        ...

    @property
    def decided_at(self) -> datetime:
        """When it was decided."""
        ...


def would_send(entries: Sequence[OutboxRow]) -> list[WouldSend]:
    """The replay's outbox as a list of notices, in decision order."""
    found = []
    for entry in entries:
        subject = ""
        if entry.payload is not None:
            parsed = email.message_from_bytes(entry.payload, policy=email.policy.default)
            subject = str(parsed["Subject"] or "")
        found.append(
            WouldSend(
                entry.decided_at,
                str(entry.kind),
                entry.conversation_id,
                entry.recipients,
                subject,
                entry.reason,
            )
        )
    return found
