"""The ``reports`` section: reports the daemon e-mails on its own, on a schedule.

Every key has a default; docs/configuration.md describes each.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field
from pydantic_core import PydanticCustomError

from sla_daemon.config_notices import ClockTime
from sla_daemon.config_types import Section, TimeZoneName
from sla_daemon.core.calendar import WEEKDAYS


def _weekday_time(value: Any) -> tuple[int, str]:
    parts = value.split() if isinstance(value, str) else []
    if len(parts) != 2 or parts[0].lower() not in WEEKDAYS:
        raise PydanticCustomError(
            "weekday_time",
            "expected a weekday and a time like 'mon 08:00' ({days}), got {got}",
            {"days": ", ".join(WEEKDAYS), "got": repr(value)},
        )
    # The time of day is checked by ``ClockTime``, as everywhere else.
    return WEEKDAYS.index(parts[0].lower()), parts[1]


WeekdayTime = Annotated[tuple[int, ClockTime], BeforeValidator(_weekday_time)]
"""A weekday and a wall-clock time, written ``mon 08:00``."""


class WeeklyReportConfig(Section):
    """The SLA report of the previous seven days, e-mailed once a week."""

    at: WeekdayTime  # weekday and local time it is sent, e.g. "mon 08:00" (quote it)
    to: list[str] = Field(min_length=1)  # the addresses that receive it
    timezone: TimeZoneName | None = None  # the zone of `at`; default: the top-level `timezone`


class ReportsConfig(Section):
    """Reports the daemon sends on a schedule."""

    # The weekly report (per account and per owner, with charts); None: not sent.
    weekly: WeeklyReportConfig | None = None
