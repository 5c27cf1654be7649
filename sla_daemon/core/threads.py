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

When the headers name nothing known, a normalized-subject fallback may join the message to
a recent conversation with the same subject and an overlapping participant; see
``subject_match`` for the exact rule (docs/sla.md states it for users).

``plan_threading`` is the decision as a value; the service applies it to the store, and
``ThreadMap`` applies it to dictionaries in memory (``inspect`` and the tests), so both
run the same code.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sla_daemon.core.classify import account_for_address, is_team_address
from sla_daemon.core.model import MessageFacts, Rules
from sla_daemon.core.subjects import (
    GENERIC_SUBJECTS,
    MIN_SUBJECT_LETTERS,
    SUBJECT_WINDOW,
    SubjectCandidate,
    lost_its_headers,
    normalize_subject,
    participants,
    subject_key,
    subject_match,
)

__all__ = [
    "GENERIC_SUBJECTS",
    "MIN_SUBJECT_LETTERS",
    "SUBJECT_WINDOW",
    "SubjectCandidate",
    "ThreadMap",
    "ThreadingPlan",
    "assign_conversation",
    "conversation_id_for_root",
    "conversations_to_merge",
    "ids_to_link",
    "lost_its_headers",
    "normalize_subject",
    "participants",
    "plan_threading",
    "related_ids",
    "subject_key",
    "subject_match",
    "thread_root",
    "without_known_people",
]


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
    by_subject: bool = False
    """True when the headers named nothing known and the subject fallback chose the
    conversation (counted and logged apart from header threading)."""
    reason: str = ""
    """Why the subject fallback joined (empty otherwise)."""


def without_known_people(facts: MessageFacts, rules: Rules) -> MessageFacts:
    """``facts`` without the relations that are the address of a person the rules know.

    exmh and old MH write ``In-Reply-To: Message from Name <address> of DATE <id>``: the
    address looks like a Message-ID. Linked as one, it would join every conversation in
    which someone answered that person, so a client's unrelated requests would become
    one. A relation is dropped when it equals the address of one of the message's own
    participants (From, To, Cc, Reply-To) whom the rules know: the team or a client of an
    account. Addresses of people the rules do not know stay relations, as in every other
    threader (notmuch, JWZ): nobody's SLA hangs on them.
    """
    relations = {ref.lower() for ref in facts.references}
    if facts.in_reply_to is not None:
        relations.add(facts.in_reply_to.lower())
    # Only a participant named among the relations matters: the rules are asked about
    # those alone (nearly always none), not about every participant of every message.
    people = {
        address.email.lower()
        for address in (
            *facts.recipients,
            *facts.reply_to,
            *((facts.sender,) if facts.sender else ()),
        )
        if address.email.lower() in relations
        and (
            is_team_address(address.email, rules)
            or account_for_address(address.email, rules) is not None
        )
    }
    if not people:
        return facts
    references = tuple(ref for ref in facts.references if ref.lower() not in people)
    in_reply_to = facts.in_reply_to
    if in_reply_to is not None and in_reply_to.lower() in people:
        in_reply_to = None
    if references == facts.references and in_reply_to == facts.in_reply_to:
        return facts
    return replace(facts, references=references, in_reply_to=in_reply_to)


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
    return _assigned(facts, ids_to_link(facts), known)


def _assigned(facts: MessageFacts, link_ids: tuple[str, ...], known: Mapping[str, str]) -> str:
    """``assign_conversation`` with ``ids_to_link(facts)`` worked out once by the caller."""
    for message_id in link_ids[1:]:  # the related ids, nearest first
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
    return _merged(ids_to_link(facts), known, into)


def _merged(link_ids: tuple[str, ...], known: Mapping[str, str], into: str) -> set[str]:
    """``conversations_to_merge`` with ``ids_to_link`` worked out once by the caller."""
    return {known[i] for i in link_ids if i in known} - {into}


def ids_to_link(facts: MessageFacts) -> tuple[str, ...]:
    """Every id that should point at this message's conversation once it is stored."""
    return (facts.message_id, *related_ids(facts))


def plan_threading(
    facts: MessageFacts,
    known: Mapping[str, str],
    subject_candidates: Sequence[SubjectCandidate] = (),
    rules: Rules | None = None,
) -> ThreadingPlan:
    """Decide where ``facts`` goes, given the links ``known`` for ``ids_to_link(facts)``.

    ``known`` maps Message-IDs to conversation ids; only the ids of ``ids_to_link(facts)``
    are looked at, so a caller may pass just those. The merges are sorted, so the same
    input always gives the same plan. Planning a message that is already stored again
    (the same Message-ID fetched from another folder) returns its conversation with nothing
    to merge, as long as the copy names no id of another conversation; the service skips
    such copies before planning, so a copy never re-threads anything.

    Only when none of ``ids_to_link(facts)`` is known are ``subject_candidates`` (the
    conversations filed under the message's normalized subject) considered: the message
    joins the one ``subject_match`` picks, with ``by_subject`` set. ``rules`` says which
    addresses are the team's, left out of the participant overlap.
    """
    link_ids = ids_to_link(facts)
    if subject_candidates and not any(message_id in known for message_id in link_ids):
        match = subject_match(facts, subject_candidates, rules)
        if match is not None:
            candidate, reason = match
            return ThreadingPlan(
                conversation_id=candidate.conversation_id,
                merge=(),
                link_ids=link_ids,
                by_subject=True,
                reason=reason,
            )
    conversation_id = _assigned(facts, link_ids, known)
    merge = tuple(sorted(_merged(link_ids, known, conversation_id)))
    return ThreadingPlan(conversation_id=conversation_id, merge=merge, link_ids=link_ids)


class ThreadMap:
    """Conversations kept in memory, changed by plans exactly as the store is.

    ``inspect`` and the tests use it where the daemon uses the state database: the same
    links (every id seen or referenced -> conversation), merged and linked the same way,
    and the same subject index (normalized subject -> conversations, with their
    participants and last arrival).
    """

    def __init__(self) -> None:
        self._links: dict[str, str] = {}
        self._ids: dict[str, set[str]] = {}
        self._subjects: dict[str, set[str]] = {}
        self._keys: dict[str, set[str]] = {}
        self._participants: dict[str, set[str]] = {}
        self._last_at: dict[str, datetime] = {}

    def links_for(self, message_ids: Iterable[str]) -> dict[str, str]:
        """The conversation each of ``message_ids`` is linked to, for those that are."""
        return {i: self._links[i] for i in message_ids if i in self._links}

    def conversation_of(self, message_id: str) -> str | None:
        """The conversation ``message_id`` is linked to now, if any."""
        return self._links.get(message_id)

    @property
    def links(self) -> Mapping[str, str]:
        """Every link: Message-ID (stored or only referenced) -> conversation."""
        return self._links

    def subject_candidates(self, facts: MessageFacts) -> tuple[SubjectCandidate, ...]:
        """The conversations filed under ``facts``'s normalized subject (none if generic)."""
        key = subject_key(facts.subject)
        if key is None:
            return ()
        return tuple(
            SubjectCandidate(
                conversation_id=conversation,
                participants=frozenset(self._participants.get(conversation, ())),
                last_at=self._last_at[conversation],
            )
            for conversation in sorted(self._subjects.get(key, ()))
            if conversation in self._last_at
        )

    def apply(self, plan: ThreadingPlan, facts: MessageFacts | None = None) -> None:
        """Merge, then link, as the service does; with ``facts``, index the message too."""
        into = plan.conversation_id
        for other in plan.merge:
            self._merge(other, into)
        for message_id in plan.link_ids:
            if message_id not in self._links:
                self._links[message_id] = into
                self._ids.setdefault(into, set()).add(message_id)
        if facts is not None:
            key = subject_key(facts.subject)
            if key is not None:
                self._subjects.setdefault(key, set()).add(into)
                self._keys.setdefault(into, set()).add(key)
            self._participants.setdefault(into, set()).update(participants(facts))
            last = self._last_at.get(into)
            if last is None or facts.arrived_at > last:
                self._last_at[into] = facts.arrived_at

    def thread(
        self, facts: MessageFacts, *, subject_fallback: bool = True, rules: Rules | None = None
    ) -> ThreadingPlan:
        """Plan and apply one new message as the service stores it; return the plan.

        The subject candidates are looked up only when no id of the message is linked
        yet, and only with ``subject_fallback``.
        """
        known = self.links_for(ids_to_link(facts))
        candidates = self.subject_candidates(facts) if subject_fallback and not known else ()
        plan = plan_threading(facts, known, candidates, rules)
        self.apply(plan, facts)
        return plan

    def _merge(self, merged: str, into: str) -> None:
        if merged == into:
            return
        for message_id in self._ids.pop(merged, set()):
            self._links[message_id] = into
            self._ids.setdefault(into, set()).add(message_id)
        for key in self._keys.pop(merged, set()):
            conversations = self._subjects[key]
            conversations.discard(merged)
            conversations.add(into)
            self._keys.setdefault(into, set()).add(key)
        self._participants.setdefault(into, set()).update(self._participants.pop(merged, ()))
        last = self._last_at.pop(merged, None)
        if last is not None and (into not in self._last_at or last > self._last_at[into]):
            self._last_at[into] = last
