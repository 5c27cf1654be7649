"""The heap trim after busy cycles: freed memory goes back to the system."""

from __future__ import annotations

from pathlib import Path

from structlog.testing import capture_logs

from sla_daemon.heap import HeapTrimmer, glibc_malloc_trim


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def test_trim_returns_freed_heap_pages_that_malloc_keeps() -> None:
    """40 MB freed between blocks still in use stays resident until the trim returns it.

    The blocks are over 512 bytes, so Python takes them from glibc's malloc; every 50th
    is kept, so the freed space lies between blocks in use and not at the heap's top.
    """
    trim = glibc_malloc_trim()
    assert trim is not None, "the daemon runs on glibc, which has malloc_trim"
    blocks = [bytes(4000) for _ in range(10_000)]
    pinned = blocks[::50]
    before_free = _rss_kb()
    del blocks
    freed_but_kept = _rss_kb()
    assert freed_but_kept > before_free - 20_000  # glibc kept most of the 40 MB

    assert HeapTrimmer(trim).release() is True

    assert _rss_kb() < freed_but_kept - 20_000
    assert len(pinned) == 200


def test_without_malloc_trim_the_skip_is_logged_once() -> None:
    """A C library without malloc_trim: nothing is done, and the reason is logged once."""
    trimmer = HeapTrimmer(None)
    with capture_logs() as logs:
        assert trimmer.release() is False
        assert trimmer.release() is False
    assert [entry["event"] for entry in logs] == ["heap.trim_skipped"]
    assert "malloc_trim" in logs[0]["reason"]
