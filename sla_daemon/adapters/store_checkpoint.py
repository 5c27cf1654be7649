"""Checkpoints of the state database's write-ahead log, in a thread of their own.

In WAL mode every committed page is written twice: into the log at the commit, and
from the log into the database file at a checkpoint. SQLite runs that checkpoint
inside whichever commit finds the log past ``wal_autocheckpoint`` pages, so the thread
that stores messages also copies them again and waits for the disk: about a tenth of
a first sync. ``WalCheckpointer`` does that second copy on its own connection, woken
after each commit. sqlite3 releases the GIL while SQLite works, so on a machine with
two cores the copy runs beside the parsing of the next batch.

The writing connection keeps an automatic checkpoint, at a larger size, as a backstop:
should this thread fall behind or fail (a full disk), the log still stays bounded.
A checkpoint never changes what the database holds, only where the pages are, and
SQLite keeps both files consistent if the process dies in the middle of one.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

BACKSTOP_PAGES = 8000
"""``wal_autocheckpoint`` of the writing connection once checkpoints run here (32 MB
at SQLite's default 4 KiB pages, against SQLite's default 1000 pages)."""


class WalCheckpointer:
    """Copies committed pages from the write-ahead log into ``path``, off the writer's thread.

    ``committed`` asks for a checkpoint and returns at once; ``close`` waits for the one
    running and stops the thread. A checkpoint that fails is logged once per distinct
    error and tried again after the next commit.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._wanted = threading.Event()
        self._stopping = False
        self._last_error: str | None = None
        self._requested = 0
        self._done = 0
        self._thread = threading.Thread(target=self._run, name="state-checkpoint", daemon=True)
        self._thread.start()

    def committed(self) -> None:
        """A transaction was committed: copy the log into the database soon."""
        self._requested += 1
        self._wanted.set()

    def caught_up(self) -> bool:
        """Whether a checkpoint has completed since the last commit (for tests)."""
        return self._done >= self._requested

    def close(self) -> None:
        """Finish the checkpoint under way, if any, and stop."""
        self._stopping = True
        self._wanted.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            # mode=rw: never create a database; the writer made it and owns its schema.
            db = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=rw", uri=True, isolation_level=None
            )
        except sqlite3.Error as exc:
            log.warning("state.checkpoint_unavailable", path=str(self.path), error=str(exc))
            return
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._stopping:
                    return
                requested = self._requested  # every commit before this point is covered
                if self._checkpoint(db):
                    self._done = requested
        finally:
            db.close()

    def _checkpoint(self, db: sqlite3.Connection) -> bool:
        try:
            # PASSIVE: copy what no reader still needs, never wait for or block anyone.
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            if str(exc) != self._last_error:
                self._last_error = str(exc)
                log.warning(
                    "state.checkpoint_failed",
                    path=str(self.path),
                    error=str(exc),
                    reason="the writer's own checkpoint keeps the log bounded meanwhile",
                )
            return False
        self._last_error = None
        return True
