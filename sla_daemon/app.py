"""The composition root: configuration in, a wired service out.

This is the only module that constructs adapters. Everything else receives them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.local import LocalSource
from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.oauth2 import AccessTokens, CommandTokens, RefreshGrant, RefreshTokens
from sla_daemon.adapters.renderers import NoticeMailRenderer
from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.adapters.state_lock import exclusive_run
from sla_daemon.adapters.status_html import StatusPageRenderer
from sla_daemon.adapters.store import SchemaTooOldError, Store
from sla_daemon.adapters.systemd import SystemdNotifier
from sla_daemon.adapters.web import HttpListener, web_app
from sla_daemon.briefings import Briefings
from sla_daemon.clock import Clock, SystemClock
from sla_daemon.config import (
    Config,
    IngestConfig,
    MailboxConfig,
    MarkersConfig,
)
from sla_daemon.config_oauth2 import OAuth2Config
from sla_daemon.config_types import secret_file
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import (
    ConversationStatus,
    Evaluation,
    Rules,
)
from sla_daemon.core.report import Report, build_report
from sla_daemon.core.weekly_report import WeeklySchedule
from sla_daemon.delivery import delivery_settings
from sla_daemon.errors import ConfigError
from sla_daemon.evaluation import evaluate_conversations
from sla_daemon.hosts import listen_address
from sla_daemon.metrics import DaemonMetrics
from sla_daemon.ports import MailSource
from sla_daemon.rules_from_config import build_markers, build_rules
from sla_daemon.service import IngestSettings, SlaService
from sla_daemon.status_board import StatusBoard
from sla_daemon.status_view import FailedNotice
from sla_daemon.tls import client_context
from sla_daemon.weekly_reports import WeeklyReports, notice_records

if TYPE_CHECKING:
    from sla_daemon.audit import WouldSend

_audit_log = structlog.get_logger("sla_daemon.audit")


def build_source(
    mailbox: MailboxConfig,
    ingest: IngestConfig | None = None,
    metrics: DaemonMetrics | None = None,
) -> MailSource:
    """The source for one configured mailbox: IMAP, or a local Maildir/mbox.

    ``ingest`` gives ``max_body_bytes`` (its default when left out). Without
    ``folders.sent`` an IMAP source finds its sent folders by SPECIAL-USE and a local one
    reads ``Sent``. With ``metrics``, an IMAP source counts its reconnects there.
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
        watch_retry_wait=(1.0, mailbox.reconnect_max.total_seconds()),
        ssl_context=client_context(mailbox.ca_file, key=f"mailboxes[{mailbox.name}].ca_file"),
        on_reconnect=metrics.reconnect_counter(mailbox.name) if metrics is not None else None,
        tokens=build_tokens(f"mailbox {mailbox.name}", mailbox.oauth2),
    )


def build_tokens(name: str, oauth2: OAuth2Config | None) -> AccessTokens | None:
    """The access tokens of an ``oauth2`` section (None without one); ``name`` is for messages.

    The refresh token and client secret are read here, so a missing file is a ConfigError.
    """
    if oauth2 is None:
        return None
    if oauth2.token_command is not None:
        return CommandTokens(name, oauth2.token_command, oauth2.token_lifetime, SystemClock())
    grant = RefreshGrant(
        endpoint=oauth2.endpoint(),
        client_id=oauth2.client_id or "",
        client_secret=oauth2.resolve_client_secret(),
        refresh_token=oauth2.resolve_refresh_token(),
        scope=oauth2.effective_scope(),
        refresh_token_file=(
            secret_file("refresh_token_file", oauth2.refresh_token_file)
            if oauth2.refresh_token_file is not None
            else None
        ),
    )
    return RefreshTokens(name, grant, SystemClock())


def open_store(config: Config, *, readonly: bool = False) -> Store:
    """The state database under ``state_dir``."""
    return Store.in_dir(config.state_dir, readonly=readonly)


def exclusive_state(config: Config) -> AbstractContextManager[None]:
    """Hold ``state_dir`` for this ``run`` alone; ``StateBusyError`` when another holds it."""
    return exclusive_run(config.state_dir)


def check_state(config: Config) -> str:
    """``check-config``: a line on the state database; ``StateDatabaseError`` when unusable.

    Opened read-only like ``status``: nothing is created, migrated or changed.
    """
    if not Store.exists_in(config.state_dir):
        return f"state database: none yet in {config.state_dir} (made by the first run)"
    try:
        store = open_store(config, readonly=True)
    except SchemaTooOldError:
        return "state database: an older schema, migrated by the next run"
    try:
        return f"state database: schema version {store.schema_version}, readable"
    finally:
        store.close()


def _malformed_reason(exc: Exception) -> str | None:
    return exc.reason if isinstance(exc, MalformedMessage) else None


def build_notifier() -> SystemdNotifier:
    """The systemd notifier (it does nothing when not started by systemd)."""
    return SystemdNotifier()


def build_service(
    config: Config,
    *,
    clock: Clock | None = None,
    dry_run: bool = False,
    metrics: DaemonMetrics | None = None,
) -> SlaService:
    """Wire the whole pipeline for ``run``: sources, parser, store, renderer, sender."""
    rules = build_rules(config)
    # Secrets are read here, at start-up: a missing password file stops the daemon with
    # a ConfigError (exit 78) instead of failing on the first cycle.
    sources = [build_source(mailbox, config.ingest, metrics) for mailbox in config.mailboxes]
    sender = SmtpSender(
        host=config.smtp.host,
        port=config.smtp.effective_port,
        security=config.smtp.security,
        username=config.smtp.username,
        password=config.smtp.resolve_password(),
        timeout=config.smtp.timeout.total_seconds(),
        tokens=build_tokens("smtp", config.smtp.oauth2),
        ssl_context=client_context(config.smtp.ca_file, key="smtp.ca_file"),
    )
    return SlaService(
        store=open_store(config),
        sources=sources,
        parse=parse_message,
        is_malformed=_malformed_reason,
        renderer=build_renderer(config, rules),
        sender=sender,
        rules=rules,
        clock=clock or SystemClock(),
        ingest=IngestSettings(
            backfill=config.ingest.backfill, max_body_bytes=config.ingest.max_body_bytes
        ),
        dry_run=dry_run,
        briefings=build_briefings(config, rules),
        delivery=delivery_settings(config.notices, config.timezone),
        weekly_reports=build_weekly_reports(config, rules),
    )


def build_http_listener(
    config: Config, metrics: DaemonMetrics, board: StatusBoard | None = None
) -> HttpListener | None:
    """The listener of ``http.listen`` (the status page with ``board``); None when unset."""
    if config.http is None:
        return None
    host, port = listen_address(config.http.listen)
    if board is None:
        return HttpListener(host, port, web_app(metrics))
    renderer = StatusPageRenderer()
    return HttpListener(
        host, port, web_app(metrics, lambda query: renderer.render(board.page(query)))
    )


def build_briefings(config: Config, rules: Rules) -> Briefings | None:
    """The owners' morning briefings at ``notices.briefing_at``; None when it is not set."""
    if config.notices.briefing_at is None:
        return None
    return Briefings(
        renderer=build_renderer(config, rules),
        rules=rules,
        briefing_at=config.notices.briefing_at,
        default_zone=ZoneInfo(config.timezone),
    )


def build_weekly_reports(config: Config, rules: Rules) -> WeeklyReports | None:
    """The weekly report of ``reports.weekly``; None when it is not set."""
    weekly = config.reports.weekly
    if weekly is None:
        return None
    weekday, at = weekly.at
    zone = ZoneInfo(weekly.timezone or config.timezone)
    return WeeklyReports(
        renderer=build_renderer(config, rules),
        rules=rules,
        schedule=WeeklySchedule(weekday, at, zone),
        recipients=weekly.to,
    )


def build_renderer(config: Config, rules: Rules) -> NoticeMailRenderer:
    """The notice renderer of ``config``: its templates, time zones and markers."""
    return NoticeMailRenderer(config.templates_dir, rules.team, config.timezone, rules=rules)


def failed_notices(config: Config) -> list[FailedNotice] | None:
    """Every delivery that failed for good (``status``); None before the first run."""
    if not Store.exists_in(config.state_dir):
        return None
    store = open_store(config, readonly=True)
    try:
        return [
            FailedNotice(
                key=d.key,
                kind=d.kind.value,
                conversation_id=d.conversation_id,
                recipient=d.recipient,
                decided_at=d.decided_at,
                attempts=d.attempts,
                reply_code=d.last_code,
                error=d.last_error or "",
            )
            for d in store.failed_deliveries()
        ]
    finally:
        store.close()


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


def period_report(config: Config, since: datetime, until: datetime, now: datetime) -> Report | None:
    """``report``: the SLA report of ``[since, until)`` as known at ``now``, read-only.

    None before the first run. Conversations are evaluated like ``status`` does; the
    outbox gives the follow-ups and check-ins decided.
    """
    if not Store.exists_in(config.state_dir):
        return None
    store = open_store(config, readonly=True)
    try:
        rules = build_rules(config, today=now.date())
        statuses = evaluate_conversations(store, rules, now)
        notices = notice_records(store.outbox())
    finally:
        store.close()
    return build_report(statuses, rules, notices, since, until, now)


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
    from sla_daemon.core.threads import without_known_people
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
        if rules is not None:
            facts = without_known_people(facts, rules)
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


def audit_export(
    config: Config, path: Path, since: datetime | None, until: datetime
) -> tuple[Report, list[WouldSend]]:
    """``audit``: the engine replayed over the export at ``path`` (``audit.replay``).

    Uses a temporary state database, never ``state_dir``, and a sender that sends
    nothing. ``since`` defaults to the first message's arrival. Returns the report of
    ``[since, until)`` without the daemon's notices, and the notices it would have sent.
    """
    import tempfile

    from sla_daemon.audit import RecordingSender, ReplayClock, ReplaySource, replay, would_send
    from sla_daemon.core.model import FolderKind

    rules = build_rules(config, today=until.date())
    messages: list[tuple[datetime, bytes]] = []
    for label, raw, error in _inspected_files([path]):
        try:
            if raw is None:
                raise MalformedMessage(error or "unreadable")
            facts = parse_message(
                raw,
                mailbox="audit",
                folder="INBOX",
                folder_kind=FolderKind.INBOX,
                internaldate=None,
                max_body_bytes=config.ingest.max_body_bytes,
                now=until,
            )
        except MalformedMessage as exc:
            _audit_log.warning("audit.message_skipped", message=label, reason=exc.reason)
            continue
        messages.append((facts.arrived_at, raw))
    if not messages:
        raise ConfigError([f"{path}: no readable message (an mbox file, mbox files or a Maildir)"])
    start = min(arrived for arrived, _ in messages)
    clock = ReplayClock(start)
    source = ReplaySource(messages, clock)
    with tempfile.TemporaryDirectory(prefix="sla-daemon-audit-") as scratch:
        store = Store.in_dir(Path(scratch))
        service = SlaService(
            store=store,
            sources=[source],
            parse=parse_message,
            is_malformed=_malformed_reason,
            renderer=build_renderer(config, rules),
            sender=RecordingSender(),
            rules=rules,
            clock=clock,
            ingest=IngestSettings(
                backfill=until - start, max_body_bytes=config.ingest.max_body_bytes
            ),
            briefings=build_briefings(config, rules),
            delivery=delivery_settings(config.notices, config.timezone),
            weekly_reports=build_weekly_reports(config, rules),
        )
        try:
            replay(service, source, clock, until)
            statuses = [
                evaluate(cid, store.conversation_messages(cid), rules, {}, until).status
                for cid in store.conversation_ids()
            ]
            notices = would_send(store.outbox())
        finally:
            service.close()
    figures = build_report(
        [s for s in statuses if s.cycle > 0], rules, (), since or start, until, until
    )
    return figures, notices
