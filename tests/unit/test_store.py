"""The SQLite state database: migrations, cursors, links and the outbox."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from sla_daemon.adapters.store import SCHEMA_VERSION, SchemaTooNewError, Store
from sla_daemon.core.model import NoticeKind
from sla_daemon.ports import FolderCursor
from tests.unit.builders import NOW, client_mail


def test_new_database_is_migrated_to_the_current_version(tmp_path: Path) -> None:
    """Opening an empty file creates the schema and records its version."""
    store = Store(tmp_path / "s.sqlite3")
    assert store.schema_version == SCHEMA_VERSION >= 1


def test_database_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    """A schema newer than this code knows is an error, not a silent downgrade."""
    path = tmp_path / "s.sqlite3"
    Store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(SchemaTooNewError):
        Store(path)


def test_failed_unit_of_work_leaves_nothing(tmp_path: Path) -> None:
    """An exception inside a transaction rolls back every write of it."""
    store = Store(tmp_path / "s.sqlite3")
    with pytest.raises(RuntimeError), store.transaction():
        store.add_message(client_mail("m1", 1), "c-1", NOW)
        store.set_cursor("support", "INBOX", FolderCursor(1, 5), NOW)
        raise RuntimeError("crash in the middle")
    assert store.message_count() == 0
    assert store.cursors("support") == {}


def _synchronous(store: Store) -> int:
    # A connection's own setting: no other connection can read it.
    return int(store._db.execute("PRAGMA synchronous").fetchone()[0])


def test_refetchable_unit_skips_the_disk_wait_only_for_itself(tmp_path: Path) -> None:
    """A fetched batch commits with synchronous NORMAL (1); every other unit stays FULL (2).

    It is still all or nothing: a failing batch leaves neither messages nor cursor.
    """
    store = Store(tmp_path / "s.sqlite3")
    assert _synchronous(store) == 2
    with store.transaction(refetchable=True):
        assert _synchronous(store) == 1
        store.add_message(client_mail("m1", 1), "c-1", NOW)
        store.set_cursor("support", "INBOX", FolderCursor(1, 5), NOW)
    assert _synchronous(store) == 2
    with pytest.raises(RuntimeError), store.transaction(refetchable=True):
        store.add_message(client_mail("m2", 2), "c-2", NOW)
        store.set_cursor("support", "INBOX", FolderCursor(1, 9), NOW)
        raise RuntimeError("crash in the middle")
    assert _synchronous(store) == 2
    assert store.message_count() == 1
    assert store.cursors("support")["INBOX"].last_uid == 5


def test_messages_round_trip(tmp_path: Path) -> None:
    """Stored facts come back equal, grouped by conversation, with when they were stored."""
    store = Store(tmp_path / "s.sqlite3")
    facts = client_mail("m1", 1, headers=(("precedence", "bulk"),))
    store.add_message(facts, "c-1", NOW)
    assert store.message("m1") == facts
    assert store.conversation_messages("c-1") == [replace(facts, seen_at=NOW)]
    assert store.conversation_ids() == ["c-1"]


def test_outbox_decides_each_key_once(tmp_path: Path) -> None:
    """The second decision under the same key is ignored; a delivered notice is sent."""
    store = Store(tmp_path / "s.sqlite3")
    assert store.decide("k", "c-1", NoticeKind.WARNING, ("a@x",), NOW, payload=b"x")
    assert not store.decide("k", "c-1", NoticeKind.WARNING, ("b@x",), NOW, payload=b"y")
    [pending] = store.pending()
    assert pending.recipients == ("a@x",) and pending.payload == b"x"
    store.mark_delivered("k", "a@x", NOW, via=None)
    assert store.pending() == []
    assert store.notices_for("c-1")["k"].sent_at == NOW


def test_permanent_failure_is_not_retried(tmp_path: Path) -> None:
    """A notice whose only delivery failed for good leaves the pending list with its error."""
    store = Store(tmp_path / "s.sqlite3")
    store.decide("k", "c-1", NoticeKind.BREACH, ("a@x",), NOW, payload=b"x")
    store.mark_delivery_failed("k", "a@x", 550, "550 no such user")
    assert store.pending() == []
    [entry] = store.outbox()
    assert (entry.status, entry.last_error) == ("failed", "550 no such user")


def test_read_only_store_cannot_write(tmp_path: Path) -> None:
    """A read-only store (status) refuses writes instead of changing state."""
    Store.in_dir(tmp_path).close()
    reader = Store.in_dir(tmp_path, readonly=True)
    with pytest.raises(sqlite3.OperationalError):
        reader.set_cursor("support", "INBOX", FolderCursor(1, 1), NOW)
