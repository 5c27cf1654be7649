"""Run ``sla-daemon`` under a memory probe: where its memory goes, once a minute.

Used by ``benchmarks/soak.py --probe`` in place of the ``sla-daemon`` script, never by the
product. It runs the daemon's CLI in this process while a background thread writes one
JSON line every ``SLA_MEMORY_PROBE_EVERY`` seconds (default 60) to ``SLA_MEMORY_PROBE``
(a path); with ``SLA_MEMORY_PROBE_TRACE=1`` it starts ``tracemalloc`` first. A line holds:

- ``smaps``: ``/proc/self/smaps_rollup`` (anonymous and file-backed resident KiB);
- ``traced_kb`` (with tracing): what Python allocated that is still alive, and the
  ``top`` source lines by growth since the first line, and the peak since the line before;
- ``obmalloc``: Python's small-object arenas and the bytes in their blocks;
- ``objects``: live objects per type for the types that grew most;
- ``sizes``: the lengths of the daemon's in-memory collections that could grow
  (the evaluation cache, the address cache);
- ``malloc_kb``: glibc's heap, taken from the system, in use and free (``mallinfo2``);
- ``sqlite_kb``: what SQLite holds on the heap (``sqlite3_memory_used``);
- ``after_malloc_trim`` (with ``SLA_MEMORY_PROBE_TRIM=1``): ``smaps`` again after
  glibc's ``malloc_trim(0)``, i.e. how much of the heap was free pages kept by malloc.

tracemalloc itself costs memory and time, so a traced run's RSS is not the soak's figure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import json
import os
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import smaps_rollup_kb  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _malloc_kb() -> dict[str, int]:
    """The C library heap (glibc): bytes taken from the system, in use and free (all arenas)."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return {
        "arena": info.arena // 1024,
        "mmapped": info.hblkhd // 1024,
        "in_use": info.uordblks // 1024,
        "free": info.fordblks // 1024,
    }


def _obmalloc() -> dict[str, int]:
    """Python's small-object allocator: its arenas now (1 MiB each), the bytes in its blocks."""
    with tempfile.TemporaryFile(mode="w+") as text:
        saved = os.dup(2)  # _debugmallocstats writes to the C stderr
        os.dup2(text.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        text.seek(0)
        found: dict[str, int] = {}
        for line in text:
            name, _, value = line.rpartition("=")
            if name.startswith("# arenas allocated current"):
                found["arenas"] = int(value.replace(",", ""))
            elif name.startswith("# bytes in allocated blocks"):
                found["in_blocks_kb"] = int(value.replace(",", "")) // 1024
        return found


def _sqlite_kb() -> int:
    """What SQLite holds on the heap now, every connection of the process together."""
    lib = ctypes.CDLL(ctypes.util.find_library("sqlite3"))
    lib.sqlite3_memory_used.restype = ctypes.c_int64
    return int(lib.sqlite3_memory_used()) // 1024


def _sizes() -> dict[str, Any]:
    from sla_daemon.adapters import mailtext
    from sla_daemon.adapters.store import Store
    from sla_daemon.evaluation_cache import EvaluationCache

    sizes: dict[str, Any] = {"address_cache": mailtext._cached_address_field.cache_info().currsize}
    for obj in gc.get_objects():
        if isinstance(obj, EvaluationCache):
            sizes["evaluations"] = len(obj._evaluations)
            sizes["heap"] = len(obj._heap)
            sizes["contacts"] = len(obj._contacts)
        elif isinstance(obj, Store):
            sizes["stores"] = sizes.get("stores", 0) + 1
    return sizes


def _sample(out: Path, every: float) -> None:
    first: tracemalloc.Snapshot | None = None
    first_types: Counter[str] | None = None
    started = time.monotonic()
    while True:
        time.sleep(every)
        snapshot = (
            tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, tracemalloc.__file__)]
            )
            if tracemalloc.is_tracing()
            else None
        )
        types = Counter(type(o).__name__ for o in gc.get_objects())
        line: dict[str, Any] = {
            "minute": round((time.monotonic() - started) / 60, 1),
            "smaps": smaps_rollup_kb(),
            "traced_kb": tracemalloc.get_traced_memory()[0] // 1024,
            "traced_peak_kb": tracemalloc.get_traced_memory()[1] // 1024,
            "gc_objects": len(gc.get_objects()),
            "threads": threading.active_count(),
            "malloc_kb": _malloc_kb(),
            "sqlite_kb": _sqlite_kb(),
            "obmalloc": _obmalloc(),
        }
        try:
            line["sizes"] = _sizes()
        except Exception as exc:  # the probe must not stop the daemon
            line["sizes"] = {"error": repr(exc)}
        if first_types is None:
            first, first_types = snapshot, types
        else:
            if snapshot is not None and first is not None:
                line["top"] = [
                    f"{stat.size_diff // 1024:+} KiB {stat.count_diff:+} {stat.traceback[0]}"
                    for stat in snapshot.compare_to(first, "lineno")[:12]
                ]
            grown = Counter(types)
            grown.subtract(first_types)
            line["objects"] = dict(grown.most_common(10))
        tracemalloc.reset_peak()
        if os.environ.get("SLA_MEMORY_PROBE_TRIM") == "1":
            ctypes.CDLL(None).malloc_trim(0)
            line["after_malloc_trim"] = smaps_rollup_kb()
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")


def main() -> int:
    """Start tracemalloc and the sampler, then run the daemon's CLI on ``sys.argv``."""
    if os.environ.get("SLA_MEMORY_PROBE_TRACE") == "1":
        tracemalloc.start(1)
    out = Path(os.environ["SLA_MEMORY_PROBE"])
    every = float(os.environ.get("SLA_MEMORY_PROBE_EVERY", "60"))
    threading.Thread(target=_sample, args=(out, every), name="memory-probe", daemon=True).start()
    from sla_daemon.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
