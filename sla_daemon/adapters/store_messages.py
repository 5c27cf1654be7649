"""The message tables of the state database: facts, locations, thread links, subjects."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sla_daemon.adapters.factsjson import facts_from_json, facts_to_json
from sla_daemon.adapters.schema import MIGRATIONS
from sla_daemon.adapters.store_base import Tables, iso_utc
from sla_daemon.core.model import MessageFacts
from sla_daemon.core.threads import (
    SUBJECT_WINDOW,
    SubjectCandidate,
    participants,
    subject_key,
)

SUBJECT_INDEX_VERSION = next(
    number for number, sql in enumerate(MIGRATIONS, start=1) if "conversation_subjects (" in sql
)
"""The migration that added the subject index, filled from the stored messages."""


@dataclass(frozen=True)
class KeywordChange:
    """A stored message's keywords before and after a flag change on one of its copies."""

    message_id: str
    keywords: tuple[str, ...]
    previous: tuple[str, ...]


class MessageRecords(Tables):
    """Every message seen, where it was found, and the links that thread it."""

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
                iso_utc(facts.arrived_at),
                facts_to_json(facts),
                iso_utc(now),
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
            (key, iso_utc(facts.arrived_at - SUBJECT_WINDOW)),
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

    def messages(self, message_ids: Iterable[str]) -> dict[str, MessageFacts]:
        """The stored facts of each of ``message_ids`` that has been seen, in one lookup."""
        rows = self._rows_by_id("SELECT message_id, facts FROM messages", message_ids)
        return {message_id: facts_from_json(facts) for message_id, facts in rows}

    def conversation_links(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The conversation each of ``message_ids`` is linked to, for those that are."""
        return dict(
            self._rows_by_id("SELECT message_id, conversation_id FROM thread_links", message_ids)
        )

    def _rows_by_id(self, select: str, message_ids: Iterable[str]) -> list[tuple[str, str]]:
        """The rows of ``select`` whose message_id is one of ``message_ids``."""
        ids = list(dict.fromkeys(message_ids))
        found: list[tuple[str, str]] = []
        # SQLite limits bound parameters; 500 at a time stays well inside it.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            # sqlite3 keeps every statement it prepared (128 of them), and one with
            # hundreds of parameters is large: padded to a power of two (the last id
            # repeated), a batch's lookups share ten statements instead of hundreds.
            chunk += chunk[-1:] * ((1 << (len(chunk) - 1).bit_length()) - len(chunk))
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"{select} WHERE message_id IN ({marks})", chunk)
            found += rows.fetchall()
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
        rows = self._db.execute(  # the index of schema 9: no sort
            "SELECT conversation_id FROM conversations ORDER BY first_arrived_at, conversation_id"
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
