"""The evaluation cache over a real SQLite store: what each refresh loads, and schema 6."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sla_daemon.adapters.schema import MIGRATIONS
from sla_daemon.adapters.store import SCHEMA_VERSION, Store
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import Address, MessageFacts, NoticeKind, SentNotice
from sla_daemon.evaluation_cache import EvaluationCache
from sla_daemon.summary_codec import ConversationSummary
from tests.unit.builders import NOW, client_mail, rules, team_reply


class CountingReader:
    """The real store, noting which conversations each refresh loads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.loaded: list[str] = []

    def conversation_ids(self) -> list[str]:
        """The store's conversations."""
        return self.store.conversation_ids()

    def conversation_messages(self, conversation_id: str) -> list[MessageFacts]:
        """The store's messages of one conversation, noted as loaded."""
        self.loaded.append(conversation_id)
        return self.store.conversation_messages(conversation_id)

    def notices_for(self, conversation_id: str) -> dict[str, SentNotice]:
        """The store's notices of one conversation."""
        return self.store.notices_for(conversation_id)

    def changed_conversations(self) -> tuple[int, list[str]]:
        """The store's journal."""
        return self.store.changed_conversations()

    def summaries(self, rules_fingerprint: str) -> list[ConversationSummary]:
        """The store's summaries made under ``rules_fingerprint``."""
        return self.store.summaries(rules_fingerprint)


def _newsletter(message_id: str) -> MessageFacts:
    """Mail from a sender outside every account: a conversation that promises nothing."""
    facts = client_mail(message_id, 30, subject="Our news")
    return replace(facts, sender=Address("news@vendor.example"))


def _store(tmp_path: Path) -> Store:
    """An open request (plan due in 47h), one with its action plan, and a newsletter."""
    store = Store(tmp_path / "s.sqlite3")
    store.add_message(client_mail("open", 1), "c-open", NOW)
    store.add_message(client_mail("planned", 10, subject="Refund"), "c-planned", NOW)
    store.add_message(
        team_reply("plan", 9, "planned", body="Action plan: refund on Monday."), "c-planned", NOW
    )
    store.add_message(_newsletter("news"), "c-news", NOW)
    return store


def _refreshed(cache: EvaluationCache, store: Store, at: datetime) -> list[str]:
    """Refresh at ``at``, forget the journal as the service does; the loaded conversations."""
    reader = CountingReader(store)
    refresh = cache.refresh(reader, rules(), at)
    store.forget_changes(refresh.journal_upto)
    return reader.loaded


def test_first_refresh_loads_all_and_an_idle_one_loads_nothing(tmp_path: Path) -> None:
    """Closed conversations are loaded once, on the first refresh; an idle refresh loads none.

    The cache still holds every conversation's evaluation for the status and the metrics.
    """
    store, cache = _store(tmp_path), EvaluationCache()
    assert sorted(_refreshed(cache, store, NOW)) == ["c-news", "c-open", "c-planned"]
    assert _refreshed(cache, store, NOW + timedelta(minutes=5)) == []
    assert {e.status.id for e in cache.evaluations()} == {"c-news", "c-open", "c-planned"}


def test_a_conversation_is_loaded_when_its_check_time_comes(tmp_path: Path) -> None:
    """Only the open request is loaded at its warning time (24h before the plan is due)."""
    store, cache = _store(tmp_path), EvaluationCache()
    _refreshed(cache, store, NOW)
    warn_at = NOW - timedelta(hours=1) + timedelta(hours=24)
    assert cache.next_check_at() == warn_at
    assert _refreshed(cache, store, warn_at - timedelta(seconds=1)) == []
    reader = CountingReader(store)
    refresh = cache.refresh(reader, rules(), warn_at)
    assert reader.loaded == ["c-open"]
    [evaluation] = refresh.evaluated
    assert "warn-86400s" in [d.level for d in evaluation.decisions]


def test_changed_conversations_are_loaded_again(tmp_path: Path) -> None:
    """A new message, a decided notice and a keyword change each bring their conversation back."""
    store, cache = _store(tmp_path), EvaluationCache()
    _refreshed(cache, store, NOW)
    store.add_message(team_reply("r1", 0, "open"), "c-open", NOW)
    assert _refreshed(cache, store, NOW) == ["c-open"]
    store.decide("k", "c-planned", NoticeKind.WARNING, ("a@acme.example",), NOW, payload=b"x")
    assert _refreshed(cache, store, NOW) == ["c-planned"]
    facts = store.message("news")
    assert facts is not None
    store.replace_facts(replace(facts, keywords=("$Seen",)))
    assert _refreshed(cache, store, NOW) == ["c-news"]
    store.decide("digest", "", NoticeKind.DIGEST, ("a@acme.example",), NOW, payload=b"x")
    assert _refreshed(cache, store, NOW) == []  # a notice of no conversation changes none


def test_a_merged_conversation_leaves_the_cache(tmp_path: Path) -> None:
    """After a merge the surviving conversation is evaluated again and the other is gone."""
    store, cache = _store(tmp_path), EvaluationCache()
    _refreshed(cache, store, NOW)
    store.merge_conversation("c-news", into="c-open")
    assert sorted(_refreshed(cache, store, NOW)) == ["c-news", "c-open"]
    assert {e.status.id for e in cache.evaluations()} == {"c-open", "c-planned"}


def test_incremental_evaluations_equal_a_fresh_evaluation(tmp_path: Path) -> None:
    """Each conversation evaluated in a refresh is what ``evaluate`` gives from the store."""
    store, cache = _store(tmp_path), EvaluationCache()
    _refreshed(cache, store, NOW)
    store.add_message(client_mail("more", 0, in_reply_to="open"), "c-open", NOW)
    later = NOW + timedelta(hours=23)
    refresh = cache.refresh(store, rules(), later)
    expected = evaluate(
        "c-open", store.conversation_messages("c-open"), rules(), store.notices_for("c-open"), later
    )
    assert refresh.evaluated == [expected]


def test_mail_stamped_after_now_is_evaluated_when_it_arrives(tmp_path: Path) -> None:
    """A stored message dated in the future sets a check time: it counts once its time comes."""
    store, cache = Store(tmp_path / "s.sqlite3"), EvaluationCache()
    future = client_mail("soon", -2)  # two hours after NOW
    store.add_message(future, "c-soon", NOW)
    _refreshed(cache, store, NOW)
    assert cache.evaluations()[0].status.cycle == 0
    assert cache.next_check_at() == future.arrived_at
    assert _refreshed(cache, store, future.arrived_at) == ["c-soon"]
    assert cache.evaluations()[0].status.cycle == 1


def test_schema_5_database_migrates_to_the_change_journal(tmp_path: Path) -> None:
    """A schema-5 database opens at schema 6; its writes from then on fill the journal.

    A merge notes both conversations; the journal is forgotten up to the position read.
    """
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:5]:
        db.executescript(migration)
    db.execute("PRAGMA user_version = 5")
    db.execute(
        "INSERT INTO messages VALUES ('m0', 'c-0', ?, '{}', ?)", (NOW.isoformat(), NOW.isoformat())
    )
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 6
    assert store.changed_conversations() == (0, [])
    store.add_message(client_mail("m1", 1), "c-1", NOW)
    store.merge_conversation("c-0", into="c-1")
    upto, changed = store.changed_conversations()
    assert sorted(changed) == ["c-0", "c-1"]
    store.add_message(client_mail("m2", 1), "c-2", NOW)
    store.forget_changes(upto)
    assert store.changed_conversations()[1] == ["c-2"]


def _grouped_ids(store: Store) -> list[str]:
    """The conversations as grouping every message lists them, oldest activity first."""
    rows = store._db.execute(
        "SELECT conversation_id FROM messages GROUP BY conversation_id "
        "ORDER BY MIN(arrived_at), conversation_id"
    )
    return [row[0] for row in rows]


def test_schema_8_database_migrates_to_the_ordered_conversations(tmp_path: Path) -> None:
    """A schema-8 database opens with its conversations listed, oldest activity first.

    After the migration, stored messages, a merge and a changed arrival keep the list
    equal to what grouping every message gives; a conversation merged away is gone.
    """
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:8]:
        db.executescript(migration)
    db.execute("PRAGMA user_version = 8")
    for message_id, conversation_id, hours_ago in (("m0", "c-0", 3), ("m1", "c-1", 5)):
        at = (NOW - timedelta(hours=hours_ago)).isoformat()
        db.execute(
            "INSERT INTO messages VALUES (?, ?, ?, '{}', ?)", (message_id, conversation_id, at, at)
        )
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION >= 9
    assert store.conversation_ids() == ["c-1", "c-0"] == _grouped_ids(store)
    store.add_message(client_mail("m2", 9), "c-2", NOW)
    store.add_message(client_mail("m3", 1), "c-1", NOW)
    assert store.conversation_ids() == ["c-2", "c-1", "c-0"] == _grouped_ids(store)
    store.merge_conversation("c-2", into="c-0")
    assert store.conversation_ids() == ["c-0", "c-1"] == _grouped_ids(store)
    store._db.execute(
        "UPDATE messages SET arrived_at = ? WHERE message_id = 'm2'", (NOW.isoformat(),)
    )
    assert store.conversation_ids() == ["c-1", "c-0"] == _grouped_ids(store)
    store._db.execute("DELETE FROM messages WHERE conversation_id = 'c-1'")
    assert store.conversation_ids() == ["c-0"] == _grouped_ids(store)
