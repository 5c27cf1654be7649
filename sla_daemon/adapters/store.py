"""The state database: SQLite under ``state_dir``.

It holds the sync cursors, every message seen (as ``MessageFacts``), the Message-ID links
that thread them into conversations, the quarantine of unreadable mail, the outbox and
each recipient's delivery, and each batch mail, recorded before it is sent.
The schema is versioned with ``PRAGMA user_version`` and migrated forward on open. Each
unit of work (one fetched batch, one decision, one send) is one transaction.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

from sla_daemon.adapters.schema import MIGRATIONS, SCHEMA_VERSION
from sla_daemon.adapters.store_base import iso_utc
from sla_daemon.adapters.store_batches import BatchRecords
from sla_daemon.adapters.store_changes import ChangeRecords
from sla_daemon.adapters.store_checkpoint import BACKSTOP_PAGES, WalCheckpointer
from sla_daemon.adapters.store_deliveries import DeliveryRecords
from sla_daemon.adapters.store_errors import damage_errors, state_errors
from sla_daemon.adapters.store_limits import AutoAckLimitRecords
from sla_daemon.adapters.store_messages import SUBJECT_INDEX_VERSION, MessageRecords
from sla_daemon.adapters.store_outbox import OutboxRecords
from sla_daemon.adapters.store_summaries import SummaryRecords
from sla_daemon.errors import EX_STATE_BUSY, StateDatabaseError, StateWriteError
from sla_daemon.ports import FolderCursor

DATABASE_NAME = "state.sqlite3"


def _create_private(path: Path) -> None:
    """Make ``path``'s directory (0700 when new) and the database file (0600), whatever umask.

    The database holds clients' mail and the quarantined raw messages. SQLite creates the
    ``-wal`` and ``-shm`` files with the database file's permissions, so they follow.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if os.fstat(descriptor).st_mode & 0o077:  # made by an older version, or by hand
            os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


class SchemaTooNewError(StateDatabaseError):
    """The database was written by a newer version of sla-daemon."""


class SchemaTooOldError(StateDatabaseError):
    """A read-only reader found a database that still needs migrating."""

    exit_status = EX_STATE_BUSY


class Store(
    MessageRecords,
    OutboxRecords,
    DeliveryRecords,
    BatchRecords,
    AutoAckLimitRecords,
    SummaryRecords,
    ChangeRecords,
):
    """The SQLite state database. Open one per process; not shared across threads."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        """Open (and unless ``readonly`` create and migrate) the database at ``path``.

        Raises ``StateDatabaseError`` when it cannot be used: damaged or not SQLite, a
        newer schema, not writable, or locked. The file is left as it was found.
        """
        self.path = path
        self._checkpointer: WalCheckpointer | None = None
        try:
            with state_errors(path):
                self._open(readonly=readonly)
        except BaseException:
            if getattr(self, "_db", None) is not None:
                self._db.close()
            raise

    def _open(self, *, readonly: bool) -> None:
        path = self.path
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
        _create_private(path)
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
        """Close the database (after the checkpoint under way, if any)."""
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        self._db.close()

    def damage_as_error(self) -> AbstractContextManager[None]:
        """Raise damage found in this database after it opened as ``StateDatabaseError``."""
        return damage_errors(self.path)

    def _check_version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"{self.path} has schema version {version}, written by a newer sla-daemon "
                f"(this one knows up to {SCHEMA_VERSION}). It was left as it is: upgrade "
                'sla-daemon to the version that wrote it (docs/operations.md, "Upgrades")'
            )
        return version

    def _migrate(self) -> None:
        version = self._check_version()
        for number in range(version, SCHEMA_VERSION):
            with self.transaction():
                # executescript() would COMMIT on its own; statements one by one keep the
                # migration and its version bump in a single transaction.
                # A trigger's body holds ";" too: a piece runs once it completes a statement.
                statement = ""
                for piece in MIGRATIONS[number].split(";"):
                    statement += piece + ";"
                    if sqlite3.complete_statement(statement):
                        if statement.strip(" \n;"):
                            self._db.execute(statement)
                        statement = ""
                self._db.execute(f"PRAGMA user_version = {number + 1}")
                if number + 1 == SUBJECT_INDEX_VERSION:
                    self._index_stored_messages()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database."""
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def transaction(self, *, refetchable: bool = False) -> Iterator[None]:
        """One unit of work: committed as a whole, or rolled back on any exception.

        A ``refetchable`` unit (a fetched batch with its folder's cursor) is committed
        without waiting for the disk (``synchronous = NORMAL``): after a power loss it may
        be gone, but whole, cursor included, so the batch is fetched again. The WAL is
        written in order, so the next ordinary commit (an outbox record) makes it durable
        too: nothing decided from a batch can outlive the batch.
        """
        if self._db.in_transaction:
            yield
            return
        if refetchable:
            self._db.execute("PRAGMA synchronous = NORMAL")
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self._db.execute("COMMIT")
                self._checkpoint_soon()
            except BaseException as exc:
                # SQLite rolls back by itself when the disk is full; a second ROLLBACK
                # would replace the real error with "cannot rollback - no transaction is
                # active".
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and _is_disk_full(exc):
                    raise StateWriteError(
                        f"cannot write the state database {self.path}: {exc}; nothing of "
                        "this unit of work was kept, it is done again once there is room"
                    ) from exc
                raise
        finally:
            if refetchable:
                self._db.execute("PRAGMA synchronous = FULL")

    def _checkpoint_soon(self) -> None:
        """Have the log copied into the database by ``WalCheckpointer``, not by the writer.

        Started at the first commit, so readers (``status``, ``report``) never start it.
        """
        if self._checkpointer is None:
            self._db.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
            self._checkpointer = WalCheckpointer(self.path)
        self._checkpointer.committed()

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
                iso_utc(now),
            ),
        )

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
            (mailbox, folder, uidvalidity, uid, reason, raw, iso_utc(now)),
        )

    def quarantined(self) -> list[tuple[str, str, int, str]]:
        """(mailbox, folder, uid, reason) of every quarantined message."""
        rows = self._db.execute(
            "SELECT mailbox, folder, uid, reason FROM quarantine ORDER BY id"
        ).fetchall()
        return [(m, f, int(u), r) for m, f, u, r in rows]


def _is_disk_full(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for lack of space (SQLITE_FULL) rather than anything else."""
    return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
