"""Parsing and printing of the human units used in the configuration: durations and sizes."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION_PART = re.compile(r"(\d+)\s*(w|d|h|m|s)")
_DURATION_WHOLE = re.compile(r"^\s*(?:\d+\s*[wdhms]\s*)+$")
_UNIT_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}

_SIZE = re.compile(r"^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$")
_SIZE_FACTOR = {
    None: 1,
    "B": 1,
    "KiB": 1024,
    "MiB": 1024**2,
    "GiB": 1024**3,
    "KB": 1000,
    "MB": 1000**2,
    "GB": 1000**3,
}


def parse_duration(text: str) -> timedelta:
    """Parse ``30s``, ``15m``, ``1h``, ``48h``, ``5d``, ``2w`` or a sum such as ``1h30m``.

    Raises ``ValueError`` for anything else (bare numbers included: a unit is required so
    that nobody has to guess whether ``48`` means hours or seconds).
    """
    if not _DURATION_WHOLE.match(text):
        raise ValueError(f"expected a duration like 48h, got {text!r}")
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Print a duration the way the configuration writes it (``1d2h``, ``45m``, ``0s``)."""
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


def parse_size(text: str | int) -> int:
    """Parse a byte size such as ``256KiB``, ``10MB`` or a plain number of bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"expected a size like 256KiB, got {text!r}")
    return int(match.group(1)) * _SIZE_FACTOR[match.group(2)]


def readable_duration(value: timedelta) -> str:
    """Print a duration for people: the two largest units, e.g. ``1d 2h``, ``45m``.

    Rounds down to the minute; anything under a minute (or negative) is ``under 1m``.
    """
    minutes = int(value.total_seconds()) // 60
    if minutes < 1:
        return "under 1m"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts[:2])
