"""``inspect`` and ``audit``: the daemon's own parsing and engine over exported mail files.

Part of the composition root (see ``app``): neither touches ``state_dir`` nor connects
to a server; ``audit`` replays through a service over a temporary database.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.store import Store
from sla_daemon.app import build_briefings, build_renderer, build_weekly_reports, malformed_reason
from sla_daemon.config import Config, MarkersConfig
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import FolderKind, MessageFacts
from sla_daemon.core.report import Report, build_report
from sla_daemon.delivery import delivery_settings
from sla_daemon.errors import ConfigError
from sla_daemon.rules_from_config import build_markers, build_rules
from sla_daemon.service import IngestSettings, SlaService

if TYPE_CHECKING:
    from sla_daemon.audit import WouldSend

_audit_log = structlog.get_logger("sla_daemon.audit")


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
            facts = _parsed_file(raw, "inspect", max_body_bytes, now, extra_headers)
        except MalformedMessage as exc:
            messages.append(Inspected(label, error=exc.reason))
            continue
        if rules is not None:
            facts = without_known_people(facts, rules)
        messages.append(Inspected(label, facts=facts))
    return inspect_messages(messages, markers, rules)


def _parsed_file(
    raw: bytes,
    mailbox: str,
    max_body_bytes: int,
    now: datetime,
    extra_headers: Sequence[str] = (),
) -> MessageFacts:
    """A message of an exported file, parsed as local mail (its Date header is its arrival)."""
    return parse_message(
        raw,
        mailbox=mailbox,
        folder="INBOX",
        folder_kind=FolderKind.INBOX,
        internaldate=None,
        max_body_bytes=max_body_bytes,
        now=now,
        extra_headers=extra_headers,
    )


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

    rules = build_rules(config, today=until.date())
    messages: list[tuple[datetime, bytes]] = []
    for label, raw, error in _inspected_files([path]):
        try:
            if raw is None:
                raise MalformedMessage(error or "unreadable")
            facts = _parsed_file(raw, "audit", config.ingest.max_body_bytes, until)
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
            is_malformed=malformed_reason,
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
