"""What SQLite and the file system say about the state database, in the operator's words.

Each refusal becomes a ``StateDatabaseError`` whose message names the file, says what is
wrong and what to do, and whose ``exit_status`` tells systemd whether a restart can help.
Nothing here touches the file: a damaged database is left exactly as it was found, for
the operator to restore from a backup or to examine.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sla_daemon.errors import StateAccessError, StateBusyError, StateDatabaseError

RESTORE = 'stop sla-daemon and restore the latest backup (docs/operations.md, "Backups")'
"""What to do about a state database that cannot be read."""

_DAMAGED = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_NOT_ALLOWED = {
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_PERM,
    sqlite3.SQLITE_AUTH,
}
_HELD = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}


def access_error(path: Path, exc: OSError | sqlite3.Error) -> StateAccessError:
    """The error for ``path`` (the database or a file beside it) the daemon may not use."""
    read_only = isinstance(exc, OSError) and exc.errno == errno.EROFS
    return StateAccessError(
        f"cannot open or write {path}: {exc}. The state directory {path.parent} and its "
        "files must be readable and writable by the user sla-daemon runs as"
        + (" (it is on a read-only file system)" if read_only else "")
        + "; nothing was changed"
    )


def state_error(path: Path, exc: sqlite3.Error) -> StateDatabaseError | None:
    """The operator's error for SQLite's ``exc`` about the database ``path``, if it is one.

    None for any other error (a bug, or a full disk, which the transaction handles).
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    damaged = damage_error(path, exc)
    if damaged is not None:
        return damaged
    if code & 0xFF in _NOT_ALLOWED:
        return access_error(path, exc)
    if code & 0xFF in _HELD:
        return StateBusyError(
            f"{path} is locked by another process ({exc}): stop the other sla-daemon or "
            "sqlite3 session on it, then try again"
        )
    if code & 0xFF == sqlite3.SQLITE_IOERR:
        return StateAccessError(
            f"cannot read or write {path}: {exc} (an input/output error of its disk). "
            f"Check the disk; if the file cannot be read any more, {RESTORE}"
        )
    return None


def damage_error(path: Path, exc: sqlite3.Error) -> StateDatabaseError | None:
    """The operator's error when SQLite's ``exc`` says ``path`` is damaged, else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None or code & 0xFF not in _DAMAGED:
        return None
    return StateDatabaseError(
        f"{path} is not a usable sla-daemon state database: {exc} (it is damaged, "
        f"truncated or not an SQLite file). It was left as it is: {RESTORE}"
    )


@contextmanager
def damage_errors(path: Path) -> Iterator[None]:
    """Raise damage SQLite finds in ``path`` while in use as a ``StateDatabaseError``.

    Found mid-cycle (pages the open did not read): no later cycle can mend the file, so
    the daemon must stop rather than retry. Any other error passes unchanged: a lock
    held a while or a full disk is the cycle's to retry.
    """
    try:
        yield
    except sqlite3.Error as exc:
        error = damage_error(path, exc)
        if error is None:
            raise
        raise error from exc


@contextmanager
def state_errors(path: Path) -> Iterator[None]:
    """Raise each SQLite or file-system refusal about ``path`` as a ``StateDatabaseError``."""
    try:
        yield
    except sqlite3.Error as exc:
        error = state_error(path, exc)
        if error is None:
            raise
        raise error from exc
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise access_error(path, exc) from exc
