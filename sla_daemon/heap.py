"""Giving the C heap's free pages back to the system after a busy cycle.

Python takes every object over 512 bytes (message payloads, rendered notices, parsed
mail, SQLite rows) from the C library's ``malloc``. When a busy cycle frees them, glibc
keeps the space for later and returns it to the system only from the top of its heap,
and only while nothing still in use sits above it. So one busy cycle makes the process
bigger for good: in the soak benchmark the first batch mails after a backlog (about 900
held team notices parsed and rendered together) left about 12 MB free but resident, a
fifth of the daemon's size, for the rest of the run.

``malloc_trim(0)`` gives back every whole free page inside the heap as well. On the
daemon's heap it takes well under a millisecond, so it runs after every cycle that
fetched or delivered something; an idle cycle allocates next to nothing and skips it.
A C library without ``malloc_trim`` (musl) keeps its own ways; that is logged once.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

MallocTrim = Callable[[int], int]


def glibc_malloc_trim() -> MallocTrim | None:
    """The C library's ``malloc_trim`` (glibc), or None where it has none."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


class HeapTrimmer:
    """Calls ``malloc_trim(0)`` after busy cycles, or nothing where it does not exist."""

    def __init__(self, trim: MallocTrim | None) -> None:
        self._trim = trim
        self._unavailable_logged = False

    def release(self) -> bool:
        """Return the heap's free pages to the system; whether it could be asked to."""
        if self._trim is None:
            if not self._unavailable_logged:
                self._unavailable_logged = True
                log.info(
                    "heap.trim_skipped",
                    reason="the C library has no malloc_trim; freed memory stays with it",
                )
            return False
        self._trim(0)
        return True
