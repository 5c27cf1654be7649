"""Hostile threading headers: self-references, cycles, forged parents, any arrival order.

Threading by headers alone must end in the connected components of the Message-ID
graph whatever the order the messages arrive in, and each conversation must evaluate.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import MessageFacts
from sla_daemon.core.threads import ThreadMap, related_ids
from tests.unit.builders import NOW, client_mail, rules, team_reply

_IDS = st.sampled_from([f"id{n}@x.example" for n in range(12)])


@st.composite
def _messages(draw: st.DrawFn) -> list[MessageFacts]:
    """Up to 12 messages with distinct ids, whose relations name any id, themselves included."""
    ids = draw(st.lists(_IDS, min_size=1, max_size=12, unique=True))
    messages = []
    for index, message_id in enumerate(ids):
        parent = draw(st.one_of(st.none(), _IDS))
        references = tuple(draw(st.lists(_IDS, max_size=6)))
        subject = draw(st.sampled_from(["Help", "Re: Help", "Fwd: Re: help", "", "AW: [x] Help"]))
        if draw(st.booleans()):
            facts = client_mail(message_id, hours_ago=index + 1, subject=subject)
        else:
            facts = team_reply(message_id, hours_ago=index + 1, parent="p@x", subject=subject)
        messages.append(replace(facts, in_reply_to=parent, references=references))
    return messages


def _components(messages: list[MessageFacts]) -> set[frozenset[str]]:
    """The stored ids grouped by the undirected graph of every id each message names."""
    group: dict[str, str] = {}

    def find(node: str) -> str:
        while group.setdefault(node, node) != node:
            node = group[node]
        return node

    for facts in messages:
        for other in related_ids(facts):
            group[find(other)] = find(facts.message_id)
    grouped: dict[str, set[str]] = {}
    for facts in messages:
        grouped.setdefault(find(facts.message_id), set()).add(facts.message_id)
    return {frozenset(ids) for ids in grouped.values()}


def _thread(messages: list[MessageFacts], *, subject_fallback: bool) -> dict[str, set[str]]:
    threads = ThreadMap()
    for facts in messages:
        threads.thread(facts, subject_fallback=subject_fallback, rules=rules())
    conversations: dict[str, set[str]] = {}
    for facts in messages:
        conversation = threads.conversation_of(facts.message_id)
        assert conversation is not None
        conversations.setdefault(conversation, set()).add(facts.message_id)
    return conversations


@settings(max_examples=200, deadline=None)
@given(messages=_messages(), order=st.randoms(use_true_random=False))
def test_header_threading_is_the_id_graphs_components_in_any_order(
    messages: list[MessageFacts], order: st.Random
) -> None:
    """Any arrival order gives the same conversations: the id graph's components."""
    shuffled = list(messages)
    order.shuffle(shuffled)
    conversations = _thread(shuffled, subject_fallback=False)
    assert {frozenset(ids) for ids in conversations.values()} == _components(messages)


@settings(max_examples=150, deadline=None)
@given(messages=_messages())
def test_every_conversation_of_hostile_headers_evaluates(messages: list[MessageFacts]) -> None:
    """With the subject fallback on, every conversation formed evaluates without error."""
    by_id = {facts.message_id: facts for facts in messages}
    for conversation, ids in _thread(messages, subject_fallback=True).items():
        history = [by_id[message_id] for message_id in ids]
        evaluation = evaluate(conversation, history, rules(), {}, NOW + timedelta(days=3))
        assert evaluation.status.id == conversation
