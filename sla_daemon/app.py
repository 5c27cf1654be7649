"""The composition root: configuration in, a wired service out.

This module and its two companions are the only ones that construct adapters; everything
else receives them. Here: the pipeline ``run`` drives. ``app_queries``: the read-only
questions about the state database (``status``, ``explain``, ``report``).
``app_exports``: ``inspect`` and ``audit`` over exported mail files.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.local import LocalSource
from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.oauth2 import AccessTokens, CommandTokens, RefreshGrant, RefreshTokens
from sla_daemon.adapters.renderers import NoticeMailRenderer
from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.adapters.state_lock import exclusive_run
from sla_daemon.adapters.status_html import StatusPageRenderer
from sla_daemon.adapters.store import Store
from sla_daemon.adapters.systemd import SystemdNotifier
from sla_daemon.adapters.web import HttpListener, web_app
from sla_daemon.briefings import Briefings
from sla_daemon.clock import Clock, SystemClock
from sla_daemon.config import Config, IngestConfig, MailboxConfig
from sla_daemon.config_oauth2 import OAuth2Config
from sla_daemon.config_types import secret_file
from sla_daemon.core.model import Rules
from sla_daemon.core.weekly_report import WeeklySchedule
from sla_daemon.delivery import delivery_settings
from sla_daemon.evaluation_cache import EvaluationCache
from sla_daemon.hosts import listen_address
from sla_daemon.metrics import DaemonMetrics
from sla_daemon.ports import MailSource
from sla_daemon.rules_from_config import build_rules, rules_fingerprint
from sla_daemon.service import IngestSettings, SlaService
from sla_daemon.status_board import StatusBoard
from sla_daemon.tls import client_context
from sla_daemon.weekly_reports import WeeklyReports


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


def malformed_reason(exc: Exception) -> str | None:
    """The reason the parser gave for a message it could not read, else None (a bug)."""
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
    today = datetime.now(UTC).date()
    rules = build_rules(config, today=today)
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
        is_malformed=malformed_reason,
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
        evaluation_cache=EvaluationCache(rules_fingerprint(config, today)),
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
