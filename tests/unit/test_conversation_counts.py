"""Conversation counts: by state and account, breaches by clock, kept up to date in steps."""

from __future__ import annotations

from datetime import UTC, datetime

from sla_daemon.conversation_counts import ConversationCounts
from sla_daemon.core.model import ClockName, ConversationState, Headline

OPENED = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ACK = ClockName.ACKNOWLEDGE
PLAN = ClockName.ACTION_PLAN


def _headline(
    state: ConversationState,
    account: str | None,
    breaches: tuple[ClockName, ...] = (),
    cycle: int = 1,
) -> Headline:
    return Headline(cycle, state, account, OPENED, breaches)


def test_counts_by_state_and_account_leave_out_conversations_without_a_request() -> None:
    """Cycle-0 conversations (no client request, no promise) are in neither count."""
    counts = ConversationCounts()
    counts.add(_headline(ConversationState.AWAITING_ACK, "Globex", (ACK,)))
    counts.add(_headline(ConversationState.AWAITING_ACK, "Globex", (ACK, PLAN), cycle=2))
    counts.add(_headline(ConversationState.CLOSED, None))
    counts.add(_headline(ConversationState.AWAITING_ACK, "Globex", (ACK,), cycle=0))
    assert counts.by_state() == {
        (ConversationState.AWAITING_ACK, "Globex"): 2,
        (ConversationState.CLOSED, None): 1,
    }
    assert counts.by_breach() == {(ACK, "Globex"): 2, (PLAN, "Globex"): 1}


def test_removing_what_was_added_leaves_the_counts_as_before() -> None:
    """``remove`` undoes one ``add``; a count that reaches 0 is gone, not shown as 0."""
    counts = ConversationCounts()
    kept = _headline(ConversationState.AWAITING_ACTION_PLAN, "Globex")
    counts.add(kept)
    before = counts.by_state()
    breached = _headline(ConversationState.AWAITING_ACK, "Initech", (ACK,))
    counts.add(breached)
    counts.add(breached)
    counts.remove(breached)
    assert counts.by_breach() == {(ACK, "Initech"): 1}
    counts.remove(breached)
    assert counts.by_state() == before and counts.by_breach() == {}
    only_kept = ConversationCounts()
    only_kept.add(kept)
    assert counts == only_kept


def test_counting_many_at_once_equals_counting_one_by_one() -> None:
    """``add_all`` (how a start counts its kept summaries) equals an ``add`` of each."""
    headlines = [
        _headline(state, account, breaches, cycle)
        for state in (ConversationState.AWAITING_ACK, ConversationState.CLOSED)
        for account in ("Globex", None)
        for breaches in ((), (ACK,), (ACK, PLAN))
        for cycle in (0, 1, 3)
    ]
    at_once, one_by_one = ConversationCounts(), ConversationCounts()
    at_once.add_all(headlines * 2)
    for headline in headlines * 2:
        one_by_one.add(headline)
    assert at_once == one_by_one
    assert sum(at_once.by_state().values()) == 2 * len([h for h in headlines if h.cycle])
