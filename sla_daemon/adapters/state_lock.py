"""One ``run`` per state directory: a second daemon on the same database is refused.

Two daemons on one database would both read the open deliveries and send each notice
twice, and race each other's migrations. SQLite's own locks only serialise their writes,
so ``run`` holds an exclusive ``flock`` on ``daemon.lock`` in the state directory for as
long as it runs. The kernel releases it when the process ends, however it ends, so a
crashed daemon never leaves a stale lock behind. The file holds the holder's process id
for the message; it is never removed (removing it would let a third process lock a new
file while the second still holds the old one). ``status``, ``report`` and ``explain``
only read and take no lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from sla_daemon.adapters.store_errors import state_errors
from sla_daemon.errors import StateBusyError

LOCK_NAME = "daemon.lock"

log = structlog.get_logger(__name__)


@contextmanager
def exclusive_run(state_dir: Path) -> Iterator[None]:
    """Hold ``state_dir``'s daemon lock for the block; ``StateBusyError`` when taken."""
    path = state_dir / LOCK_NAME
    with state_errors(path):
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(descriptor, 32).decode("ascii", "replace").strip() or "unknown"
            raise StateBusyError(
                f"another sla-daemon (process {holder}) is running on the state directory "
                f"{state_dir} (it holds {path}): two daemons on one database would send "
                "every notice twice. Stop the other one first, or give this one its own "
                "state_dir"
            ) from None
        _write_holder(descriptor, path)
        yield
    finally:
        os.close(descriptor)


def _write_holder(descriptor: int, path: Path) -> None:
    """Put this process's id in the lock file, for a second daemon's message.

    Overwritten in place, then cut to length: on a full disk the blocks already there
    are reused, and if even that fails the daemon runs on (the lock is what counts).
    """
    try:
        written = os.pwrite(descriptor, f"{os.getpid()}\n".encode("ascii"), 0)
        os.ftruncate(descriptor, written)
    except OSError as exc:
        log.warning("state.lock_holder_not_written", path=str(path), error=str(exc))
