"""The outbox tables of the state database: each notice decided once, then sent."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sla_daemon.adapters.store_base import Tables, iso_utc
from sla_daemon.core.model import NoticeKind, SentNotice


@dataclass(frozen=True)
class OutboxEntry:
    """A notice in the outbox."""

    key: str
    conversation_id: str
    kind: NoticeKind
    recipients: tuple[str, ...]
    status: str
    reason: str | None
    message_id: str | None
    payload: bytes | None
    decided_at: datetime
    sent_at: datetime | None
    attempts: int
    last_error: str | None


class OutboxRecords(Tables):
    """Decisions under their keys, the rendered mail, and whether it went out."""

    def decide(
        self,
        key: str,
        conversation_id: str,
        kind: NoticeKind,
        recipients: tuple[str, ...],
        now: datetime,
        *,
        payload: bytes | None = None,
        message_id: str | None = None,
        suppressed_reason: str | None = None,
    ) -> bool:
        """Record a decision under its key; False when that key was decided before.

        A notice to send is stored ``pending`` with its rendered bytes and one pending
        delivery per recipient, so that a restart sends exactly what was decided; a
        suppressed one is stored with the reason.
        """
        status = "suppressed" if suppressed_reason is not None else "pending"
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO outbox (key, conversation_id, kind, recipients, status, "
            "reason, message_id, payload, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                conversation_id,
                kind.value,
                json.dumps(list(recipients)),
                status,
                suppressed_reason,
                message_id,
                payload,
                iso_utc(now),
            ),
        )
        inserted = cursor.rowcount == 1
        if inserted and suppressed_reason is None:
            self._db.executemany(
                "INSERT OR IGNORE INTO deliveries (key, recipient, state) VALUES (?, ?, 'pending')",
                [(key, recipient) for recipient in dict.fromkeys(recipients)],
            )
        return inserted

    def is_decided(self, key: str) -> bool:
        """Whether a decision with ``key`` is already in the outbox."""
        row = self._db.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone()
        return row is not None

    def pending(self) -> list[OutboxEntry]:
        """Notices decided but not yet sent, oldest first."""
        return self._entries("WHERE status = 'pending' ORDER BY decided_at, key", ())

    def notices_for(self, conversation_id: str) -> dict[str, SentNotice]:
        """The outbox's decisions for a conversation, by key (for the engine)."""
        rows = self._db.execute(
            "SELECT key, kind, decided_at, sent_at FROM outbox WHERE conversation_id = ?",
            (conversation_id,),
        )
        return {
            key: SentNotice(
                key,
                NoticeKind(kind),
                datetime.fromisoformat(decided),
                datetime.fromisoformat(sent) if sent else None,
            )
            for key, kind, decided, sent in rows
        }

    def outbox(self, conversation_id: str | None = None) -> list[OutboxEntry]:
        """Every outbox entry (of one conversation, when given), in decision order."""
        if conversation_id is None:
            return self._entries("ORDER BY decided_at, key", ())
        return self._entries(
            "WHERE conversation_id = ? ORDER BY decided_at, key", (conversation_id,)
        )

    def _entries(self, where: str, args: tuple[str, ...]) -> list[OutboxEntry]:
        rows = self._db.execute(
            "SELECT key, conversation_id, kind, recipients, status, reason, message_id, "
            f"payload, decided_at, sent_at, attempts, last_error FROM outbox {where}",
            args,
        )
        return [
            OutboxEntry(
                key=row[0],
                conversation_id=row[1],
                kind=NoticeKind(row[2]),
                recipients=tuple(json.loads(row[3])),
                status=row[4],
                reason=row[5],
                message_id=row[6],
                payload=row[7],
                decided_at=datetime.fromisoformat(row[8]),
                sent_at=datetime.fromisoformat(row[9]) if row[9] else None,
                attempts=int(row[10]),
                last_error=row[11],
            )
            for row in rows
        ]
