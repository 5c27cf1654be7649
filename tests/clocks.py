"""A clock that tests move forward by hand, to run cycles over hours in no time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class ManualClock:
    """A ``Clock`` that stands still until ``advance`` or ``set`` moves it."""

    def __init__(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        """The current test time."""
        return self._at

    def advance(self, by: timedelta) -> datetime:
        """Move the clock forward by ``by``; return the new time."""
        self._at += by
        return self._at

    def set(self, at: datetime) -> None:
        """Jump to ``at`` (aware)."""
        self._at = at.astimezone(UTC)
