"""Which conversation a message belongs to, from Message-ID, In-Reply-To and References.

The store keeps a map from every Message-ID seen (including ids only referenced, the
"ghost" ancestors of mail we never received) to its conversation. A new message joins the
conversation of its In-Reply-To parent when that is known (the parent is trusted over a
References list that disagrees), else of its nearest known reference; otherwise it opens a
new conversation named after its thread's root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from sla_daemon.core.model import MessageFacts


def related_ids(facts: MessageFacts) -> tuple[str, ...]:
    """Ids a message is linked to, nearest first: In-Reply-To, then References backwards."""
    ordered: list[str] = []
    if facts.in_reply_to:
        ordered.append(facts.in_reply_to)
    ordered.extend(reversed(facts.references))
    seen: set[str] = {facts.message_id}
    unique = []
    for message_id in ordered:
        if message_id not in seen:
            seen.add(message_id)
            unique.append(message_id)
    return tuple(unique)


def thread_root(facts: MessageFacts) -> str:
    """The id the thread started with, as far as this message tells."""
    if facts.references:
        return facts.references[0]
    if facts.in_reply_to:
        return facts.in_reply_to
    return facts.message_id


def conversation_id_for_root(root_message_id: str) -> str:
    """A short stable conversation id derived from the root Message-ID."""
    return "c-" + hashlib.sha256(root_message_id.encode("utf-8")).hexdigest()[:10]


def assign_conversation(facts: MessageFacts, known: Mapping[str, str]) -> str:
    """Return the conversation ``facts`` belongs to, given ``known`` Message-ID links.

    ``known`` maps Message-IDs (received or only referenced) to conversation ids. The
    parent's conversation wins; the message's own id counts when no relation is known
    (a reply that arrived first has already named it as its parent).
    """
    for message_id in related_ids(facts):
        conversation = known.get(message_id)
        if conversation is not None:
            return conversation
    own = known.get(facts.message_id)
    if own is not None:
        return own
    return conversation_id_for_root(thread_root(facts))


def conversations_to_merge(facts: MessageFacts, known: Mapping[str, str], into: str) -> set[str]:
    """Other conversations this message proves to be part of ``into``.

    A reply stored before its parent starts a conversation of its own; when the parent
    (or a message linking both) arrives, the two are one thread and must be merged.
    """
    linked = {known[i] for i in ids_to_link(facts) if i in known}
    return linked - {into}


def ids_to_link(facts: MessageFacts) -> tuple[str, ...]:
    """Every id that should point at this message's conversation once it is stored."""
    return (facts.message_id, *related_ids(facts))
