"""The normalized-subject fallback: the rule in the core, its index in the store, its log."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import structlog

from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.schema import MIGRATIONS, SCHEMA_VERSION
from sla_daemon.adapters.store import Store
from sla_daemon.clock import FixedClock
from sla_daemon.core.model import Address, FolderKind, MessageFacts
from sla_daemon.core.threads import (
    SUBJECT_WINDOW,
    SubjectCandidate,
    ThreadMap,
    conversation_id_for_root,
    normalize_subject,
    plan_threading,
    subject_key,
)
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor
from sla_daemon.service import SlaService
from tests.mailbuild import build_mail
from tests.unit.builders import NOW, TEAM, rules

CLIENT = "dana@globex.example"


def _facts(
    message_id: str,
    subject: str,
    *,
    sender: str = CLIENT,
    to: tuple[str, ...] = ("support@acme.example",),
    at: datetime = NOW,
    in_reply_to: str | None = None,
) -> MessageFacts:
    return MessageFacts(
        message_id=message_id,
        arrived_at=at,
        subject=subject,
        sender=Address(sender),
        to=tuple(Address(a) for a in to),
        in_reply_to=in_reply_to,
        references=(in_reply_to,) if in_reply_to else (),
    )


def _candidate(
    conversation_id: str = "c-old",
    participants: tuple[str, ...] = (CLIENT, "support@acme.example"),
    last_at: datetime = NOW - timedelta(days=1),
) -> SubjectCandidate:
    return SubjectCandidate(conversation_id, frozenset(participants), last_at)


# -- normalize_subject and subject_key -----------------------------------------------------


@pytest.mark.parametrize(
    ("subject", "normalized"),
    [
        ("Server down", "server down"),
        ("RE: Server down", "server down"),
        ("Re: RE: re:Server down", "server down"),
        ("Fwd: FW: Fw: Server down", "server down"),
        ("AW: SV: TR: Antw: WG: RIF: Odp: Server down", "server down"),
        ("Re[2]: Re(3): Re^4: Server down", "server down"),
        ("TR : Server down", "server down"),
        ("[Ticket #123] Re: Server down", "server down"),
        ("Re: [linux-mips] Server down", "server down"),
        ("Re: [Action Plan] Server down", "server down"),
        ("Server down [Ticket #123]", "server down"),
        ("Server down (fwd)", "server down"),
        ("  Server \t\n  DOWN  ", "server down"),
        ("Re: Server down: again", "server down: again"),
        ("Reply needed", "reply needed"),
        ("Refund request", "refund request"),
        ("", ""),
    ],
)
def test_normalize_subject(subject: str, normalized: str) -> None:
    """Prefixes (repeated, numbered, spaced) and tags go; case and spaces are folded."""
    assert normalize_subject(subject) == normalized


@pytest.mark.parametrize(
    "subject", ["", "Re:", "Hello", "Re: hello!", "(no subject)", "Question", "Re: ok", "???"]
)
def test_generic_subjects_are_not_keys(subject: str) -> None:
    """Empty, generic or too short subjects never join anything."""
    assert subject_key(subject) is None


# -- the rule -------------------------------------------------------------------------------


def test_a_reply_that_lost_its_headers_joins_by_subject() -> None:
    """No known relation, same subject, the client in both, 1 day apart: joined."""
    plan = plan_threading(_facts("new", "Re: Server down"), {}, [_candidate()], rules())
    assert plan.conversation_id == "c-old"
    assert plan.by_subject
    assert plan.merge == ()
    assert plan.link_ids == ("new",)
    assert "server down" in plan.reason and CLIENT in plan.reason


def test_header_relations_win_over_the_subject() -> None:
    """A message whose In-Reply-To is known goes there, whatever the subject says."""
    facts = _facts("new", "Re: Server down", in_reply_to="parent")
    plan = plan_threading(facts, {"parent": "c-parent"}, [_candidate()], rules())
    assert (plan.conversation_id, plan.by_subject) == ("c-parent", False)


def test_a_reply_that_names_a_parent_is_not_joined_by_subject() -> None:
    """A reply to an unknown parent kept its headers: the ghost parent threads it."""
    facts = _facts("new", "Re: Server down", in_reply_to="ghost")
    plan = plan_threading(facts, {}, [_candidate()], rules())
    assert not plan.by_subject
    assert plan.link_ids == ("new", "ghost")


def test_a_new_request_reusing_a_subject_is_not_joined() -> None:
    """Without a reply prefix the message is a new request, even with the same subject."""
    plan = plan_threading(_facts("new", "Server down"), {}, [_candidate()], rules())
    assert not plan.by_subject


def test_only_the_team_in_common_is_no_overlap() -> None:
    """Two clients writing to the shared inbox with the same subject stay apart."""
    facts = _facts("new", "Server down", sender="eve@initech.example")
    plan = plan_threading(facts, {}, [_candidate()], rules())
    assert not plan.by_subject
    assert plan.conversation_id == conversation_id_for_root("new")


def test_without_rules_every_address_counts() -> None:
    """Without rules nobody is the team, so the shared inbox is an overlap (tests, bulk)."""
    facts = _facts("new", "Re: Server down", sender="eve@initech.example")
    assert plan_threading(facts, {}, [_candidate()]).by_subject


def test_outside_the_window_nothing_joins() -> None:
    """The candidate's last message must be within 14 days (either way)."""
    assert timedelta(days=14) == SUBJECT_WINDOW
    for gap in (SUBJECT_WINDOW + timedelta(seconds=1), -SUBJECT_WINDOW - timedelta(seconds=1)):
        candidate = _candidate(last_at=NOW - gap)
        reply = _facts("n", "Re: Server down")
        assert not plan_threading(reply, {}, [candidate], rules()).by_subject
    edge = _candidate(last_at=NOW - SUBJECT_WINDOW)
    assert plan_threading(_facts("n", "Re: Server down"), {}, [edge], rules()).by_subject


def test_a_generic_subject_never_joins() -> None:
    """'Hello' is too common to say anything."""
    plan = plan_threading(_facts("n", "Re: Hello"), {}, [_candidate()], rules())
    assert not plan.by_subject


def test_the_closest_candidate_in_time_wins() -> None:
    """Of several qualifying conversations, the most recently active near the message."""
    far = _candidate("c-a", last_at=NOW - timedelta(days=5))
    near = _candidate("c-b", last_at=NOW - timedelta(hours=2))
    plan = plan_threading(_facts("n", "Re: Server down"), {}, [far, near], rules())
    assert plan.conversation_id == "c-b"


# -- ThreadMap ------------------------------------------------------------------------------


def test_thread_map_joins_by_subject_only_when_asked() -> None:
    """``subject_fallback=False`` is header threading alone."""
    first = _facts("a", "Invoice 2026-11", at=NOW - timedelta(days=1))
    second = _facts("b", "RE: invoice 2026-11")
    for fallback, joined in ((True, True), (False, False)):
        threads = ThreadMap()
        threads.thread(first, subject_fallback=fallback)
        plan = threads.thread(second, subject_fallback=fallback)
        assert plan.by_subject is joined
        assert (threads.conversation_of("a") == threads.conversation_of("b")) is joined


def test_thread_map_keeps_the_index_through_merges() -> None:
    """After a merge, the subject and participants of both threads point at the survivor."""
    threads = ThreadMap()
    threads.thread(_facts("reply", "Re: Server down", in_reply_to="root", at=NOW))
    threads.thread(_facts("other", "Printer jam", sender="bob@globex.example", at=NOW))
    threads.thread(
        _facts("root", "Printer jam", sender="bob@globex.example", at=NOW, in_reply_to="other")
    )
    # "root" links the two threads: one conversation, filed under both subjects.
    merged = threads.conversation_of("reply")
    assert merged == threads.conversation_of("other")
    [candidate] = threads.subject_candidates(_facts("x", "server down"))
    assert candidate.conversation_id == merged
    assert {CLIENT, "bob@globex.example"} <= candidate.participants


# -- the store ------------------------------------------------------------------------------


def _store_message(store: Store, facts: MessageFacts, fallback: bool = True) -> str:
    """What the service does with a new message (see SlaService._store_message)."""
    links = store.conversation_links([facts.message_id, *facts.references])
    candidates = store.subject_candidates(facts) if fallback and not links else []
    plan = plan_threading(facts, links, candidates, rules())
    for other in plan.merge:
        store.merge_conversation(other, into=plan.conversation_id)
    store.add_message(facts, plan.conversation_id, NOW)
    store.link(plan.link_ids, plan.conversation_id)
    return plan.conversation_id


def test_store_files_conversations_by_subject(tmp_path: Path) -> None:
    """Candidates carry every participant and the last arrival; generic subjects none."""
    store = Store(tmp_path / "s.sqlite3")
    first = _store_message(store, _facts("a", "Server down", at=NOW - timedelta(days=2)))
    _store_message(
        store,
        _facts("b", "Re: Server down", sender="support@acme.example", to=(CLIENT,), at=NOW),
    )
    [candidate] = store.subject_candidates(_facts("n", "FW: server DOWN"))
    assert candidate.conversation_id == first
    assert candidate.participants == {CLIENT, "support@acme.example"}
    assert candidate.last_at == NOW
    assert store.subject_candidates(_facts("n", "Hello")) == []
    late = _facts("n", "server down", at=NOW + SUBJECT_WINDOW + timedelta(days=1))
    assert store.subject_candidates(late) == []


def test_store_moves_the_index_on_merge(tmp_path: Path) -> None:
    """A merged conversation's subjects and participants go to the surviving one."""
    store = Store(tmp_path / "s.sqlite3")
    orphan = _store_message(store, _facts("reply", "Re: Server down", in_reply_to="root"))
    _store_message(store, _facts("p", "Printer jam", sender="bob@globex.example"))
    survivor = _store_message(
        store, _facts("root", "Printer jam", sender="bob@globex.example", in_reply_to="p")
    )
    assert orphan != survivor
    [candidate] = store.subject_candidates(_facts("x", "server down"))
    assert candidate.conversation_id == survivor
    assert {CLIENT, "bob@globex.example"} <= candidate.participants
    rows = store._db.execute(
        "SELECT COUNT(*) FROM conversation_subjects WHERE conversation_id = ?", (orphan,)
    ).fetchone()
    assert rows == (0,)


def test_migration_indexes_messages_stored_before_it(tmp_path: Path) -> None:
    """A database of schema 1 gets its stored messages filed under their subjects."""
    path = tmp_path / "old.sqlite3"
    store = Store(path)
    conversation = _store_message(store, _facts("a", "Server down"))
    store.close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("DROP TABLE conversation_subjects")
    db.execute("DROP TABLE conversation_participants")
    version = next(
        n for n, sql in enumerate(MIGRATIONS, start=1) if "conversation_subjects (" in sql
    )
    db.execute(f"PRAGMA user_version = {version - 1}")
    db.close()

    reopened = Store(path)
    assert reopened.schema_version == SCHEMA_VERSION
    [candidate] = reopened.subject_candidates(_facts("n", "Re: server down"))
    assert candidate.conversation_id == conversation
    assert CLIENT in candidate.participants


# -- the service ----------------------------------------------------------------------------


def _raw(message_id: str, subject: str, at: datetime, sender: str = CLIENT) -> bytes:
    return build_mail(message_id, sender=sender, subject=subject, at=at).as_bytes()


class _Source:
    name = "support"

    def __init__(self, messages: list[tuple[bytes, datetime]]) -> None:
        self.messages = messages

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        fetched = tuple(
            FetchedMessage(uid, raw, at) for uid, (raw, at) in enumerate(self.messages, 1)
        )
        yield FolderBatch(self.name, "INBOX", FolderKind.INBOX, 7, len(fetched), fetched)

    def watch(self, wake: object, stop: object) -> None:
        """Nothing to watch."""

    def close(self) -> None:
        """Nothing to release."""


class _Sender:
    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Drop it."""
        return {}


def test_service_logs_a_join_by_subject(tmp_path: Path) -> None:
    """A client's second mail without headers joins the first and says why."""
    first_at, second_at = NOW - timedelta(days=3), NOW - timedelta(hours=1)
    source = _Source(
        [
            (_raw("m1@globex.example", "Server down", first_at), first_at),
            (_raw("m2@globex.example", "RE: Server down", second_at), second_at),
            (_raw("m3@initech.example", "Server down", second_at, "eve@initech.example"), NOW),
        ]
    )
    store = Store(tmp_path / "s.sqlite3")
    service = SlaService(
        store=store,
        sources=[source],
        parse=parse_message,
        is_malformed=lambda exc: exc.reason if isinstance(exc, MalformedMessage) else None,
        renderer=NoticeRenderer(None, TEAM, "UTC"),
        sender=_Sender(),
        rules=rules(),
        clock=FixedClock(NOW),
        dry_run=True,
    )
    with structlog.testing.capture_logs() as logs:
        service.run_cycle()
    joined = [entry for entry in logs if entry["event"] == "conversation.joined_by_subject"]
    assert [entry["message_id"] for entry in joined] == ["m2@globex.example"]
    assert "server down" in joined[0]["reason"]
    conversation = store.conversation_links(["m1@globex.example"])["m1@globex.example"]
    assert joined[0]["conversation"] == conversation
    links = store.conversation_links(["m2@globex.example", "m3@initech.example"])
    assert links["m2@globex.example"] == conversation
    assert links["m3@initech.example"] != conversation
