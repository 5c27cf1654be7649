"""What every part of the state database shares: the connection and time encoding."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime


def iso_utc(value: datetime) -> str:
    """Store times as ISO 8601 in UTC, so that they sort as text."""
    return value.astimezone(UTC).isoformat()


class Tables:
    """Base of the store's parts: each part reads and writes through ``_db``."""

    _db: sqlite3.Connection
