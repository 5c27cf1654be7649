"""Starting from stored conversation summaries (schema 8) over a real SQLite store.

A start keeps every conversation whose summary still stands and evaluates the others:
those changed since (journal), due, or made under other rules or at a later time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sla_daemon.adapters.store import Store
from sla_daemon.conversation_counts import ConversationCounts
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import ClockName, Rules
from sla_daemon.evaluation_cache import EvaluationCache, Refresh
from tests.unit.builders import GLOBEX, NOW, client_mail, rules, team_reply
from tests.unit.test_evaluation_cache import CountingReader, _store

RULES = "rules-1"
"""The fingerprint the tests' rules stand for."""
WARN_AT = NOW - timedelta(hours=1) + timedelta(hours=24)
"""The open request's first action-plan warning: its check time."""


def _start(
    store: Store, at: datetime, fingerprint: str = RULES, rules_: Rules | None = None
) -> tuple[EvaluationCache, list[str], Refresh]:
    """A new cache's first refresh at ``at``: the cache, what it loaded, the refresh."""
    cache, reader = EvaluationCache(fingerprint), CountingReader(store)
    refresh = cache.refresh(reader, rules_ or rules(), at)
    return cache, sorted(reader.loaded), refresh


def _run(store: Store, at: datetime) -> list[str]:
    """A start whose decisions are recorded, then settled; what it loaded."""
    cache, loaded, refresh = _start(store, at)
    cache.settle(store, refresh, keep_summaries=True)
    return loaded


def test_a_start_evaluates_nothing_its_summaries_stand_for(tmp_path: Path) -> None:
    """A second start loads nothing, yet holds every conversation as a fresh evaluation would.

    Its evaluations, in the store's order, have the status and headline a fresh
    evaluation gives at that time (the ledger aside).
    """
    store = _store(tmp_path)
    assert _run(store, NOW) == ["c-news", "c-open", "c-planned"]
    later = NOW + timedelta(minutes=5)
    cache, loaded, refresh = _start(store, later)
    assert loaded == [] and refresh.evaluated == []
    evaluations = cache.evaluations()
    assert [e.status.id for e in evaluations] == store.conversation_ids()
    for evaluation in evaluations:
        cid = evaluation.status.id
        fresh = evaluate(
            cid, store.conversation_messages(cid), rules(), store.notices_for(cid), later
        )
        assert evaluation.status == fresh.status
        assert evaluation.headline == fresh.headline
    assert cache.next_check_at() == WARN_AT


def test_a_conversation_changed_after_its_summary_is_evaluated(tmp_path: Path) -> None:
    """New mail after the summary puts its conversation in the journal: it is evaluated."""
    store = _store(tmp_path)
    _run(store, NOW)
    store.add_message(team_reply("r1", 0, "open"), "c-open", NOW)
    assert _start(store, NOW)[1] == ["c-open"]


def test_summaries_made_under_other_rules_are_not_used(tmp_path: Path) -> None:
    """A start under another fingerprint (a changed configuration) evaluates everything."""
    store = _store(tmp_path)
    _run(store, NOW)
    assert _start(store, NOW, fingerprint="rules-2")[1] == ["c-news", "c-open", "c-planned"]


def test_a_conversation_whose_check_time_came_is_evaluated(tmp_path: Path) -> None:
    """At the open request's warning time a start evaluates it, and it decides the warning."""
    store = _store(tmp_path)
    _run(store, NOW)
    assert _start(store, WARN_AT - timedelta(seconds=1))[1] == []
    _, loaded, refresh = _start(store, WARN_AT)
    assert loaded == ["c-open"]
    assert "warn-86400s" in [d.level for d in refresh.evaluated[0].decisions]


def test_a_clock_earlier_than_the_summaries_evaluates_them(tmp_path: Path) -> None:
    """A summary made later than now (the clock went back) does not stand."""
    store = _store(tmp_path)
    _run(store, NOW)
    assert _start(store, NOW - timedelta(minutes=1))[1] == ["c-news", "c-open", "c-planned"]


def test_a_conversation_waiting_on_the_client_is_kept_as_between_cycles(tmp_path: Path) -> None:
    """Waiting on the client is kept from its summary, as a running daemon keeps it.

    Its paused action-plan clock has no check time, so between cycles the daemon keeps
    its evaluation until the client writes; a start does the same, and holds the state
    and the paused due time of that evaluation.
    """
    store = Store(tmp_path / "s.sqlite3")
    store.add_message(client_mail("ask", 5), "c-wait", NOW)
    store.add_message(team_reply("w", 4, "ask", keywords=("$WaitingOnClient",)), "c-wait", NOW)
    assert _run(store, NOW) == ["c-wait"]
    cache, loaded, _ = _start(store, NOW + timedelta(minutes=1))
    assert loaded == []
    kept = cache.evaluations()[0].status
    made = evaluate("c-wait", store.conversation_messages("c-wait"), rules(), {}, NOW).status
    assert (kept.state, kept.action_plan_due) == (made.state, made.action_plan_due)


def test_a_dry_run_writes_no_summary_and_drops_what_it_evaluated(tmp_path: Path) -> None:
    """A dry run keeps no summary, and deletes those of the conversations it evaluated.

    It records no decisions, so a later start must evaluate them again.
    """
    store = _store(tmp_path)
    cache, _, refresh = _start(store, NOW)
    cache.settle(store, refresh, keep_summaries=False)
    assert store.summaries(RULES) == []
    assert store.changed_conversations()[1] == []
    _run(store, NOW)
    store.add_message(team_reply("r1", 0, "open"), "c-open", NOW)
    cache, loaded, refresh = _start(store, NOW)
    assert loaded == ["c-open"]
    cache.settle(store, refresh, keep_summaries=False)
    assert sorted(s.conversation_id for s in store.summaries(RULES)) == ["c-news", "c-planned"]
    assert _start(store, NOW)[1] == ["c-open"]


def test_a_crash_before_the_summaries_leaves_the_journal(tmp_path: Path) -> None:
    """A crash before ``settle`` leaves the journal: the next start evaluates the change.

    The decisions may be recorded, but no summary was kept and the journal still names it.
    """
    store = _store(tmp_path)
    _run(store, NOW)
    store.add_message(team_reply("r1", 0, "open"), "c-open", NOW)
    assert _start(store, NOW)[1] == ["c-open"]  # no settle: the process ends here
    assert _start(store, NOW)[1] == ["c-open"]


def test_a_merged_conversation_summary_is_not_used(tmp_path: Path) -> None:
    """After a merge only the survivor is evaluated; the merged one's summary is deleted.

    The merged conversation is not among the start's evaluations either.
    """
    store = _store(tmp_path)
    _run(store, NOW)
    store.merge_conversation("c-news", into="c-open")
    cache, loaded, refresh = _start(store, NOW)
    assert loaded == ["c-open"]
    assert {e.status.id for e in cache.evaluations()} == {"c-open", "c-planned"}
    cache.settle(store, refresh, keep_summaries=True)
    assert {s.conversation_id for s in store.summaries(RULES)} == {"c-open", "c-planned"}


def test_check_ins_from_summaries_equal_those_of_a_full_evaluation(tmp_path: Path) -> None:
    """Check-ins from kept summaries equal those of a start that evaluates everything.

    They come from the summaries' headlines and contacts, without evaluating.
    """
    checked = replace(rules(), accounts=(replace(GLOBEX, check_in_every=timedelta(hours=12)),))
    store = _store(tmp_path)
    first = EvaluationCache(RULES)
    first.settle(store, first.refresh(store, checked, NOW), keep_summaries=True)
    at = NOW + timedelta(hours=4)
    kept, loaded, _ = _start(store, at, rules_=checked)
    assert loaded == []
    full = EvaluationCache()
    full.refresh(store, checked, at)
    expected = full.check_ins(checked, at)
    assert expected and kept.check_ins(checked, at) == expected


def test_the_counts_a_start_keeps_follow_every_change_after_it(tmp_path: Path) -> None:
    """A start's counts (from its summaries) stay those of its evaluations at every refresh.

    Through new mail, a merge, and the open request's breach, the counts the metrics
    show equal a count of every evaluation made from scratch.
    """
    store = _store(tmp_path)
    _run(store, NOW)
    cache, _, _ = _start(store, NOW + timedelta(minutes=1))
    assert cache.counts() == ConversationCounts.of(cache.evaluations())
    assert sum(cache.counts().by_state().values()) == 2  # the newsletter promises nothing
    store.add_message(client_mail("more", 0, in_reply_to="planned"), "c-planned", NOW)
    steps = [
        NOW + timedelta(minutes=2),
        NOW + timedelta(minutes=3),
        NOW + timedelta(hours=50),
    ]
    for step, at in enumerate(steps):
        if step == 1:
            store.merge_conversation("c-news", into="c-open")
        cache.refresh(store, rules(), at)
        assert cache.counts() == ConversationCounts.of(cache.evaluations()), at
    # Both requests left unanswered past their deadlines: the last step counted breaches.
    assert cache.counts().by_breach() == {
        (ClockName.ACKNOWLEDGE, "Globex"): 2,
        (ClockName.ACTION_PLAN, "Globex"): 2,
    }
