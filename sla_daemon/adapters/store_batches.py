"""The batch table of the state database: each batch mail recorded before it is sent.

A batch mail carries several of one recipient's notices. It is stored, rendered, with
its Message-ID, in the same transaction that assigns its deliveries to it (their
``via``), so that a retry or a restart sends these same bytes again instead of composing
a new mail around a different set of notices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sla_daemon.adapters.store_base import Tables, iso_utc


@dataclass(frozen=True)
class RecordedBatch:
    """A batch mail as recorded: what goes out on every attempt, and how it went."""

    key: str
    recipient: str
    message_id: str
    payload: bytes
    state: str
    attempts: int
    recorded_at: datetime


class BatchRecords(Tables):
    """Reads and writes the ``batches`` table and the deliveries assigned to a batch."""

    def record_batch(self, batch: RecordedBatch, notice_keys: Sequence[str]) -> None:
        """Store ``batch`` and assign the recipient's open deliveries of ``notice_keys`` to it."""
        self._db.execute(
            "INSERT INTO batches (key, recipient, message_id, payload, state, attempts, "
            "recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                batch.key,
                batch.recipient,
                batch.message_id,
                batch.payload,
                batch.state,
                batch.attempts,
                iso_utc(batch.recorded_at),
            ),
        )
        self._db.executemany(
            "UPDATE deliveries SET via = ? WHERE key = ? AND recipient = ? "
            "AND state IN ('pending', 'held')",
            [(batch.key, key, batch.recipient) for key in notice_keys],
        )

    def batch(self, key: str) -> RecordedBatch | None:
        """The recorded batch ``key``, or None when there is none."""
        row = self._db.execute(
            "SELECT key, recipient, message_id, payload, state, attempts, recorded_at "
            "FROM batches WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        return RecordedBatch(
            key=row[0],
            recipient=row[1],
            message_id=row[2],
            payload=row[3],
            state=row[4],
            attempts=int(row[5]),
            recorded_at=datetime.fromisoformat(row[6]),
        )

    def settle_batch(self, key: str, state: str) -> None:
        """Record an attempt of batch ``key``: ``pending`` (retried), ``sent`` or ``failed``."""
        self._db.execute(
            "UPDATE batches SET state = ?, attempts = attempts + 1 WHERE key = ?",
            (state, key),
        )
