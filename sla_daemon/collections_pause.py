"""Fewer garbage collections while one pass builds many objects that it all keeps.

A full evaluation pass (a start, a reload) makes tens of objects per conversation and
keeps nearly all of them (each conversation's evaluation and ledger). CPython's
collector runs its youngest generation every 700 allocations and, as the kept objects
pile up, walks them again and again: a quarter of a pass over 100,000 conversations
went to collections that found nothing to free. The engine's results hold no reference
cycles, so collecting less often during such a pass frees the same memory, later.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_YOUNG_THRESHOLD = 100_000
"""Allocations between two collections of the youngest generation during a bulk pass."""


@contextmanager
def fewer_collections(young: int = BULK_YOUNG_THRESHOLD) -> Iterator[None]:
    """Raise the youngest generation's threshold to ``young`` for the block, then restore it.

    A threshold already higher (or 0: collection switched off) is left as it is.
    """
    first, second, third = gc.get_threshold()
    if first == 0 or first >= young:
        yield
        return
    gc.set_threshold(young, second, third)
    try:
        yield
    finally:
        gc.set_threshold(first, second, third)
