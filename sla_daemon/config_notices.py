"""The ``notices`` section: how much, when and how persistently the daemon writes.

Limits that protect clients (a per-sender cap on auto-acknowledgements), the rhythm of
team mail (batching, quiet hours, a morning briefing) and the delivery retry policy.
Every key has a default; docs/configuration.md describes each.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from sla_daemon.config_types import Duration, Section, TimeZoneName

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _clock_time(value: Any) -> time:
    if isinstance(value, time):
        return value
    # YAML 1.1 reads an unquoted 08:00 as the sexagesimal number 480.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    match = _CLOCK.match(str(value).strip()) if isinstance(value, str) else None
    if match is None:
        raise PydanticCustomError(
            "clock_time", "expected a time of day like 08:00, got {got}", {"got": repr(value)}
        )
    return time(int(match.group(1)), int(match.group(2)))


ClockTime = Annotated[time, BeforeValidator(_clock_time)]
"""A wall-clock time of day written ``HH:MM``."""


class QuietHoursConfig(Section):
    """Hours in which a recipient's non-breach notices are held until they end."""

    start: ClockTime  # e.g. 20:00: from this time on notices wait ...
    end: ClockTime  # ... until this time (the next morning when end <= start)
    timezone: TimeZoneName | None = None  # default: the top-level `timezone`


class DeliveryConfig(Section):
    """How a notice that could not be delivered is tried again."""

    retry_first: Duration = timedelta(seconds=30)  # wait after the first transient failure
    retry_max: Duration = timedelta(minutes=10)  # the wait doubles up to this
    give_up_after: Duration = timedelta(days=2)  # transient failures this long: recorded failed


class NoticesConfig(Section):
    """How often, when and how the daemon writes to clients and to the team."""

    # At most this many auto-acknowledgements to one sender address per 24 hours.
    auto_ack_per_sender_per_day: int = Field(default=3, ge=0)
    # Team notices to one recipient decided within this window go out as one mail.
    digest_window: Duration = timedelta(minutes=5)
    # Recipient address -> quiet hours; breaches are never held.
    quiet_hours: dict[str, QuietHoursConfig] = {}
    # Each owner's morning briefing (due today, at risk, late), in the owner's time zone
    # (the calendar of their first account's policy, else `timezone`); None: no briefing.
    briefing_at: ClockTime | None = None
    delivery: DeliveryConfig = DeliveryConfig()
