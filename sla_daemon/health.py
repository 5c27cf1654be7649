"""The health rules behind ``/healthz``: what makes the daemon unhealthy, and why.

Pure: the caller passes the time and what it recorded; every reason is one line for a
person reading a failed probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

MISSED_POLLS = 3
"""How many poll intervals may pass without a sync (or a due delivery) before it counts."""


def health_problems(
    now: datetime,
    last_synced: Mapping[str, datetime],
    poll_interval: timedelta,
    oldest_due_delivery: datetime | None,
) -> list[str]:
    """One line per reason the daemon is unhealthy at ``now`` (empty: healthy).

    ``last_synced`` holds, per mailbox, when it was last read completely (or when the
    daemon began watching it, if never). ``oldest_due_delivery`` is the earliest time an
    open delivery was due to be attempted, as recorded after the last cycle: one whose
    time passed three poll intervals ago and is still waiting means the outbox is stuck.
    """
    limit = poll_interval * MISSED_POLLS
    problems = [
        f"mailbox {mailbox} has not synced for {_seconds(now - since)} s "
        f"({MISSED_POLLS} poll intervals are {_seconds(limit)} s)"
        for mailbox, since in sorted(last_synced.items())
        if now - since > limit
    ]
    if oldest_due_delivery is not None and now - oldest_due_delivery > limit:
        problems.append(
            f"outbox stuck: the oldest due delivery has waited "
            f"{_seconds(now - oldest_due_delivery)} s"
        )
    return problems


def _seconds(span: timedelta) -> int:
    return int(span.total_seconds())
