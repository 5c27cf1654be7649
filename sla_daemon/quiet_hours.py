"""Quiet hours: the wall-clock hours in which a recipient gets no routine team mail.

Hours are read on the recipient's own wall clock (their time zone, DST included): a
window from 20:00 to 07:00 runs over midnight, and on the night clocks change it is
still 20:00 to 07:00 local time, ten or twelve hours long. A start or end that falls
into the hour skipped in spring is read as the same wall time before the change (the
``fold=0`` reading of PEP 495), i.e. one hour later on the new clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """One recipient's quiet hours: from ``start`` to ``end`` on the clock of ``zone``.

    ``end`` at or before ``start`` means the window ends the next day; equal times
    make no window at all.
    """

    start: time
    end: time
    zone: ZoneInfo

    def until(self, moment: datetime) -> datetime | None:
        """When the quiet hours around ``moment`` end (UTC), or None outside them."""
        if self.start == self.end:
            return None
        # In UTC, so that comparisons with local times are never by wall clock alone.
        moment = moment.astimezone(UTC)
        local_day = moment.astimezone(self.zone).date()
        # The window that holds the moment began today or, past midnight, yesterday.
        for offset in (0, -1):
            day = local_day + timedelta(days=offset)
            begins = datetime.combine(day, self.start, tzinfo=self.zone)
            end_day = day if self.end > self.start else day + timedelta(days=1)
            ends = datetime.combine(end_day, self.end, tzinfo=self.zone)
            if begins <= moment < ends:
                return ends.astimezone(UTC)
        return None
