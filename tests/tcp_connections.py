"""Open TCP connections, read from the kernel's tables in /proc rather than asked of anyone.

``client_connections`` counts the ESTABLISHED connections that one process holds to a
port (its sockets, found through /proc/<pid>/fd); ``server_connections`` counts the
ESTABLISHED connections whose local end is the port, i.e. the server's side of them.
Both read the network namespace of the process (or of the tests), IPv4 and IPv6.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

ESTABLISHED = "01"


def _entries(pid: int | str) -> list[tuple[int, int, str, int]]:
    """(local port, remote port, state, socket inode) of every TCP socket in the namespace."""
    entries = []
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
            entries.append(
                (
                    int(local.rsplit(":", 1)[1], 16),
                    int(remote.rsplit(":", 1)[1], 16),
                    state,
                    int(inode),
                )
            )
    return entries


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets that ``pid`` has open."""
    inodes = set()
    directory = Path(f"/proc/{pid}/fd")
    for name in os.listdir(directory):
        with contextlib.suppress(OSError):  # a descriptor closed while we look
            target = os.readlink(directory / name)
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def client_connections(pid: int, port: int) -> int:
    """ESTABLISHED TCP connections that process ``pid`` holds to remote ``port``."""
    mine = _socket_inodes(pid)
    return sum(
        1
        for _local, remote, state, inode in _entries(pid)
        if remote == port and state == ESTABLISHED and inode in mine
    )


def server_connections(port: int) -> int:
    """ESTABLISHED TCP connections whose local end is ``port`` (the server's sockets)."""
    return sum(
        1
        for local, _remote, state, _inode in _entries("self")
        if local == port and state == ESTABLISHED
    )


def wait_until(count: Callable[[], int], expected: int, what: str, timeout: float = 30) -> None:
    """Wait until ``count()`` is ``expected``; fail after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    seen = count()
    while seen != expected:
        assert time.monotonic() < deadline, f"{what}: {seen}, not {expected}, after {timeout}s"
        time.sleep(0.1)
        seen = count()
