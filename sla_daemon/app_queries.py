"""The read-only questions about the state database: ``status``, ``explain``, ``report``.

Part of the composition root (see ``app``): each opens the database read-only and builds
no source or sender, so it needs no secrets and changes nothing. A database that cannot
be read, at open or at any page a query reaches, ends the command with one
``StateDatabaseError`` (exit 65 for a damaged file).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sla_daemon.adapters.store import SchemaTooOldError, Store
from sla_daemon.adapters.store_errors import state_errors
from sla_daemon.app import open_store
from sla_daemon.config import Config
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import ConversationStatus, Evaluation
from sla_daemon.core.report import Report, build_report
from sla_daemon.evaluation import evaluate_conversations
from sla_daemon.rules_from_config import build_rules
from sla_daemon.status_view import FailedNotice
from sla_daemon.weekly_reports import notice_records

T = TypeVar("T")


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


def _read_state(config: Config, question: Callable[[Store], T]) -> T | None:
    """``question`` answered from the state database opened read-only; None before a run.

    SQLite's refusals found while reading (damaged pages the open did not read) end the
    command as those found at open do: one ``StateDatabaseError``, the file unchanged.
    """
    if not Store.exists_in(config.state_dir):
        return None
    store = open_store(config, readonly=True)
    try:
        with state_errors(store.path):
            return question(store)
    finally:
        store.close()


def failed_notices(config: Config) -> list[FailedNotice] | None:
    """Every delivery that failed for good (``status``); None before the first run."""

    def failed(store: Store) -> list[FailedNotice]:
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

    return _read_state(config, failed)


def conversation_statuses(config: Config, now: datetime) -> list[ConversationStatus] | None:
    """Where every client conversation stands at ``now``; None before the first run.

    Opens the database read-only and builds no source or sender: ``status`` needs no
    secrets and changes nothing.
    """
    return _read_state(
        config,
        lambda store: evaluate_conversations(store, build_rules(config, today=now.date()), now),
    )


def period_report(config: Config, since: datetime, until: datetime, now: datetime) -> Report | None:
    """``report``: the SLA report of ``[since, until)`` as known at ``now``, read-only.

    None before the first run. Conversations are evaluated like ``status`` does; the
    outbox gives the follow-ups and check-ins decided.
    """

    def figures(store: Store) -> Report:
        rules = build_rules(config, today=now.date())
        statuses = evaluate_conversations(store, rules, now)
        notices = notice_records(store.outbox())
        return build_report(statuses, rules, notices, since, until, now)

    return _read_state(config, figures)


def conversation_evaluation(
    config: Config, conversation_id: str, now: datetime
) -> Evaluation | None:
    """One conversation's evaluation at ``now`` (``explain``), read-only like ``status``.

    ``conversation_id`` is a conversation id, or the Message-ID (``<>`` optional) of any
    message in it. None when there is no state yet or no such conversation.
    """

    def evaluation(store: Store) -> Evaluation | None:
        wanted = conversation_id.strip()
        if wanted not in store.conversation_ids():
            linked = store.conversation_links([wanted.strip("<>")])
            if not linked:
                return None
            wanted = next(iter(linked.values()))
        messages = store.conversation_messages(wanted)
        rules = build_rules(config, today=now.date())
        return evaluate(wanted, messages, rules, store.notices_for(wanted), now)

    return _read_state(config, evaluation)
