"""The state database: SQLite under ``state_dir``.

It holds the sync cursors, every message seen (as ``MessageFacts``), the Message-ID links
that thread them into conversations, the quarantine of unreadable mail, and the outbox.
The schema is versioned with ``PRAGMA user_version`` and migrated forward on open. Each
unit of work (one fetched batch, one decision, one send) is one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from sla_daemon.adapters.factsjson import facts_from_json, facts_to_json
from sla_daemon.adapters.schema import MIGRATIONS, SCHEMA_VERSION
from sla_daemon.core.model import MessageFacts, NoticeKind, SentNotice
from sla_daemon.core.threads import (
    SUBJECT_WINDOW,
    SubjectCandidate,
    participants,
    subject_key,
)
from sla_daemon.ports import FolderCursor

DATABASE_NAME = "state.sqlite3"

_SUBJECT_INDEX_VERSION = next(
    number for number, sql in enumerate(MIGRATIONS, start=1) if "conversation_subjects (" in sql
)
"""The migration that added the subject index, filled from the stored messages."""


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


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


@dataclass(frozen=True)
class KeywordChange:
    """A stored message's keywords before and after a flag change on one of its copies."""

    message_id: str
    keywords: tuple[str, ...]
    previous: tuple[str, ...]


class SchemaTooNewError(RuntimeError):
    """The database was written by a newer version of sla-daemon."""


class SchemaTooOldError(RuntimeError):
    """A read-only reader found a database that still needs migrating."""


class Store:
    """The SQLite state database. Open one per process; not shared across threads."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            # A read-only reader (``status``) must not migrate or create anything.
            self._db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=30
            )
            if self._check_version() < SCHEMA_VERSION:
                raise SchemaTooOldError(
                    f"{path} has an older schema; run the daemon once to migrate it"
                )
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._migrate()

    @classmethod
    def in_dir(cls, state_dir: Path, *, readonly: bool = False) -> Store:
        """Open the database in ``state_dir`` (created and migrated unless ``readonly``)."""
        return cls(state_dir / DATABASE_NAME, readonly=readonly)

    @staticmethod
    def exists_in(state_dir: Path) -> bool:
        """Whether ``state_dir`` holds a state database yet."""
        return (state_dir / DATABASE_NAME).exists()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _check_version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{self.path} has schema version {version}; this sla-daemon knows up to "
                f"{SCHEMA_VERSION}: upgrade sla-daemon or restore an older state database"
            )
        return version

    def _migrate(self) -> None:
        version = self._check_version()
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                # executescript() would COMMIT on its own; statements one by one keep the
                # migration and its version bump in a single transaction.
                for statement in MIGRATIONS[number].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number + 1}")
                if number + 1 == _SUBJECT_INDEX_VERSION:
                    self._index_stored_messages()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One unit of work: committed as a whole, or rolled back on any exception."""
        if self._db.in_transaction:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- cursors -------------------------------------------------------------------------

    def cursors(self, mailbox: str) -> dict[str, FolderCursor]:
        """The stored cursor of each folder of ``mailbox``."""
        rows = self._db.execute(
            "SELECT folder, uidvalidity, last_uid, highest_modseq FROM cursors WHERE mailbox = ?",
            (mailbox,),
        )
        return {
            folder: FolderCursor(validity, last, modseq) for folder, validity, last, modseq in rows
        }

    def set_cursor(self, mailbox: str, folder: str, cursor: FolderCursor, now: datetime) -> None:
        """Remember how far ``folder`` has been read."""
        self._db.execute(
            "INSERT INTO cursors (mailbox, folder, uidvalidity, last_uid, highest_modseq, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (mailbox, folder) DO UPDATE SET "
            "uidvalidity = excluded.uidvalidity, last_uid = excluded.last_uid, "
            "highest_modseq = excluded.highest_modseq, updated_at = excluded.updated_at",
            (
                mailbox,
                folder,
                cursor.uidvalidity,
                cursor.last_uid,
                cursor.highest_modseq,
                _iso(now),
            ),
        )

    # -- messages and threads ------------------------------------------------------------

    def message(self, message_id: str) -> MessageFacts | None:
        """The stored facts of ``message_id``, if it has been seen."""
        row = self._db.execute(
            "SELECT facts FROM messages WHERE message_id = ?", (message_id,)
        ).fetchone()
        return facts_from_json(row[0]) if row else None

    def add_message(self, facts: MessageFacts, conversation_id: str, now: datetime) -> None:
        """Store a message the daemon has not seen before."""
        self._db.execute(
            "INSERT INTO messages (message_id, conversation_id, arrived_at, facts, stored_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                facts.message_id,
                conversation_id,
                _iso(facts.arrived_at),
                facts_to_json(facts),
                _iso(now),
            ),
        )
        self._index_subject(facts, conversation_id)

    def _index_subject(self, facts: MessageFacts, conversation_id: str) -> None:
        """File ``conversation_id`` under the message's subject, with its addresses."""
        key = subject_key(facts.subject)
        if key is not None:
            self._db.execute(
                "INSERT OR IGNORE INTO conversation_subjects (subject, conversation_id) "
                "VALUES (?, ?)",
                (key, conversation_id),
            )
        self._db.executemany(
            "INSERT OR IGNORE INTO conversation_participants (conversation_id, email) "
            "VALUES (?, ?)",
            [(conversation_id, email) for email in sorted(participants(facts))],
        )

    def _index_stored_messages(self) -> None:
        rows = self._db.execute("SELECT conversation_id, facts FROM messages").fetchall()
        for conversation_id, facts in rows:
            self._index_subject(facts_from_json(facts), conversation_id)

    def subject_candidates(self, facts: MessageFacts) -> list[SubjectCandidate]:
        """The conversations filed under ``facts``'s normalized subject (none if generic).

        Each comes with its participants and the arrival of its last message; which one
        (if any) the message joins is ``core.threads.plan_threading``'s decision. Those
        quiet since before the subject window are not read.
        """
        key = subject_key(facts.subject)
        if key is None:
            return []
        rows = self._db.execute(
            "SELECT s.conversation_id, MAX(m.arrived_at) FROM conversation_subjects s "
            "JOIN messages m ON m.conversation_id = s.conversation_id "
            "WHERE s.subject = ? GROUP BY s.conversation_id HAVING MAX(m.arrived_at) >= ? "
            "ORDER BY s.conversation_id",
            (key, _iso(facts.arrived_at - SUBJECT_WINDOW)),
        ).fetchall()
        candidates = []
        for conversation_id, last_at in rows:
            emails = self._db.execute(
                "SELECT email FROM conversation_participants WHERE conversation_id = ?",
                (conversation_id,),
            )
            candidates.append(
                SubjectCandidate(
                    conversation_id=conversation_id,
                    participants=frozenset(row[0] for row in emails),
                    last_at=datetime.fromisoformat(last_at),
                )
            )
        return candidates

    def replace_facts(self, facts: MessageFacts) -> None:
        """Overwrite the stored facts of a known message (e.g. keywords merged)."""
        self._db.execute(
            "UPDATE messages SET facts = ? WHERE message_id = ?",
            (facts_to_json(facts), facts.message_id),
        )

    def add_location(
        self, mailbox: str, folder: str, uidvalidity: int, uid: int, message_id: str
    ) -> None:
        """Record where a message was found (one message may be in several folders)."""
        self._db.execute(
            "INSERT OR IGNORE INTO message_locations "
            "(mailbox, folder, uidvalidity, uid, message_id) VALUES (?, ?, ?, ?, ?)",
            (mailbox, folder, uidvalidity, uid, message_id),
        )

    def record_location_keywords(
        self,
        mailbox: str,
        folder: str,
        uidvalidity: int,
        flags_by_uid: Iterable[tuple[int, Sequence[str]]],
    ) -> None:
        """Remember the flags each location was read with (locations not stored: ignored).

        ``set_location_keywords`` needs them to know what a message's other copies carry.
        """
        self._db.executemany(
            "UPDATE message_locations SET keywords = ? "
            "WHERE mailbox = ? AND folder = ? AND uidvalidity = ? AND uid = ?",
            [
                (json.dumps(list(flags)), mailbox, folder, uidvalidity, uid)
                for uid, flags in flags_by_uid
            ],
        )

    def set_location_keywords(
        self, mailbox: str, folder: str, uidvalidity: int, uid: int, keywords: Sequence[str]
    ) -> KeywordChange | None:
        """Record the flags now on one location and update its message's keywords.

        A message's keywords are the union of the flags of its locations in each
        folder's current UIDVALIDITY: a keyword set on the copy in Sent counts even when
        the copy in INBOX lacks it, and removing it takes removing it from every copy.
        A location stored before flags were recorded counts with the keywords the
        message has now. Returns the change, or None when the location is unknown (not
        stored, quarantined) or the message's keywords stay the same.
        """
        row = self._db.execute(
            "SELECT message_id FROM message_locations "
            "WHERE mailbox = ? AND folder = ? AND uidvalidity = ? AND uid = ?",
            (mailbox, folder, uidvalidity, uid),
        ).fetchone()
        if row is None:
            return None
        message_id: str = row[0]
        self._db.execute(
            "UPDATE message_locations SET keywords = ? "
            "WHERE mailbox = ? AND folder = ? AND uidvalidity = ? AND uid = ?",
            (json.dumps(list(keywords)), mailbox, folder, uidvalidity, uid),
        )
        known = self.message(message_id)
        if known is None:
            return None
        others = self._db.execute(
            "SELECT l.keywords FROM message_locations l LEFT JOIN cursors c "
            "ON c.mailbox = l.mailbox AND c.folder = l.folder "
            "WHERE l.message_id = ? AND (c.uidvalidity IS NULL OR c.uidvalidity = l.uidvalidity) "
            "AND NOT (l.mailbox = ? AND l.folder = ? AND l.uidvalidity = ? AND l.uid = ?) "
            "ORDER BY l.mailbox, l.folder, l.uid",
            (message_id, mailbox, folder, uidvalidity, uid),
        ).fetchall()
        union = list(keywords)
        for (recorded,) in others:
            union += known.keywords if recorded is None else json.loads(recorded)
        merged = tuple(dict.fromkeys(union))
        if set(merged) == set(known.keywords):
            return None
        self.replace_facts(replace(known, keywords=merged))
        return KeywordChange(message_id=message_id, keywords=merged, previous=known.keywords)

    def conversation_links(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The conversation each of ``message_ids`` is linked to, for those that are."""
        ids = list(dict.fromkeys(message_ids))
        found: dict[str, str] = {}
        # SQLite limits bound parameters; 500 at a time stays well inside it.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            # sqlite3 keeps every statement it prepared (128 of them), and one with
            # hundreds of parameters is large: padded to a power of two (the last id
            # repeated), a batch's lookups share ten statements instead of hundreds.
            chunk += chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                "SELECT message_id, conversation_id FROM thread_links "
                f"WHERE message_id IN ({marks})",
                chunk,
            )
            found.update(dict(rows.fetchall()))
        return found

    def link(self, message_ids: Iterable[str], conversation_id: str) -> None:
        """Point ``message_ids`` at ``conversation_id`` where they point nowhere yet."""
        self._db.executemany(
            "INSERT OR IGNORE INTO thread_links (message_id, conversation_id) VALUES (?, ?)",
            [(message_id, conversation_id) for message_id in message_ids],
        )

    def merge_conversation(self, merged: str, *, into: str) -> None:
        """Move everything of conversation ``merged`` into conversation ``into``."""
        for table in ("messages", "thread_links", "outbox"):
            self._db.execute(
                f"UPDATE {table} SET conversation_id = ? WHERE conversation_id = ?",
                (into, merged),
            )
        # The index tables key on the conversation: rows ``into`` already has stay, and
        # the merged conversation's duplicates of them go.
        for table in ("conversation_subjects", "conversation_participants"):
            self._db.execute(
                f"UPDATE OR IGNORE {table} SET conversation_id = ? WHERE conversation_id = ?",
                (into, merged),
            )
            self._db.execute(f"DELETE FROM {table} WHERE conversation_id = ?", (merged,))

    def conversation_ids(self) -> list[str]:
        """Every conversation that holds at least one message, oldest activity first."""
        rows = self._db.execute(
            "SELECT conversation_id FROM messages GROUP BY conversation_id "
            "ORDER BY MIN(arrived_at), conversation_id"
        )
        return [row[0] for row in rows]

    def conversation_messages(self, conversation_id: str) -> list[MessageFacts]:
        """The stored messages of a conversation in arrival order."""
        rows = self._db.execute(
            "SELECT facts, stored_at FROM messages WHERE conversation_id = ? "
            "ORDER BY arrived_at, message_id",
            (conversation_id,),
        )
        return [
            replace(facts_from_json(facts), seen_at=datetime.fromisoformat(stored_at))
            for facts, stored_at in rows
        ]

    def message_count(self) -> int:
        """How many distinct messages are stored."""
        return int(self._db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    # -- quarantine ----------------------------------------------------------------------

    def quarantine(
        self,
        mailbox: str,
        folder: str,
        uidvalidity: int,
        uid: int,
        reason: str,
        raw: bytes,
        now: datetime,
    ) -> None:
        """Keep a message that could not be read, with its raw bytes and the reason."""
        self._db.execute(
            "INSERT OR IGNORE INTO quarantine "
            "(mailbox, folder, uidvalidity, uid, reason, raw, quarantined_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (mailbox, folder, uidvalidity, uid, reason, raw, _iso(now)),
        )

    def quarantined(self) -> list[tuple[str, str, int, str]]:
        """(mailbox, folder, uid, reason) of every quarantined message."""
        rows = self._db.execute(
            "SELECT mailbox, folder, uid, reason FROM quarantine ORDER BY id"
        ).fetchall()
        return [(m, f, int(u), r) for m, f, u, r in rows]

    # -- outbox --------------------------------------------------------------------------

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

        A notice to send is stored ``pending`` with its rendered bytes, so that a restart
        sends exactly what was decided; a suppressed one is stored with the reason.
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
                _iso(now),
            ),
        )
        return cursor.rowcount == 1

    def is_decided(self, key: str) -> bool:
        """Whether a decision with ``key`` is already in the outbox."""
        row = self._db.execute("SELECT 1 FROM outbox WHERE key = ?", (key,)).fetchone()
        return row is not None

    def pending(self) -> list[OutboxEntry]:
        """Notices decided but not yet sent, oldest first."""
        return self._entries("WHERE status = 'pending' ORDER BY decided_at, key", ())

    def mark_sent(self, key: str, now: datetime) -> None:
        """Record that the notice went out."""
        self._db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
            "last_error = NULL WHERE key = ?",
            (_iso(now), key),
        )

    def mark_attempt_failed(self, key: str, error: str, *, permanent: bool) -> None:
        """Record a failed send; a permanent failure is not tried again."""
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, "
            "status = CASE WHEN ? THEN 'failed' ELSE status END WHERE key = ?",
            (error, permanent, key),
        )

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
