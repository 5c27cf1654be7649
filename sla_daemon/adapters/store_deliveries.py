"""The delivery table of the state database: one row per notice and recipient.

A notice's outbox row says what was decided; its deliveries say, per recipient, whether
the mail is still to go (``pending``), waits on purpose (``held``: batching, quiet
hours), went out (``sent``) or never will (``failed``), with the attempts, the next
attempt time and the server's last reply. Times are stored, so a restart resumes the
retry schedule where it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sla_daemon.adapters.store_base import Tables, iso_utc
from sla_daemon.core.model import NoticeKind

OPEN_STATES = ("pending", "held")
"""Delivery states that still lead to an attempt."""


@dataclass(frozen=True)
class Delivery:
    """One recipient's delivery of one notice, with what the notice carries."""

    key: str
    recipient: str
    state: str
    attempts: int
    next_attempt_at: datetime | None
    last_code: int | None
    last_error: str | None
    sent_at: datetime | None
    via: str | None
    kind: NoticeKind
    conversation_id: str
    decided_at: datetime
    message_id: str | None
    payload: bytes | None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class DeliveryRecords(Tables):
    """Reads and writes the ``deliveries`` table."""

    def open_deliveries(self, now: datetime) -> list[Delivery]:
        """Pending and held deliveries whose time has come (or that have none), by decision."""
        return self._deliveries(
            "WHERE d.state IN ('pending', 'held') "
            "AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?) "
            "ORDER BY o.decided_at, d.key, d.recipient",
            (iso_utc(now),),
        )

    def held_for(self, recipient: str) -> list[Delivery]:
        """The recipient's held deliveries, whatever they wait for, by decision."""
        return self._deliveries(
            "WHERE d.state = 'held' AND d.recipient = ? ORDER BY o.decided_at, d.key",
            (recipient,),
        )

    def batch_deliveries(self, batch_key: str) -> list[Delivery]:
        """The open deliveries a recorded batch carries, by decision."""
        return self._deliveries(
            "WHERE d.via = ? AND d.state IN ('pending', 'held') ORDER BY o.decided_at, d.key",
            (batch_key,),
        )

    def deliveries(self, key: str | None = None) -> list[Delivery]:
        """Every delivery (of notice ``key`` when given), by decision and recipient."""
        if key is None:
            return self._deliveries("ORDER BY o.decided_at, d.key, d.recipient", ())
        return self._deliveries("WHERE d.key = ? ORDER BY d.recipient", (key,))

    def failed_deliveries(self) -> list[Delivery]:
        """Deliveries that failed for good, most recent decision first."""
        return self._deliveries(
            "WHERE d.state = 'failed' ORDER BY o.decided_at DESC, d.key, d.recipient", ()
        )

    def next_delivery_at(self) -> datetime | None:
        """The earliest time a pending or held delivery waits for (None: nothing waits)."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_at) FROM deliveries WHERE state IN ('pending', 'held')"
        ).fetchone()
        return _time(row[0])

    def open_delivery_counts(self) -> dict[str, int]:
        """How many deliveries are ``pending`` and ``held`` (the outbox depth)."""
        rows = self._db.execute(
            "SELECT state, COUNT(*) FROM deliveries WHERE state IN ('pending', 'held') "
            "GROUP BY state"
        ).fetchall()
        counts = dict.fromkeys(OPEN_STATES, 0)
        counts.update({str(state): int(count) for state, count in rows})
        return counts

    def hold_delivery(self, key: str, recipient: str, until: datetime) -> None:
        """Keep a delivery back on purpose until ``until``."""
        self._db.execute(
            "UPDATE deliveries SET state = 'held', next_attempt_at = ? "
            "WHERE key = ? AND recipient = ?",
            (iso_utc(until), key, recipient),
        )

    def mark_delivered(self, key: str, recipient: str, now: datetime, via: str | None) -> None:
        """Record that the recipient's server took the mail (``via``: the batch key)."""
        self._db.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?, via = ?, "
            "attempts = attempts + 1, next_attempt_at = NULL WHERE key = ? AND recipient = ?",
            (iso_utc(now), via, key, recipient),
        )
        self._settle(key)

    def mark_delivery_retry(
        self, key: str, recipient: str, code: int | None, error: str, next_at: datetime
    ) -> None:
        """Record a transient failure; the next attempt is at ``next_at``."""
        self._db.execute(
            "UPDATE deliveries SET state = 'pending', attempts = attempts + 1, "
            "next_attempt_at = ?, last_code = ?, last_error = ? WHERE key = ? AND recipient = ?",
            (iso_utc(next_at), code, error, key, recipient),
        )
        self._settle(key)

    def mark_delivery_failed(
        self, key: str, recipient: str, code: int | None, error: str, *, attempted: bool = True
    ) -> None:
        """Record that the delivery failed for good (``attempted``: this try counts)."""
        self._db.execute(
            "UPDATE deliveries SET state = 'failed', attempts = attempts + ?, "
            "next_attempt_at = NULL, last_code = ?, last_error = ? "
            "WHERE key = ? AND recipient = ?",
            (1 if attempted else 0, code, error, key, recipient),
        )
        self._settle(key)

    def _settle(self, key: str) -> None:
        """Keep the outbox row in step: settled once no delivery of it is open.

        ``sent`` when any recipient got it (``sent_at``: the last of them), ``failed``
        when none did; attempts and the last error are the deliveries' summed up.
        """
        row = self._db.execute(
            "SELECT SUM(state IN ('pending', 'held')), SUM(state = 'sent'), MAX(sent_at), "
            "SUM(attempts), MAX(last_error) FROM deliveries WHERE key = ?",
            (key,),
        ).fetchone()
        open_count, sent_count, sent_at, attempts, last_error = row
        status = "pending" if open_count else ("sent" if sent_count else "failed")
        self._db.execute(
            "UPDATE outbox SET status = ?, sent_at = ?, attempts = ?, last_error = ? "
            "WHERE key = ? AND status != 'suppressed'",
            (status, sent_at, attempts or 0, last_error, key),
        )

    def _deliveries(self, where: str, args: tuple[str, ...]) -> list[Delivery]:
        rows = self._db.execute(
            "SELECT d.key, d.recipient, d.state, d.attempts, d.next_attempt_at, d.last_code, "
            "d.last_error, d.sent_at, d.via, o.kind, o.conversation_id, o.decided_at, "
            f"o.message_id, o.payload FROM deliveries d JOIN outbox o ON o.key = d.key {where}",
            args,
        )
        return [
            Delivery(
                key=row[0],
                recipient=row[1],
                state=row[2],
                attempts=int(row[3]),
                next_attempt_at=_time(row[4]),
                last_code=row[5],
                last_error=row[6],
                sent_at=_time(row[7]),
                via=row[8],
                kind=NoticeKind(row[9]),
                conversation_id=row[10],
                decided_at=datetime.fromisoformat(row[11]),
                message_id=row[12],
                payload=row[13],
            )
            for row in rows
        ]
