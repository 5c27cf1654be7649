"""When a running clock next calls for a notice: the engine's ``next_check_at``.

The service evaluates a conversation again only at this moment (or when it changes), so
every instant at which a warning, breach, second level or repetition becomes due must
be among those returned here.
"""

from __future__ import annotations

from datetime import datetime

from sla_daemon.core.model import ClockPolicy, ClockStatus, Policy


def next_check(
    clock: ClockStatus, clock_policy: ClockPolicy, policy: Policy, now: datetime
) -> datetime | None:
    """The next instant at which this running clock calls for a notice."""
    if clock.stopped_at is not None:
        return None
    upcoming = [clock.due_at - w for w in clock_policy.warn_before] + [clock.due_at]
    since = clock.due_at
    if policy.second_level is not None:
        upcoming.append(clock.due_at + policy.second_level.after)
        if now >= clock.due_at + policy.second_level.after:
            since = clock.due_at + policy.second_level.after
    if now >= since and policy.re_escalate_every:
        repetition = int((now - since) / policy.re_escalate_every)
        upcoming.append(since + (repetition + 1) * policy.re_escalate_every)
    later = [moment for moment in upcoming if moment > now]
    return min(later) if later else None
