"""Ending a test server's processes: in order (terminate) or as a crash (SIGKILL).

Read from /proc, so Linux only, like the servers themselves. A crash must leave what a
real one leaves (files half written, locks held) but no zombies: a process that nobody
reaps still answers ``kill(pid, 0)``, and servers that check whether a lock's owner
lives (Dovecot does) would wait minutes for it. Under systemd a crashed service's
processes are reaped at once; a test must not depend on how fast the machine's init is.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>


def _stat_fields(stat: Path) -> list[str]:
    """The fields of a /proc/PID/stat after the command name (which may hold spaces)."""
    return stat.read_text().rsplit(")", 1)[1].split()


def child_pids(parent: int) -> list[int]:
    """The processes whose parent is ``parent``."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(_stat_fields(stat)[1]) == parent:
                children.append(int(stat.parent.name))
    return children


def is_running(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        return _stat_fields(Path(f"/proc/{pid}/stat"))[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_gone(pids: Iterable[int], timeout: float = 10.0) -> None:
    """Wait, at most ``timeout`` seconds, until none of ``pids`` runs any more."""
    pending = list(pids)
    deadline = time.monotonic() + timeout
    while any(is_running(pid) for pid in pending) and time.monotonic() < deadline:
        time.sleep(0.02)


def terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``process`` (SIGKILL after 10 s), then each child it left running."""
    children = child_pids(process.pid)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    wait_gone(children)


def crash(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``process`` (the leader of its own process group) and all it started.

    Every killed process is reaped here, none is left a zombie.
    """
    _become_subreaper()  # the killed leader's processes become ours to reap
    doomed = [process.pid]
    for pid in doomed:  # grows as each process's children are found
        doomed.extend(child_pids(pid))
    # The whole process group at once: a child forked while the list was read would
    # otherwise live on (and keep a listening port).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in doomed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait(timeout=10)
    _reap_group(process.pid, timeout=10)
    wait_gone(doomed)


def _become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def _reap_group(group: int, *, timeout: float) -> None:
    """Reap each process of process group ``group`` once it is a zombie of ours."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        members = _group_members(group)
        if not members:
            return
        for pid, state in members:
            if state == "Z":
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, os.WNOHANG)
        time.sleep(0.01)


def _group_members(group: int) -> list[tuple[int, str]]:
    """(pid, state) of each process, zombies included, in process group ``group``."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = _stat_fields(stat)
            if int(fields[2]) == group:
                members.append((int(stat.parent.name), fields[0]))
    return members
