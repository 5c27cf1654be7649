"""Small builders of core values, so engine tests read like the scenario they check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sla_daemon.config import MarkersConfig
from sla_daemon.core.calendar import BusinessCalendar
from sla_daemon.core.model import (
    Account,
    Address,
    ClockPolicy,
    FolderKind,
    Markers,
    MarkerSet,
    MessageFacts,
    Policy,
    Rules,
    Team,
)
from sla_daemon.rules_from_config import build_markers

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
"""The frozen 'now' of the engine tests."""

TEAM = Team(
    name="Acme Support",
    from_address=Address("support@acme.example", "Acme Support"),
    domains=("acme.example",),
)
GLOBEX = Account(
    name="Globex",
    policy="standard",
    owner="alice@acme.example",
    domains=("globex.example",),
    escalate_to=("lead@acme.example",),
)


def rules(**policy_changes: object) -> Rules:
    """Rules with one account (Globex) on a 'standard' policy: ack 1h, plan 48h."""
    values: dict[str, object] = {
        "name": "standard",
        "acknowledge": ClockPolicy(timedelta(hours=1)),
        "action_plan": ClockPolicy(timedelta(hours=48), (timedelta(hours=24), timedelta(hours=4))),
    }
    values.update(policy_changes)
    policy = Policy(**values)  # type: ignore[arg-type]
    return Rules(
        team=TEAM,
        accounts=(GLOBEX,),
        policies={"standard": policy},
        markers=Markers(
            action_plan=MarkerSet(
                subject_tags=("[Action Plan]",),
                body_patterns=(r"(?im)^\s*action plan\s*:",),
                imap_keywords=("$ActionPlan",),
                headers=("x-sla-action-plan",),
            ),
            waiting_on_client=MarkerSet(imap_keywords=("$WaitingOnClient",)),
            courtesy=build_markers(MarkersConfig()).courtesy,
        ),
    )


def client_mail(
    message_id: str,
    hours_ago: float,
    *,
    subject: str = "Checkout broken",
    sender: str = "dana@globex.example",
    in_reply_to: str | None = None,
    headers: tuple[tuple[str, str], ...] = (),
    body: str = "Please help, the checkout fails.",
) -> MessageFacts:
    """A message from a client to the shared inbox, ``hours_ago`` before NOW."""
    return MessageFacts(
        message_id=message_id,
        arrived_at=NOW - timedelta(hours=hours_ago),
        subject=subject,
        sender=Address(sender, "Dana"),
        to=(Address("support@acme.example"),),
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
        headers=headers,
        body_text=body,
        folder="INBOX",
    )


def team_reply(
    message_id: str,
    hours_ago: float,
    parent: str,
    *,
    body: str = "Thanks, we are on it.",
    subject: str = "Re: Checkout broken",
    keywords: tuple[str, ...] = (),
    to: str = "dana@globex.example",
) -> MessageFacts:
    """A team reply found in Sent, ``hours_ago`` before NOW."""
    return MessageFacts(
        message_id=message_id,
        arrived_at=NOW - timedelta(hours=hours_ago),
        subject=subject,
        sender=Address("bob@acme.example", "Bob"),
        to=(Address(to),),
        in_reply_to=parent,
        references=(parent,),
        keywords=keywords,
        body_text=body,
        folder="Sent",
        folder_kind=FolderKind.SENT,
    )


def rules_on_calendar(calendar: BusinessCalendar, **policy_changes: object) -> Rules:
    """``rules()`` with the 'standard' policy counting on ``calendar``."""
    base = rules(calendar=calendar.name, **policy_changes)
    return replace(base, calendars={calendar.name: calendar})
