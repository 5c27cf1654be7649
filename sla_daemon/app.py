"""The composition root: configuration in, a wired service out.

This is the only module that constructs adapters. Everything else receives them.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import parseaddr

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.local import LocalSource
from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.adapters.store import Store
from sla_daemon.clock import Clock, SystemClock
from sla_daemon.config import Config, MailboxConfig
from sla_daemon.core.model import (
    Account,
    Address,
    ClockPolicy,
    ConversationStatus,
    Markers,
    MarkerSet,
    Policy,
    Rules,
    Team,
)
from sla_daemon.ports import MailSource
from sla_daemon.service import IngestSettings, SlaService, evaluate_conversations


def build_rules(config: Config) -> Rules:
    """Translate the validated configuration into the core's plain rules."""
    from_name, from_email = parseaddr(config.team.from_)
    team = Team(
        name=config.team.name,
        from_address=Address(from_email.lower(), from_name),
        domains=tuple(d.lower() for d in config.team.domains),
        addresses=tuple(a.lower() for a in config.team.addresses),
    )
    policies = {
        name: Policy(
            name=name,
            acknowledge=ClockPolicy(
                policy.acknowledge.within, tuple(policy.acknowledge.warn_before)
            ),
            action_plan=ClockPolicy(
                policy.action_plan.within, tuple(policy.action_plan.warn_before)
            ),
            auto_ack=policy.auto_ack,
            counts_auto_ack=policy.acknowledge.counts_auto_ack,
            re_escalate_every=policy.re_escalate_every,
            calendar=policy.calendar,
        )
        for name, policy in config.policies.items()
    }
    accounts = tuple(
        Account(
            name=account.name,
            policy=account.policy,
            owner=account.owner,
            domains=tuple(d.lower() for d in account.domains),
            addresses=tuple(a.lower() for a in account.addresses),
            escalate_to=tuple(account.escalate_to),
        )
        for account in config.accounts
    )
    markers = Markers(
        action_plan=MarkerSet(**config.markers.action_plan.model_dump()),
        waiting_on_client=MarkerSet(**config.markers.waiting_on_client.model_dump()),
    )
    return Rules(
        team=team,
        accounts=accounts,
        policies=policies,
        markers=_tuples(markers),
        auto_ack_max_age=config.ingest.auto_ack_max_age,
        default_account=config.default_account,
    )


def _tuples(markers: Markers) -> Markers:
    """Marker lists arrive as lists from the config; the core wants hashable tuples."""

    def fix(marker_set: MarkerSet) -> MarkerSet:
        return MarkerSet(
            subject_tags=tuple(marker_set.subject_tags),
            body_patterns=tuple(marker_set.body_patterns),
            imap_keywords=tuple(marker_set.imap_keywords),
            headers=tuple(marker_set.headers),
        )

    return Markers(fix(markers.action_plan), fix(markers.waiting_on_client))


def build_source(mailbox: MailboxConfig) -> MailSource:
    """The source for one configured mailbox: IMAP, or a local Maildir/mbox."""
    if mailbox.path is not None:
        return LocalSource(
            name=mailbox.name,
            path=mailbox.path,
            format=mailbox.format,
            inbox_folders=mailbox.folders.inbox,
            sent_folders=mailbox.folders.sent,
        )
    assert mailbox.host is not None and mailbox.username is not None  # config guarantees
    return ImapSource(
        name=mailbox.name,
        host=mailbox.host,
        port=mailbox.effective_port,
        security=mailbox.security,
        username=mailbox.username,
        password=mailbox.resolve_password() or "",
        inbox_folders=mailbox.folders.inbox,
        sent_folders=mailbox.folders.sent,
        timeout=mailbox.timeout.total_seconds(),
    )


def open_store(config: Config, *, readonly: bool = False) -> Store:
    """The state database under ``state_dir``."""
    return Store.in_dir(config.state_dir, readonly=readonly)


def _malformed_reason(exc: Exception) -> str | None:
    return exc.reason if isinstance(exc, MalformedMessage) else None


def build_service(
    config: Config, *, clock: Clock | None = None, dry_run: bool = False
) -> SlaService:
    """Wire the whole pipeline for ``run``: sources, parser, store, renderer, sender."""
    rules = build_rules(config)
    # Secrets are read here, at start-up: a missing password file stops the daemon with
    # a ConfigError (exit 78) instead of failing on the first cycle.
    sources = [build_source(mailbox) for mailbox in config.mailboxes]
    sender = SmtpSender(
        host=config.smtp.host,
        port=config.smtp.effective_port,
        security=config.smtp.security,
        username=config.smtp.username,
        password=config.smtp.resolve_password(),
        timeout=config.smtp.timeout.total_seconds(),
    )
    return SlaService(
        store=open_store(config),
        sources=sources,
        parse=parse_message,
        is_malformed=_malformed_reason,
        renderer=NoticeRenderer(config.templates_dir, rules.team, config.timezone),
        sender=sender,
        rules=rules,
        clock=clock or SystemClock(),
        ingest=IngestSettings(
            backfill=config.ingest.backfill, max_body_bytes=config.ingest.max_body_bytes
        ),
        dry_run=dry_run,
    )


def conversation_statuses(config: Config, now: datetime) -> list[ConversationStatus] | None:
    """Where every client conversation stands at ``now``; None before the first run.

    Opens the database read-only and builds no source or sender: ``status`` needs no
    secrets and changes nothing.
    """
    if not Store.exists_in(config.state_dir):
        return None
    store = open_store(config, readonly=True)
    try:
        return evaluate_conversations(store, build_rules(config), now)
    finally:
        store.close()
