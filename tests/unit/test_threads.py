"""Threading by Message-ID, In-Reply-To and References."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sla_daemon.core.model import MessageFacts
from sla_daemon.core.threads import (
    assign_conversation,
    conversation_id_for_root,
    conversations_to_merge,
    ids_to_link,
    related_ids,
)

AT = datetime(2026, 11, 24, tzinfo=UTC)


def _facts(
    message_id: str, in_reply_to: str | None = None, refs: tuple[str, ...] = ()
) -> MessageFacts:
    return MessageFacts(
        message_id=message_id, arrived_at=AT, in_reply_to=in_reply_to, references=refs
    )


def _thread(messages: list[MessageFacts]) -> dict[str, str]:
    """Assign messages in order the way the service does; return id -> conversation."""
    links: dict[str, str] = {}
    result = {}
    for facts in messages:
        conversation = assign_conversation(facts, links)
        for message_id in ids_to_link(facts):
            links.setdefault(message_id, conversation)
        result[facts.message_id] = conversation
    return result


def test_reply_joins_its_parent() -> None:
    """A reply with In-Reply-To lands in its parent's conversation."""
    threads = _thread([_facts("a"), _facts("b", "a", ("a",)), _facts("c", "b", ("a", "b"))])
    assert len(set(threads.values())) == 1


def test_unrelated_messages_are_separate() -> None:
    """Two messages without links are two conversations."""
    threads = _thread([_facts("a"), _facts("b")])
    assert threads["a"] != threads["b"]


def test_in_reply_to_wins_over_disagreeing_references() -> None:
    """When References point elsewhere, the In-Reply-To parent decides."""
    threads = _thread([_facts("x"), _facts("y"), _facts("r", "y", ("x",))])
    assert threads["r"] == threads["y"] != threads["x"]


def test_siblings_of_a_missing_root_share_a_conversation() -> None:
    """Replies to a root we never received are joined through the ghost root's id."""
    threads = _thread([_facts("r1", "ghost", ("ghost",)), _facts("r2", "ghost", ("ghost",))])
    assert threads["r1"] == threads["r2"] == conversation_id_for_root("ghost")


def test_reply_seen_before_its_parent_still_joins() -> None:
    """A Sent reply stored before the client's message links the parent when it comes."""
    threads = _thread([_facts("reply", "client", ("client",)), _facts("client")])
    assert threads["reply"] == threads["client"]


def test_own_id_is_never_its_own_relation() -> None:
    """A message listing itself in References does not count itself as a parent."""
    assert related_ids(_facts("a", "a", ("a", "b"))) == ("b",)


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=30))
def test_a_chain_is_one_conversation_in_any_order(order: list[int]) -> None:
    """A reply chain is one conversation whatever order its messages arrive in.

    Each message references the whole chain before it, as mail clients do.
    """
    chain = [f"m{i}" for i in range(31)]
    messages = [
        _facts(chain[i], chain[i - 1] if i else None, tuple(chain[:i]))
        for i in dict.fromkeys(order)
    ]
    assert len(set(_thread(messages).values())) == 1


def test_reply_stored_before_parent_is_merged_into_the_parents_thread() -> None:
    """A reply stored before its parent is merged into the parent's thread.

    The out-of-office answer to a team reply is stored first; once the team reply (which
    links both) arrives, all three messages are one conversation.
    """
    links: dict[str, str] = {}

    def store(facts: MessageFacts) -> str:
        conversation = assign_conversation(facts, links)
        for other in conversations_to_merge(facts, links, conversation):
            for key, value in list(links.items()):
                if value == other:
                    links[key] = conversation
        for message_id in ids_to_link(facts):
            links.setdefault(message_id, conversation)
        return conversation

    request = store(_facts("request"))
    store(_facts("ooo", "team-reply", ("team-reply",)))
    reply = store(_facts("team-reply", "request", ("request",)))
    assert reply == request
    assert links["ooo"] == links["team-reply"] == links["request"] == request
