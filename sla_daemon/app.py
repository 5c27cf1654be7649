"""The composition root: configuration in, a wired service out.

This is the only module that constructs adapters. Everything else receives them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import holidays

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.local import LocalSource
from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.adapters.store import Store
from sla_daemon.clock import Clock, SystemClock
from sla_daemon.config import (
    AccountConfig,
    ClockOverride,
    Config,
    IngestConfig,
    MailboxConfig,
    MarkersConfig,
    MarkerSetConfig,
)
from sla_daemon.config_calendars import CalendarConfig
from sla_daemon.core.calendar import BusinessCalendar, Calendar
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import (
    Account,
    Address,
    ClockPolicy,
    ConversationStatus,
    CourtesyRule,
    Evaluation,
    Markers,
    MarkerSet,
    Policy,
    Rules,
    SecondLevel,
    Team,
)
from sla_daemon.ports import MailSource
from sla_daemon.service import IngestSettings, SlaService, evaluate_conversations

# A calendar's country holidays cover the current year, the two before and the three after
# (docs/sla.md, "Calendars"); the daemon expands them again at every start.
HOLIDAY_YEARS_BEFORE = 2
HOLIDAY_YEARS_AFTER = 3


def build_calendar(name: str, section: CalendarConfig, today: date) -> BusinessCalendar:
    """The core calendar for one validated ``calendars`` entry.

    Country (and subdivision) holidays are expanded here into plain dates, for the years
    from ``today.year - HOLIDAY_YEARS_BEFORE`` to ``today.year + HOLIDAY_YEARS_AFTER``.
    """
    weekly, half_days, _ = section.parsed()
    country, subdivision, _ = section.holiday_region()
    closed = set(section.holidays.dates)
    if country is not None:
        years = range(today.year - HOLIDAY_YEARS_BEFORE, today.year + HOLIDAY_YEARS_AFTER + 1)
        closed.update(holidays.country_holidays(country, subdiv=subdivision, years=years))
    return BusinessCalendar(
        name=name,
        timezone=section.timezone,
        weekly=weekly,
        holidays=closed,
        half_days=half_days,
    )


def build_rules(config: Config, *, today: date | None = None) -> Rules:
    """Translate the validated configuration into the core's plain rules.

    ``today`` (default: the current UTC date) centres the span of country holidays.
    """
    today = today or datetime.now(UTC).date()
    calendars: dict[str, Calendar] = {
        name: build_calendar(name, section, today) for name, section in config.calendars.items()
    }
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
            follow_up_after=policy.follow_up_after,
            close_after=policy.close_after,
            second_level=(
                SecondLevel(
                    policy.escalate_after_breach.after, tuple(policy.escalate_after_breach.to)
                )
                if policy.escalate_after_breach is not None
                else None
            ),
        )
        for name, policy in config.policies.items()
    }
    for account in config.accounts:
        if account.acknowledge is not None or account.action_plan is not None:
            policies[account_policy_name(account)] = _with_overrides(
                policies[account.policy], account
            )
    accounts = tuple(
        Account(
            name=account.name,
            policy=account_policy_name(account),
            owner=account.owner,
            domains=tuple(d.lower() for d in account.domains),
            addresses=tuple(a.lower() for a in account.addresses),
            escalate_to=tuple(account.escalate_to),
            check_in_every=account.check_in_every,
        )
        for account in config.accounts
    )
    return Rules(
        team=team,
        accounts=accounts,
        policies=policies,
        markers=build_markers(config.markers),
        auto_ack_max_age=config.ingest.auto_ack_max_age,
        default_account=config.default_account,
        auto_ack_per_sender_per_day=config.notices.auto_ack_per_sender_per_day,
        calendars=calendars,
    )


def account_policy_name(account: AccountConfig) -> str:
    """The policy an account is on: its named policy, or that policy with its overrides."""
    if account.acknowledge is None and account.action_plan is None:
        return account.policy
    return f"{account.policy} (as set for {account.name})"


def _with_overrides(policy: Policy, account: AccountConfig) -> Policy:
    """``policy`` with the account's own clock targets in place of the policy's."""

    def clock(base: ClockPolicy, override: ClockOverride | None) -> ClockPolicy:
        if override is None:
            return base
        return ClockPolicy(
            within=override.within if override.within is not None else base.within,
            warn_before=(
                tuple(override.warn_before)
                if override.warn_before is not None
                else base.warn_before
            ),
        )

    return replace(
        policy,
        name=account_policy_name(account),
        acknowledge=clock(policy.acknowledge, account.acknowledge),
        action_plan=clock(policy.action_plan, account.action_plan),
    )


def build_source(mailbox: MailboxConfig, ingest: IngestConfig | None = None) -> MailSource:
    """The source for one configured mailbox: IMAP, or a local Maildir/mbox.

    ``ingest`` gives ``max_body_bytes`` (its default when left out). Without
    ``folders.sent`` an IMAP source finds its sent folders by SPECIAL-USE and a local one
    reads ``Sent``.
    """
    ingest = ingest or IngestConfig()
    if mailbox.path is not None:
        sent = mailbox.sent_folders
        return LocalSource(
            name=mailbox.name,
            path=mailbox.path,
            format=mailbox.format,
            inbox_folders=mailbox.folders.inbox,
            sent_folders=["Sent"] if sent is None else sent,
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
        sent_folders=mailbox.sent_folders,
        timeout=mailbox.timeout.total_seconds(),
        max_body_bytes=ingest.max_body_bytes,
        idle=mailbox.idle,
        idle_renew=mailbox.idle_renew.total_seconds(),
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
    sources = [build_source(mailbox, config.ingest) for mailbox in config.mailboxes]
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
        return evaluate_conversations(store, build_rules(config, today=now.date()), now)
    finally:
        store.close()


def conversation_evaluation(
    config: Config, conversation_id: str, now: datetime
) -> Evaluation | None:
    """One conversation's evaluation at ``now`` (``explain``), read-only like ``status``.

    ``conversation_id`` is a conversation id, or the Message-ID (``<>`` optional) of any
    message in it. None when there is no state yet or no such conversation.
    """
    if not Store.exists_in(config.state_dir):
        return None
    store = open_store(config, readonly=True)
    try:
        wanted = conversation_id.strip()
        if wanted not in store.conversation_ids():
            linked = store.conversation_links([wanted.strip("<>")])
            if not linked:
                return None
            wanted = next(iter(linked.values()))
        return evaluate(
            wanted,
            store.conversation_messages(wanted),
            build_rules(config, today=now.date()),
            store.notices_for(wanted),
            now,
        )
    finally:
        store.close()


def build_markers(markers: MarkersConfig) -> Markers:
    """The core's markers from the ``markers`` section (or its defaults), as tuples."""

    def marker_set(section: MarkerSetConfig) -> MarkerSet:
        return MarkerSet(
            subject_tags=tuple(section.subject_tags),
            body_patterns=tuple(section.body_patterns),
            imap_keywords=tuple(section.imap_keywords),
            headers=tuple(section.headers),
        )

    return Markers(
        action_plan=marker_set(markers.action_plan),
        waiting_on_client=marker_set(markers.waiting_on_client),
        courtesy=CourtesyRule(
            patterns=tuple(markers.courtesy.patterns),
            request_patterns=tuple(markers.courtesy.request_patterns),
            max_words=markers.courtesy.max_words,
        ),
    )


def inspect_paths(
    paths: Sequence[Path], config: Config | None, now: datetime
) -> list[dict[str, Any]]:
    """``inspect``: one row per message found in ``paths``, as the daemon would see it.

    Each path is an .eml file, a Maildir (its ``cur/`` and ``new/``, and those of its
    Maildir++ subfolders such as ``.Sent``), an mbox file (a file
    whose first line starts with ``From ``), or a directory of such files. Messages are
    parsed by the daemon's parser (Date header as arrival time, as for local mail) and
    handed to ``inspection.inspect_messages``. With ``config``, its markers, team and
    accounts are used; without, the default markers. Opens no database and no connection.
    """
    from sla_daemon.core.model import FolderKind
    from sla_daemon.inspection import Inspected, inspect_messages

    rules = build_rules(config) if config is not None else None
    markers = rules.markers if rules is not None else build_markers(MarkersConfig())
    extra_headers = (*markers.action_plan.headers, *markers.waiting_on_client.headers)
    max_body_bytes = config.ingest.max_body_bytes if config is not None else 256 * 1024
    messages: list[Inspected] = []
    for label, raw, error in _inspected_files(paths):
        if raw is None:
            messages.append(Inspected(label, error=error))
            continue
        try:
            facts = parse_message(
                raw,
                mailbox="inspect",
                folder="INBOX",
                folder_kind=FolderKind.INBOX,
                internaldate=None,
                max_body_bytes=max_body_bytes,
                now=now,
                extra_headers=extra_headers,
            )
        except MalformedMessage as exc:
            messages.append(Inspected(label, error=exc.reason))
            continue
        messages.append(Inspected(label, facts=facts))
    return inspect_messages(messages, markers, rules)


def _inspected_files(paths: Sequence[Path]) -> Iterator[tuple[str, bytes | None, str | None]]:
    """``(label, raw bytes, None)`` per message in ``paths``, or ``(label, None, error)``."""
    from sla_daemon.adapters.local import maildir_files, mbox_messages

    for path in paths:
        if path.is_dir():
            if (path / "cur").is_dir() or (path / "new").is_dir():
                # Maildir++ subfolders (".Sent") hold the team's replies of the same threads.
                folders = [path, *sorted(p for p in path.glob(".*") if (p / "cur").is_dir())]
                files = [file for folder in folders for file in maildir_files(folder)]
            else:
                files = sorted(p for p in path.iterdir() if p.is_file())
            for file in files:
                yield from _inspected_files([file])
            continue
        try:
            with path.open("rb") as handle:
                is_mbox = path.suffix.lower() != ".eml" and handle.read(5) == b"From "
            if not is_mbox:
                yield str(path), path.read_bytes(), None
                continue
            for position, raw in mbox_messages(path):
                yield f"{path}#{position}", raw, None
        except OSError as exc:
            yield str(path), None, f"cannot read: {exc.strerror or exc}"
