"""The state database's log is copied into the database file by its own thread."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

from sla_daemon.adapters.store import Store
from sla_daemon.adapters.store_checkpoint import BACKSTOP_PAGES, WalCheckpointer
from tests.unit.builders import NOW, client_mail


def _wait_until_caught_up(checkpointer: WalCheckpointer) -> None:
    """Wait (up to 30 s, never expected) for a checkpoint begun after the last commit."""
    deadline = time.monotonic() + 30
    while not checkpointer.caught_up() and time.monotonic() < deadline:
        time.sleep(0.01)


def _messages_in_file_alone(database: Path, copy_dir: Path) -> int:
    """How many messages the database file holds without its write-ahead log."""
    copy = copy_dir / "alone.sqlite3"
    shutil.copyfile(database, copy)  # the -wal file is left behind on purpose
    db = sqlite3.connect(copy)
    try:
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    finally:
        db.close()


def test_committed_messages_reach_the_database_file_without_the_writer(tmp_path: Path) -> None:
    """After a commit the checkpoint thread copies the log: the file alone holds the rows.

    The writer's own automatic checkpoint is set far above what this test writes, so
    only the checkpoint thread can have copied them.
    """
    database = tmp_path / "state.sqlite3"
    store = Store(database)
    try:
        with store.transaction(refetchable=True):
            store.add_message(client_mail("m1", 1), "c-1", NOW)
            store.add_message(client_mail("m2", 2), "c-2", NOW)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        _wait_until_caught_up(checkpointer)
        autocheckpoint = store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert autocheckpoint == BACKSTOP_PAGES
        assert _messages_in_file_alone(database, tmp_path) == 2
    finally:
        store.close()


def test_a_reader_starts_no_checkpoint_thread(tmp_path: Path) -> None:
    """Opening a database and reading it (``status``, ``report``) starts no thread."""
    Store(tmp_path / "state.sqlite3").close()
    before = {t.name for t in threading.enumerate()}
    store = Store(tmp_path / "state.sqlite3", readonly=True)
    try:
        assert store.message_count() == 0
        assert store._checkpointer is None
        assert "state-checkpoint" not in {t.name for t in threading.enumerate()} - before
    finally:
        store.close()


def test_closing_the_store_stops_the_checkpoint_thread(tmp_path: Path) -> None:
    """``close`` waits for the thread to end; the database is then whole and readable."""
    store = Store(tmp_path / "state.sqlite3")
    with store.transaction():
        store.add_message(client_mail("m1", 1), "c-1", NOW)
    checkpointer = store._checkpointer
    assert checkpointer is not None
    store.close()
    assert not checkpointer._thread.is_alive()
    reopened = Store(tmp_path / "state.sqlite3", readonly=True)
    try:
        assert reopened.message_count() == 1
    finally:
        reopened.close()
