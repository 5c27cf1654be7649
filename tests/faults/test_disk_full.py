"""Scenario (e): the state directory runs out of space mid-workload, then has room again.

The state directory is a 32 MiB tmpfs of its own (mounting needs root, as in CI; a
workstation without it skips, CI fails). A filler file takes every free block, so that
SQLite's writes fail with "database or disk is full" (ENOSPC); ten seconds later the
filler is deleted. Meanwhile a cycle that cannot write logs ``state.write_failed`` and
the daemon keeps running and retrying (docs/operations.md, "State directory full"):
nothing it could not record counts as done, so the mail is read again from the stored
cursors and the decisions are taken again once there is room.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sla_daemon.adapters.store import Store
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery import DeliverySettings, NoticeDelivery
from sla_daemon.errors import StateWriteError
from sla_daemon.ports import FolderCursor
from tests.faults.conftest import RigFactory
from tests.faults.table import FaultTable
from tests.faults.workload import expected_notices
from tests.notices import OWNER, queue_notice
from tests.unit.test_delivery import RecordingSender

pytestmark = [pytest.mark.faults, pytest.mark.integration]

FULL_SECONDS = 10.0


@pytest.fixture
def small_state_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory on a 32 MiB tmpfs mounted for the test, unmounted after it."""
    state = tmp_path / "state"
    state.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", str(state)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs for the state directory: {mounted.stderr.strip()}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def fill(directory: Path) -> Path:
    """Write a file into ``directory`` until the filesystem refuses (ENOSPC); return it."""
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as stream:
        for chunk in (1 << 20, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    stream.write(b"\0" * chunk)
    with pytest.raises(OSError) as refused, (directory / "probe").open("wb") as probe:
        probe.write(b"\0" * 4096)
        probe.flush()
        os.fsync(probe.fileno())
    assert refused.value.errno == errno.ENOSPC
    with contextlib.suppress(OSError):
        (directory / "probe").unlink()
    return filler


def empty_log(store: Store) -> None:
    """Copy the write-ahead log into the database and cut it to nothing.

    A log already copied is reused from its start without taking a new block, so a
    small write could still succeed on a full disk; after this every write needs room.
    The store's own checkpoint thread may be copying the log at that moment, and SQLite
    then answers "busy" (a first column of 1) instead of waiting, leaving the log as it
    was: so ask again until the log really is empty.
    """
    wal = Path(f"{store.path}-wal")
    deadline = time.monotonic() + 10.0
    while True:
        busy, frames, _ = store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy == 0 and frames == 0 and wal.stat().st_size == 0:
            return
        assert time.monotonic() < deadline, f"the log stayed busy: {busy=} {frames=}"
        time.sleep(0.01)


def test_state_directory_full_then_free_again_loses_nothing(
    small_state_dir: Path, fault_rig: RigFactory, fault_table: FaultTable
) -> None:
    """(e) ENOSPC on the state directory for 10 s mid-workload, then room again.

    The daemon logs the failed writes clearly and keeps running; afterwards every
    message is stored, every due notice arrived exactly once, and the database passes
    ``PRAGMA integrity_check``.
    """
    rig = fault_rig("disk-full", state_dir=small_state_dir)

    def run_out_of_space(wave: int) -> None:
        if wave == 3:
            filler = fill(small_state_dir)
            time.sleep(FULL_SECONDS)
            assert rig.daemon.running, rig.daemon.tail()
            filler.unlink()

    rig.daemon.start()
    rig.run_waves(run_out_of_space)
    expected = expected_notices(rig.name)
    rig.settle(expected)
    assert '"state.write_failed"' in rig.daemon.log_text()
    rig.verify(fault_table, expected)


def test_a_write_refused_for_lack_of_space_is_a_state_write_error_and_keeps_nothing(
    small_state_dir: Path,
) -> None:
    """A transaction whose COMMIT meets a full disk raises ``StateWriteError``.

    SQLite has already rolled back by then: the error says what happened (not "cannot
    rollback"), nothing of the unit of work is kept, and once there is room again the
    same store commits the next one.
    """
    store = Store.in_dir(small_state_dir)
    now = datetime.now(UTC)
    try:
        empty_log(store)
        filler = fill(small_state_dir)
        refused = pytest.raises(StateWriteError, match="database or disk is full")
        with refused, store.transaction():
            for number in range(200):
                store.set_cursor("support", f"folder-{number}", FolderCursor(1, number), now)
        assert store.cursors("support") == {}
        filler.unlink()
        with store.transaction():
            store.set_cursor("support", "INBOX", FolderCursor(1, 7), now)
        assert store.cursors("support") == {"INBOX": FolderCursor(1, 7)}
    finally:
        store.close()


def test_a_mail_whose_sent_mark_cannot_be_written_is_not_sent_again(
    small_state_dir: Path,
) -> None:
    """On a full disk a notice goes out once and its refused "sent" mark is kept.

    Each later run writes the kept mark before it sends anything: while the disk is
    still full it raises ``StateWriteError`` and sends nothing (before, the same mail
    went again at every cycle); once there is room the mark is written, the delivery
    is sent, and no further run sends the mail again.
    """
    store = Store.in_dir(small_state_dir)
    decided = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), decided)
    sender = RecordingSender()
    unrecorded: list[Callable[[], None]] = []  # outlives each run, as the outbox keeps it

    def deliver() -> None:
        NoticeDelivery(
            store=store,
            sender=sender,
            settings=DeliverySettings(),
            batch_renderer=None,
            unrecorded=unrecorded,
        ).run(decided)

    try:
        empty_log(store)
        filler = fill(small_state_dir)
        for _ in range(3):
            with pytest.raises(StateWriteError):
                deliver()
        assert len(sender.sent) == 1
        filler.unlink()
        deliver()
        deliver()
        assert len(sender.sent) == 1
        assert [d.state for d in store.deliveries("w1")] == ["sent"]
    finally:
        store.close()
