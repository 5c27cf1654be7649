"""Which conversation a message belongs to, from Message-ID, In-Reply-To and References.

The store keeps a map from every Message-ID seen (including ids only referenced, the
"ghost" ancestors of mail we never received) to its conversation. A new message joins the
conversation of its In-Reply-To parent when that is known (the parent is trusted over a
References list that disagrees), else of its nearest known reference; otherwise it opens a
new conversation named after its thread's root.

Every id a message names is linked to its conversation, and any other conversation one of
those ids already belongs to is merged into it. The conversations are therefore the
connected groups of messages and the ids they name, whatever order the mail arrives in.
Nothing here walks a parent chain, so reference loops (a message that lists a reply to
itself, or its own id) cannot make it loop: a message's own id never counts as one of its
relations, and a loop only joins messages that belong together anyway.

``plan_threading`` is the decision as a value; the service applies it to the store and the
tests apply it to a dictionary, so both run the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from sla_daemon.core.model import MessageFacts


@dataclass(frozen=True)
class ThreadingPlan:
    """What storing one message does to the conversations.

    Merge every conversation in ``merge`` into ``conversation_id`` (in that order), store
    the message in ``conversation_id``, then point each of ``link_ids`` that is not yet
    linked at ``conversation_id``.
    """

    conversation_id: str
    merge: tuple[str, ...]
    link_ids: tuple[str, ...]


def related_ids(facts: MessageFacts) -> tuple[str, ...]:
    """Ids a message is linked to, nearest first: In-Reply-To, then References backwards.

    Each id appears once, and the message's own id never does (a References list that
    names the message itself is a loop, not a relation).
    """
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
    """The id the thread started with, as far as this message tells.

    The first reference that is not the message itself, else its In-Reply-To parent, else
    the message's own id.
    """
    for message_id in facts.references:
        if message_id != facts.message_id:
            return message_id
    if facts.in_reply_to and facts.in_reply_to != facts.message_id:
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


def plan_threading(facts: MessageFacts, known: Mapping[str, str]) -> ThreadingPlan:
    """Decide where ``facts`` goes, given the links ``known`` for ``ids_to_link(facts)``.

    ``known`` maps Message-IDs to conversation ids; only the ids of ``ids_to_link(facts)``
    are looked at, so a caller may pass just those. The merges are sorted, so the same
    input always gives the same plan. Planning a message that is already stored again
    (the same Message-ID fetched from another folder) returns its conversation with nothing
    to merge, as long as the copy names no id of another conversation; the service skips
    such copies before planning, so a copy never re-threads anything.
    """
    conversation_id = assign_conversation(facts, known)
    merge = tuple(sorted(conversations_to_merge(facts, known, conversation_id)))
    return ThreadingPlan(conversation_id=conversation_id, merge=merge, link_ids=ids_to_link(facts))
