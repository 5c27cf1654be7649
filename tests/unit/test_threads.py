"""Threading by Message-ID, In-Reply-To and References."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sla_daemon.core.model import Address, MessageFacts
from sla_daemon.core.threads import (
    ThreadingPlan,
    ThreadMap,
    assign_conversation,
    conversation_id_for_root,
    conversations_to_merge,
    ids_to_link,
    plan_threading,
    related_ids,
    thread_root,
    without_known_people,
)
from tests.unit.builders import rules

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


def _apply(facts: MessageFacts, links: dict[str, str]) -> ThreadingPlan:
    """Apply the plan for ``facts`` to ``links`` the way the service applies it to the store."""
    plan = plan_threading(facts, links)
    for other in plan.merge:
        for key, value in list(links.items()):
            if value == other:
                links[key] = plan.conversation_id
    for message_id in plan.link_ids:
        links.setdefault(message_id, plan.conversation_id)
    return plan


def _planned(messages: list[MessageFacts]) -> dict[str, str]:
    """Store ``messages`` in order through plans; return id -> final conversation."""
    links: dict[str, str] = {}
    for facts in messages:
        _apply(facts, links)
    return {facts.message_id: links[facts.message_id] for facts in messages}


def test_plan_for_a_new_thread() -> None:
    """A message that names nothing known opens its root's conversation and links its ids."""
    plan = plan_threading(_facts("b", "a", ("a",)), {})
    assert plan == ThreadingPlan(
        conversation_id=conversation_id_for_root("a"), merge=(), link_ids=("b", "a")
    )


def test_plan_joins_the_parent_and_merges_the_rest_sorted() -> None:
    """The In-Reply-To parent's conversation wins; every other linked one is merged, sorted."""
    known = {"parent": "c-p", "x": "c-z", "y": "c-a", "me": "c-m"}
    plan = plan_threading(_facts("me", "parent", ("x", "y", "parent")), known)
    assert plan.conversation_id == "c-p"
    assert plan.merge == ("c-a", "c-m", "c-z")
    assert plan.link_ids == ("me", "parent", "y", "x")


def test_plan_matches_the_existing_functions() -> None:
    """The plan is made of assign_conversation, conversations_to_merge and ids_to_link."""
    facts = _facts("r", "y", ("x", "y"))
    known = {"x": "c-x", "y": "c-y"}
    plan = plan_threading(facts, known)
    assert plan.conversation_id == assign_conversation(facts, known)
    assert set(plan.merge) == conversations_to_merge(facts, known, plan.conversation_id)
    assert plan.link_ids == ids_to_link(facts)


def test_a_stored_message_planned_again_stays_where_it_is() -> None:
    """A second copy of a stored message (same Message-ID) plans into its conversation.

    That holds for a copy whose References name another, unknown message too: nothing is
    merged and the message does not move.
    """
    links: dict[str, str] = {}
    _apply(_facts("root"), links)
    stored = _apply(_facts("m", "root", ("root",)), links).conversation_id
    for copy in (_facts("m", "root", ("root",)), _facts("m", "other", ("other",))):
        plan = plan_threading(copy, links)
        assert plan.conversation_id == stored
        assert plan.merge == ()


def test_a_message_naming_itself_is_not_a_loop() -> None:
    """Its own id in In-Reply-To or References is ignored, also when naming the thread."""
    facts = _facts("a", "a", ("a", "root", "a"))
    assert related_ids(facts) == ("root",)
    assert thread_root(facts) == "root"
    assert thread_root(_facts("a", "a", ("a",))) == "a"
    plan = plan_threading(facts, {})
    assert plan == ThreadingPlan(conversation_id_for_root("root"), (), ("a", "root"))


def test_two_messages_replying_to_each_other_are_one_thread_in_either_order() -> None:
    """A reference loop (each In-Reply-To the other) ends, and joins the two."""
    first, second = _facts("12", "21"), _facts("21", "12")
    for order in ([first, second], [second, first]):
        threads = _planned(order)
        assert threads["12"] == threads["21"]


def test_references_that_include_a_descendant_are_one_thread() -> None:
    """A root whose References name its own reply (and itself) joins that reply's thread."""
    messages = [
        _facts("root", None, ("reply", "root")),
        _facts("reply", "root", ("root",)),
        _facts("other"),
    ]
    for order in (messages, messages[::-1]):
        threads = _planned(order)
        assert threads["root"] == threads["reply"] != threads["other"]


_ids = st.sampled_from([f"m{i}" for i in range(8)])
_message = st.builds(_facts, _ids, st.none() | _ids, st.lists(_ids, max_size=4).map(tuple))


@given(st.lists(_message, min_size=1, max_size=12, unique_by=lambda facts: facts.message_id))
def test_membership_is_the_same_in_any_order(messages: list[MessageFacts]) -> None:
    """Random reference graphs thread the same way in one order or the reverse.

    Loops and self-references included; planning twice on the same links gives one plan.
    """
    forward = _planned(messages)
    backward = _planned(messages[::-1])
    for first in messages:
        for second in messages:
            together = forward[first.message_id] == forward[second.message_id]
            assert together == (backward[first.message_id] == backward[second.message_id])
    links: dict[str, str] = {}
    for facts in messages:
        assert plan_threading(facts, dict(links)) == plan_threading(facts, dict(links))
        _apply(facts, links)


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=30))
def test_thread_map_applies_plans_like_a_plain_dictionary(order: list[int]) -> None:
    """``ThreadMap`` (used by ``inspect`` and the corpus tests) ends where dict links do."""
    chain = [f"m{i}" for i in range(31)]
    messages = [
        _facts(chain[i], chain[i - 1] if i % 3 else None, tuple(chain[max(0, i - 2) : i]))
        for i in dict.fromkeys(order)
    ]
    threads = ThreadMap()
    for facts in messages:
        threads.thread(facts, subject_fallback=False)
    expected = _planned(messages)
    ours = {facts.message_id: threads.conversation_of(facts.message_id) for facts in messages}
    assert ours == expected


def test_a_known_persons_address_in_the_references_is_not_a_relation() -> None:
    """Exmh's ``Message from Dana <dana@globex.example> ...``: a client is no Message-ID.

    Two unrelated replies to the same client would otherwise share the "ghost" id
    dana@globex.example and become one conversation.
    """
    dana = Address("dana@globex.example", "Dana")
    first, second = (
        replace(
            _facts(f"reply-{n}@acme.example", f"request-{n}@globex.example"),
            sender=Address("alice@acme.example"),
            to=(dana,),
            references=("dana@globex.example",),
        )
        for n in (1, 2)
    )
    assert (
        _thread([first, second])["reply-1@acme.example"]
        == _thread([first, second])["reply-2@acme.example"]
    )  # read literally, the shared address joins them
    cleaned = [without_known_people(facts, rules()) for facts in (first, second)]
    assert cleaned[0].references == () and cleaned[0].in_reply_to == "request-1@globex.example"
    threads = _thread(cleaned)
    assert threads["reply-1@acme.example"] != threads["reply-2@acme.example"]


def test_an_unknown_persons_address_stays_a_relation() -> None:
    """An address of nobody the rules know (no team, no account) is kept, as notmuch does."""
    facts = replace(
        _facts("reply@lists.example", "parent@lists.example"),
        sender=Address("someone@lists.example"),
        to=(Address("bob@elsewhere.example"),),
        references=("bob@elsewhere.example",),
    )
    assert without_known_people(facts, rules()) is facts
