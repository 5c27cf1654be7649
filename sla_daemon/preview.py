"""``sla-daemon preview``: a realistic sample of each notice, rendered as it would be sent.

The sample is one client conversation (an opening message, a named team member's first
reply, a later message from the client) on the first account of the configuration. The
real engine works out its status and due times on the account's policy and calendar;
each notice kind then has a small function (``SAMPLES``) that picks the moment and the
decision that kind is sent for. With ``--config`` the operator's team, accounts, markers
and templates are used, so an edited template can be checked before it is deployed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, tzinfo
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from sla_daemon.config import Config, load_config, parse_config
from sla_daemon.core.briefing import (
    Briefing,
    BriefingItem,
    BriefingSection,
    briefing_key,
    owner_zone,
)
from sla_daemon.core.engine import evaluate, notice_key
from sla_daemon.core.model import (
    Account,
    Address,
    ClockName,
    ConversationStatus,
    Decision,
    FolderKind,
    MessageFacts,
    NoticeKind,
    Rules,
)
from sla_daemon.core.report import Report, build_report
from sla_daemon.core.weekly_report import weekly_report_key
from sla_daemon.demo import demo_config_text
from sla_daemon.errors import ConfigError
from sla_daemon.outbox import NoticeRenderer
from sla_daemon.ports import BatchedNotice

log = structlog.get_logger(__name__)


class SampleRenderer(NoticeRenderer, Protocol):
    """A renderer of every notice kind (``adapters.renderers.NoticeMailRenderer``)."""

    def render_briefing(self, key: str, briefing: Briefing, now: datetime) -> EmailMessage:
        """An owner's morning briefing."""
        ...

    def render_batch(
        self, key: str, recipient: str, notices: Sequence[BatchedNotice], now: datetime
    ) -> EmailMessage:
        """Several notices for one recipient in one mail."""
        ...

    def render_weekly_report(
        self,
        key: str,
        report: Report,
        zone: tzinfo,
        recipients: Sequence[str],
        now: datetime,
        trend: Report | None = None,
    ) -> EmailMessage:
        """The weekly report with its charts (compliance from ``trend`` when given)."""
        ...


CONVERSATION_ID = "sample-conversation"
"""The made-up conversation every sample is about."""


@dataclass(frozen=True)
class SampleWorld:
    """Everything a sample is rendered from: rules, renderer, the account and its mail."""

    rules: Rules
    renderer: SampleRenderer
    account: Account | None
    client: Address
    history: tuple[MessageFacts, ...]
    opened_at: datetime

    @property
    def opening(self) -> MessageFacts:
        """The client message that opened the sample conversation."""
        return self.history[0]

    def status_at(self, now: datetime) -> ConversationStatus:
        """The sample conversation as the engine sees it at ``now``."""
        return evaluate(CONVERSATION_ID, self.history, self.rules, {}, now).status

    def plan_due(self) -> datetime:
        """When the action plan is due on the account's policy and calendar."""
        due = self.status_at(self.opened_at).action_plan_due
        return due if due is not None else self.opened_at + timedelta(hours=48)

    def escalation(
        self, kind: NoticeKind, level: str, now: datetime, reminder: int = 0
    ) -> Decision:
        """A warning or breach of the action-plan clock, as the engine would decide it."""
        recipients: tuple[str, ...] = (
            (self.account.owner,) if self.account else ("owner@example.org",)
        )
        if kind is NoticeKind.BREACH and self.account is not None:
            recipients = tuple(dict.fromkeys((*recipients, *self.account.escalate_to)))
        return Decision(
            key=notice_key(self.opening.message_id, ClockName.ACTION_PLAN, level, reminder),
            kind=kind,
            conversation_id=CONVERSATION_ID,
            cycle=1,
            recipients=recipients,
            clock=ClockName.ACTION_PLAN,
            level=level,
            repetition=reminder,
            due_at=self.plan_due(),
            trigger_message_id=self.opening.message_id,
            reminder=reminder,
        )

    def render(self, decision: Decision, now: datetime) -> EmailMessage:
        """Render ``decision`` the way the outbox does."""
        return self.renderer.render(
            decision,
            self.status_at(now),
            self.opening,
            self.account,
            now,
            history=self.history,
        )


def _policy_offsets(world: SampleWorld) -> tuple[timedelta, timedelta]:
    """The policy's most urgent warning offset and its re-escalation period (or defaults)."""
    policy = world.rules.policies.get(world.account.policy) if world.account else None
    warn = min(policy.action_plan.warn_before, default=None) if policy else None
    every = policy.re_escalate_every if policy else None
    return warn or timedelta(hours=4), every or timedelta(hours=24)


def _auto_ack(world: SampleWorld) -> EmailMessage:
    now = world.opened_at + timedelta(minutes=1)
    decision = Decision(
        key=notice_key(world.opening.message_id, ClockName.ACKNOWLEDGE, "auto_ack"),
        kind=NoticeKind.AUTO_ACK,
        conversation_id=CONVERSATION_ID,
        cycle=1,
        recipients=(world.client.email,),
        clock=ClockName.ACKNOWLEDGE,
        level="auto_ack",
        trigger_message_id=world.opening.message_id,
    )
    return world.render(decision, now)


def _warning(world: SampleWorld) -> EmailMessage:
    warn, _ = _policy_offsets(world)
    now = world.plan_due() - warn
    level = f"warn-{int(warn.total_seconds())}s"
    return world.render(world.escalation(NoticeKind.WARNING, level, now), now)


def _breach(world: SampleWorld) -> EmailMessage:
    now = world.plan_due() + timedelta(hours=1, minutes=10)
    return world.render(world.escalation(NoticeKind.BREACH, "breach-1", now), now)


def _re_escalation(world: SampleWorld) -> EmailMessage:
    _, every = _policy_offsets(world)
    now = world.plan_due() + 2 * every + timedelta(minutes=5)
    return world.render(world.escalation(NoticeKind.BREACH, "breach-1", now, reminder=2), now)


def _digest(world: SampleWorld) -> EmailMessage:
    now = world.plan_due() + timedelta(hours=3)
    breach = world.escalation(NoticeKind.BREACH, "breach-1", now)
    other = replace(breach, key=breach.key + "-2", conversation_id="sample-conversation-2")
    other_status = replace(
        world.status_at(now), id="sample-conversation-2", subject="Nightly data sync stalled"
    )
    owner = breach.recipients[0]
    items = [(breach, world.status_at(now), world.account), (other, other_status, world.account)]
    key = f"digest|{owner}|{now.isoformat(timespec='seconds')}"
    return world.renderer.render_digest(key, owner, items, now)


def _after_plan(world: SampleWorld, kind: NoticeKind) -> EmailMessage:
    quiet_since = world.opened_at + timedelta(hours=30)
    quiet = timedelta(days=5) if kind is NoticeKind.FOLLOW_UP else timedelta(days=7)
    owner = world.account.owner if world.account else "owner@example.org"
    decision = Decision(
        key=f"{world.opening.message_id}|{kind}|sample",
        kind=kind,
        conversation_id=CONVERSATION_ID if kind is NoticeKind.FOLLOW_UP else "",
        cycle=1 if kind is NoticeKind.FOLLOW_UP else 0,
        recipients=(owner,),
        level=str(kind),
        due_at=quiet_since + quiet,
        trigger_message_id=world.opening.message_id,
        quiet_since=quiet_since,
    )
    return world.render(decision, quiet_since + quiet + timedelta(minutes=1))


def _briefing(world: SampleWorld) -> EmailMessage:
    """The owner's morning: the sample conversation late, two more at risk and due today."""
    now = world.plan_due() + timedelta(hours=2)
    owner = world.account.owner if world.account else "owner@example.org"
    zone = owner_zone(world.rules, owner, ZoneInfo("UTC"))
    account = world.account.name if world.account else "(no account)"

    def item(section: BriefingSection, number: int, subject: str, due: datetime) -> BriefingItem:
        conversation = CONVERSATION_ID if number == 1 else f"{CONVERSATION_ID}-{number}"
        client = world.client.email if number != 3 else f"ops@{world.client.domain}"
        return BriefingItem(
            section, conversation, account, client, subject, ClockName.ACTION_PLAN, due
        )

    briefing = Briefing(
        owner=owner,
        day=now.astimezone(zone).date(),
        zone=zone,
        late=(item(BriefingSection.LATE, 1, world.opening.subject, world.plan_due()),),
        at_risk=(
            item(BriefingSection.AT_RISK, 2, "Nightly data sync stalled", now + timedelta(hours=3)),
        ),
        due_today=(
            item(
                BriefingSection.DUE_TODAY, 3, "New user accounts for Q1", now + timedelta(hours=6)
            ),
        ),
    )
    return world.renderer.render_briefing(briefing_key(owner, briefing.day), briefing, now)


def _batch(world: SampleWorld) -> EmailMessage:
    """A warning and a follow-up reminder for the owner, decided minutes apart: one mail."""
    warning = _warning(world)
    follow_up = _after_plan(world, NoticeKind.FOLLOW_UP)
    owner = world.account.owner if world.account else "owner@example.org"
    notices = [
        BatchedNotice(key, kind, str(mail["Subject"]), _plain_text(mail))
        for key, kind, mail in (
            ("sample-warning", NoticeKind.WARNING, warning),
            ("sample-follow-up", NoticeKind.FOLLOW_UP, follow_up),
        )
    ]
    now = world.plan_due() - timedelta(hours=1)
    return world.renderer.render_batch(f"batch|{owner}|sample-warning", owner, notices, now)


def _weekly_report(world: SampleWorld) -> EmailMessage:
    """The week's report: the sample conversation and three earlier ones like it."""
    now = world.plan_due() + timedelta(hours=2)
    owner = world.account.owner if world.account else "owner@example.org"
    zone = owner_zone(world.rules, owner, ZoneInfo("UTC"))
    statuses = []
    for days_before in range(4):
        shift = timedelta(days=days_before)
        history = tuple(
            replace(
                message,
                message_id=message.message_id.replace("sample-", f"sample-{days_before}-"),
                arrived_at=message.arrived_at - shift,
            )
            for message in world.history
        )
        conversation = f"{CONVERSATION_ID}-{days_before}"
        statuses.append(evaluate(conversation, history, world.rules, {}, now).status)
    report = build_report(statuses, world.rules, (), now - timedelta(days=7), now, now)
    key = weekly_report_key(now.astimezone(zone).date())
    return world.renderer.render_weekly_report(key, report, zone, (owner,), now)


def _plain_text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return body.get_content() if isinstance(body, EmailMessage) else ""


SampleFn = Callable[[SampleWorld], EmailMessage]

SAMPLES: dict[NoticeKind, SampleFn] = {
    NoticeKind.AUTO_ACK: _auto_ack,
    NoticeKind.WARNING: _warning,
    NoticeKind.BREACH: _breach,
    NoticeKind.DIGEST: _digest,
    NoticeKind.FOLLOW_UP: lambda world: _after_plan(world, NoticeKind.FOLLOW_UP),
    NoticeKind.CHECK_IN: lambda world: _after_plan(world, NoticeKind.CHECK_IN),
    NoticeKind.BRIEFING: _briefing,
    NoticeKind.BATCH: _batch,
    NoticeKind.WEEKLY_REPORT: _weekly_report,
}
"""One sample per notice kind (a test checks that no kind is missing)."""

VARIANTS: dict[str, SampleFn] = {"re_escalation": _re_escalation}
"""Further samples of a kind in another situation: a breach sent again while it lasts."""


def preview_names() -> list[str]:
    """Every name ``preview`` accepts besides ``all``."""
    return [str(kind) for kind in SAMPLES] + list(VARIANTS)


def sample_world(rules: Rules, renderer: SampleRenderer, reference: datetime) -> SampleWorld:
    """The sample conversation on the first account of ``rules``, opened before ``reference``."""
    account = rules.accounts[0] if rules.accounts else None
    client_domain = "client.example"
    if account is not None and account.domains:
        client_domain = account.domains[0]
    client = Address(f"dana@{client_domain}", "Dana Lee")
    if account is not None and not account.domains and account.addresses:
        client = Address(account.addresses[0], "Dana Lee")
    team = rules.team
    team_domain = team.domains[0] if team.domains else team.from_address.domain
    member = Address(f"bob@{team_domain}", "Bob Porter")
    opened = reference.replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    subject = "Checkout page returns 500 since this morning"
    opening = MessageFacts(
        message_id=f"<sample-1@{client_domain}>",
        arrived_at=opened,
        subject=subject,
        sender=client,
        to=(team.from_address,),
        body_text="Hi,\n\nour checkout fails with an error 500 for every customer since "
        "about 7:00.\nCan you look?\n\nDana",
    )
    reply = MessageFacts(
        message_id=f"<sample-2@{team_domain}>",
        arrived_at=opened + timedelta(minutes=20),
        subject=f"Re: {subject}",
        sender=member,
        to=(client,),
        in_reply_to=opening.message_id,
        references=(opening.message_id,),
        body_text="Hi Dana,\n\nthanks, we have it and are looking into it.\n\nBob",
        folder="Sent",
        folder_kind=FolderKind.SENT,
    )
    latest = MessageFacts(
        message_id=f"<sample-3@{client_domain}>",
        arrived_at=opened + timedelta(hours=3),
        subject=f"Re: {subject}",
        sender=client,
        to=(member,),
        in_reply_to=reply.message_id,
        references=(opening.message_id, reply.message_id),
        body_text=(
            "Hi Bob,\n\nany news? It is worse now: about a third of the orders fail,\n"
            "and our Black Friday campaign starts tomorrow at 8:00.\n\n"
            "The error appears right after the payment step; the log says\n"
            '"upstream timeout from payments-eu".\n\n'
            "Please tell us whether we should postpone the campaign.\n"
            "We need to decide by 17:00 today.\n\nThanks,\nDana\n\n"
            "On Tue, Bob Porter wrote:\n> thanks, we have it and are looking into it."
        ),
    )
    return SampleWorld(rules, renderer, account, client, (opening, reply, latest), opened)


def render_sample(name: str, world: SampleWorld) -> EmailMessage:
    """Render the sample called ``name`` (a notice kind or a variant)."""
    sample = VARIANTS.get(name) or SAMPLES[NoticeKind(name)]
    return sample(world)


def preview_config(path: Path | None) -> Config:
    """The configuration to preview with: ``path`` when given and valid, else the demo's.

    An invalid file is reported (logged with every problem) and the demo is used, so that
    the preview still shows what a notice looks like.
    """
    if path is not None:
        try:
            return load_config(path)
        except ConfigError as exc:
            log.warning(
                "preview.config_invalid",
                path=str(path),
                problems=exc.problems,
                fallback="the demo configuration",
            )
    text = demo_config_text(Path("/nonexistent/sla-daemon-demo"), 2525)
    return parse_config(text, "the demo configuration")


def terminal_text(message: EmailMessage) -> str:
    """The headers and the text part of ``message``, as ``preview`` prints them."""
    lines = [f"{name}: {value}" for name, value in message.items()]
    body = message.get_body(("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return "\n".join(lines) + "\n\n" + str(text).replace("\r\n", "\n").rstrip() + "\n"
