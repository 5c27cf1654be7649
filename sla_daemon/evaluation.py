"""Every stored conversation through the engine: the read side of the service.

Reads the store and writes nothing; ``status``, ``report`` and each cycle evaluate here.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sla_daemon.adapters.store import Store
from sla_daemon.collections_pause import fewer_collections
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import ConversationStatus, Evaluation, MessageFacts, Rules


def _evaluated(
    store: Store, rules: Rules, now: datetime
) -> Iterator[tuple[Evaluation, list[MessageFacts]]]:
    """Each conversation's evaluation at ``now``, with the messages it was made from."""
    for conversation_id in store.conversation_ids():
        messages = store.conversation_messages(conversation_id)
        notices = store.notices_for(conversation_id)
        yield evaluate(conversation_id, messages, rules, notices, now), messages


def evaluate_all(store: Store, rules: Rules, now: datetime) -> list[Evaluation]:
    """Evaluate every stored conversation at ``now``; reads the store, writes nothing."""
    with fewer_collections():
        return [evaluation for evaluation, _ in _evaluated(store, rules, now)]


def evaluate_conversations(store: Store, rules: Rules, now: datetime) -> list[ConversationStatus]:
    """Where every client conversation stands at ``now``.

    Conversations that never had a client request (automated mail, mail from senders
    outside every account) are left out: they carry no promise.
    """
    return [e.status for e in evaluate_all(store, rules, now) if e.status.cycle > 0]
