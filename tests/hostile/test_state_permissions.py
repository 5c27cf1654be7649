"""The state database holds clients' mail: its directory and files are private to the daemon."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sla_daemon.adapters.store import Store

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """The umask of a careless service environment (022: everything world-readable)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("permissive_umask")
def test_a_new_state_directory_and_database_are_private_under_a_permissive_umask(
    tmp_path: Path,
) -> None:
    """state_dir is created 0700; the database and its -wal and -shm files 0600."""
    state = tmp_path / "state"
    store = Store.in_dir(state)
    try:
        with store.transaction():
            store.quarantine("support", "INBOX", 1, 1, "no header block", b"raw", NOW)
        files = sorted(state.iterdir())
        assert [path.name for path in files] == [
            "state.sqlite3",
            "state.sqlite3-shm",
            "state.sqlite3-wal",
        ]
        assert _mode(state) == 0o700
        assert all(_mode(path) == 0o600 for path in files), [oct(_mode(p)) for p in files]
    finally:
        store.close()


@pytest.mark.usefixtures("permissive_umask")
def test_a_world_readable_database_is_made_private_when_opened(tmp_path: Path) -> None:
    """A database left 0644 (by hand, or an older version) is 0600 after the next open."""
    Store.in_dir(tmp_path).close()
    database = tmp_path / "state.sqlite3"
    database.chmod(0o644)
    Store.in_dir(tmp_path).close()
    assert _mode(database) == 0o600
