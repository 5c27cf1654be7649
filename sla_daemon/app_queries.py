"""The read-only questions about the state database: ``status``, ``explain``, ``report``.

Part of the composition root (see ``app``): each opens the database read-only and builds
no source or sender, so it needs no secrets and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sla_daemon.adapters.store import SchemaTooOldError, Store
from sla_daemon.app import open_store
from sla_daemon.config import Config
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import ConversationStatus, Evaluation
from sla_daemon.core.report import Report, build_report
from sla_daemon.evaluation import evaluate_conversations
from sla_daemon.rules_from_config import build_rules
from sla_daemon.status_view import FailedNotice
from sla_daemon.weekly_reports import notice_records


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
