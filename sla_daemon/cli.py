"""The ``sla-daemon`` command line: argument parsing only; the work is done by ``app``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from sla_daemon import __version__
from sla_daemon.clock import SystemClock
from sla_daemon.config import Config, MailboxConfig, default_config_path, load_config
from sla_daemon.errors import EX_CONFIG, ConfigError, StateDatabaseError
from sla_daemon.logs import configure_logging
from sla_daemon.units import format_duration

EX_TEMPFAIL = 75
"""Exit status of ``run --once`` when a mailbox could not be reached (sysexits.h)."""

log = structlog.get_logger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sla-daemon",
        description="Keeps a service team's promises to its clients by watching its mail.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help="configuration file (default: $SLA_DAEMON_CONFIG, then /etc/sla-daemon/config.yaml)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="debug, info, warning or error (default: info; the demo: warning)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("check-config", help="validate the configuration and summarise it")
    run = commands.add_parser("run", help="watch the mailboxes and keep the SLA clocks")
    run.add_argument("--once", action="store_true", help="run one cycle, then exit")
    run.add_argument(
        "--dry-run", action="store_true", help="read mail and decide, but send nothing"
    )
    status = commands.add_parser("status", help="show where every conversation stands")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--as-of",
        metavar="TIME",
        help="evaluate at another time (ISO 8601; without offset: the configured timezone)",
    )
    explain = commands.add_parser(
        "explain", help="why a conversation's clocks and due times are what they are"
    )
    explain.add_argument(
        "conversation", metavar="CONVERSATION_ID", help="as shown by status (or a Message-ID)"
    )
    explain.add_argument(
        "--as-of",
        metavar="TIME",
        help="evaluate at another time (ISO 8601; without offset: the configured timezone)",
    )
    report = commands.add_parser(
        "report", help="per account and owner: times to acknowledge and plan, targets met"
    )
    report.add_argument(
        "--since", metavar="DATE", help="period start (date or ISO time; default: 30 days ago)"
    )
    report.add_argument("--until", metavar="DATE", help="period end, excluded (default: now)")
    report.add_argument("--format", choices=("text", "json", "csv", "html"), default="text")
    audit = commands.add_parser(
        "audit",
        help="replay an mbox or Maildir export through the engine: the report, and the "
        "notices it would have sent (sends nothing, leaves the state database alone)",
    )
    audit.add_argument(
        "path", type=Path, metavar="PATH", help="an mbox file, mbox files, a Maildir"
    )
    audit.add_argument("--since", metavar="DATE", help="report start (default: first message)")
    audit.add_argument("--until", metavar="DATE", help="replay and report end (default: now)")
    audit.add_argument("--format", choices=("text", "json", "html"), default="text")
    inspect = commands.add_parser(
        "inspect",
        help="how each message of .eml files, a Maildir or an mbox is parsed, threaded and "
        "classified (no state database, no network; --config adds role and account)",
    )
    inspect.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    inspect.add_argument("--json", action="store_true", help="one JSON object per message")
    preview = commands.add_parser(
        "preview",
        help="render a sample notice (with --config: that team, accounts and templates)",
    )
    preview.add_argument("kind", nargs="?", metavar="KIND", help="a notice kind, or all")
    preview.add_argument("--list", action="store_true", help="list the kinds and exit")
    preview.add_argument(
        "--eml", type=Path, metavar="PATH", help="write a complete .eml (a directory for all)"
    )
    demo = commands.add_parser("demo", help="run the whole pipeline on a sample mailbox")
    demo.add_argument(
        "--dir", type=Path, default=None, help="keep the demo's files here (default: a temp dir)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args = _parser().parse_args(argv)
    default_level = "warning" if args.command == "demo" else "info"
    configure_logging(level=args.log_level or default_level)
    try:
        if args.command == "demo":
            from sla_daemon.demo import run_demo

            return run_demo(args.dir)
        if args.command == "inspect":
            # A configuration is optional here: only an explicit --config is read.
            return _inspect(args.paths, args.config, as_json=args.json)
        if args.command == "preview":
            from sla_daemon.preview_cli import run_preview

            # Like inspect, only an explicit --config is read; else the demo's.
            return run_preview(args.kind, args.config, eml=args.eml, list_only=args.list)
        config_path: Path = args.config or default_config_path()
        config = load_config(config_path)
        if args.command == "check-config":
            return _check_config(config, config_path)
        if args.command == "run":
            return _run(config, config_path, once=args.once, dry_run=args.dry_run)
        if args.command == "status":
            return _status(config, as_json=args.json, as_of=args.as_of)
        if args.command == "explain":
            return _explain(config, args.conversation, as_of=args.as_of)
        if args.command == "report":
            from sla_daemon.report_cli import run_report

            return run_report(config, args.since, args.until, args.format)
        if args.command == "audit":
            from sla_daemon.audit_cli import run_audit

            return run_audit(config, args.path, args.since, args.until, args.format)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EX_CONFIG
    except StateDatabaseError as exc:
        # One line naming the file, what is wrong and what to do; no traceback.
        log.error("state.unusable", error=str(exc), exit_status=exc.exit_status)
        return exc.exit_status
    raise AssertionError(f"unhandled command {args.command}")


def _check_config(config: Config, path: Path) -> int:
    problems = []
    for mailbox in config.mailboxes:
        try:
            mailbox.resolve_password()
            if mailbox.oauth2 is not None:
                mailbox.oauth2.check_secrets()
        except ConfigError as exc:
            problems += [f"{path}: mailboxes[{mailbox.name}]: {p}" for p in exc.problems]
    try:
        config.smtp.resolve_password()
        if config.smtp.oauth2 is not None:
            config.smtp.oauth2.check_secrets()
    except ConfigError as exc:
        problems += [f"{path}: smtp: {p}" for p in exc.problems]
    if problems:
        raise ConfigError(problems)
    print(f"{path}: configuration is valid")
    print(f"state: {config.state_dir}   timezone: {config.timezone}")
    from sla_daemon.app_queries import check_state

    print(check_state(config))
    print(f"team: {config.team.name} <{config.team.from_}>, domains {config.team.domains}")
    print("mailboxes:")
    for mailbox in config.mailboxes:
        where = (
            f"{mailbox.format} {mailbox.path}"
            if mailbox.path
            else f"imap {mailbox.host}:{mailbox.effective_port} ({mailbox.security})"
        )
        print(
            f"  {mailbox.name}: {where}; inbox {', '.join(mailbox.folders.inbox)}; "
            f"sent {_sent_description(mailbox)}; "
            f"every {format_duration(mailbox.poll_interval)}"
        )
    print(f"smtp: {config.smtp.host}:{config.smtp.effective_port} ({config.smtp.security})")
    print("policies:")
    for name, policy in config.policies.items():
        ack = policy.acknowledge
        plan = policy.action_plan
        print(
            f"  {name}: acknowledge within {format_duration(ack.within)}, action plan within "
            f"{format_duration(plan.within)} (warn {_offsets(plan.warn_before)}), "
            f"auto-ack {'on' if policy.auto_ack else 'off'}, calendar {policy.calendar}"
        )
    print("accounts:")
    for account in config.accounts:
        print(
            f"  {account.name}: {', '.join(account.domains + account.addresses) or '-'}; "
            f"policy {account.policy}; owner {account.owner}; "
            f"escalate to {', '.join(account.escalate_to) or '-'}"
        )
    if not config.accounts:
        print("  (none: no mail will be treated as a client's)")
    return 0


def _sent_description(mailbox: MailboxConfig) -> str:
    if mailbox.sent_folders is not None:
        return ", ".join(mailbox.sent_folders) or "(none)"
    if mailbox.path is not None:
        return "Sent"
    return "found by SPECIAL-USE \\Sent"


def _offsets(values: Sequence[timedelta]) -> str:
    items = [format_duration(v) for v in values]
    return ", ".join(items) + " before" if items else "never"


def _run(config: Config, config_path: Path, *, once: bool, dry_run: bool) -> int:
    from sla_daemon.app import exclusive_state

    with exclusive_state(config):
        return _run_alone(config, config_path, once=once, dry_run=dry_run)


def _run_alone(config: Config, config_path: Path, *, once: bool, dry_run: bool) -> int:
    from functools import partial

    from sla_daemon.app import build_http_listener, build_notifier, build_service
    from sla_daemon.daemon import Daemon
    from sla_daemon.heap import HeapTrimmer, glibc_malloc_trim
    from sla_daemon.metrics import DaemonMetrics
    from sla_daemon.status_board import StatusBoard

    if once:
        service = build_service(config, dry_run=dry_run)
        try:
            with service.store.damage_as_error():
                report = service.run_cycle()
        finally:
            service.close()
        if report.login_failures:
            raise ConfigError(report.login_failures)
        return EX_TEMPFAIL if report.source_errors else 0
    metrics = DaemonMetrics(SystemClock()) if config.http is not None else None
    board = StatusBoard(SystemClock()) if config.http is not None else None
    daemon = Daemon(
        config,
        config_path,
        build_service=partial(build_service, dry_run=dry_run, metrics=metrics),
        load_config=load_config,
        notifier=build_notifier(),
        metrics=metrics,
        listener=build_http_listener(config, metrics, board) if metrics is not None else None,
        board=board,
        heap=HeapTrimmer(glibc_malloc_trim()),
    )
    daemon.install_signal_handlers()
    return daemon.run()


def _status(config: Config, *, as_json: bool, as_of: str | None) -> int:
    from sla_daemon.app_queries import conversation_statuses, failed_notices
    from sla_daemon.status_view import status_json, status_table

    zone = ZoneInfo(config.timezone)
    now = SystemClock().now() if as_of is None else _parse_time(as_of, zone)
    statuses = conversation_statuses(config, now)
    if statuses is None:
        print(
            f"no state yet in {config.state_dir}: run `sla-daemon run --once` first",
            file=sys.stderr,
        )
        statuses = []
    failed = failed_notices(config) or []
    print(
        status_json(statuses, now, failed) if as_json else status_table(statuses, now, zone, failed)
    )
    return 0


def _explain(config: Config, conversation_id: str, *, as_of: str | None) -> int:
    from sla_daemon.app_queries import conversation_evaluation
    from sla_daemon.explain_view import explain_text

    zone = ZoneInfo(config.timezone)
    now = SystemClock().now() if as_of is None else _parse_time(as_of, zone)
    evaluation = conversation_evaluation(config, conversation_id, now)
    if evaluation is None:
        print(
            f"no conversation {conversation_id!r} in {config.state_dir}: "
            "`sla-daemon status` lists them",
            file=sys.stderr,
        )
        return 1
    print(explain_text(evaluation.status, zone))
    return 0


def _inspect(paths: Sequence[Path], config_path: Path | None, *, as_json: bool) -> int:
    from sla_daemon.app_exports import inspect_paths
    from sla_daemon.inspection import rows_json, rows_table

    config = load_config(config_path) if config_path is not None else None
    rows = inspect_paths(paths, config, SystemClock().now())
    if rows:
        print(rows_json(rows) if as_json else rows_table(rows))
    return 0


def _parse_time(text: str, zone: ZoneInfo) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            [f"--as-of: expected an ISO 8601 time like 2026-11-24T09:30, got {text!r}"]
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=zone)
