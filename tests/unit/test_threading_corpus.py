"""Threading against notmuch's answers on its own test corpora (read in place, never copied).

notmuch 0.37 threads by In-Reply-To / References only, as ``plan_threading`` does without
a subject fallback, so the two must agree on which messages share a thread. The messages
are fed through ``plan_threading`` and applied by ``ThreadMap`` the way the service applies
a plan to the store (merge, then link), once in file order and once in reverse, and
compared pair by pair: a pair notmuch puts in one thread must share a conversation
("split" when it does not), and a pair it keeps apart must not ("merge" when it does; a
subject fallback could add those legitimately, so they are counted apart).

Measured on the corpora as shipped, identical in file order and in reverse order:

    corpus     files  messages  threads  pairs together  pairs apart  splits  merges
    broken         4         4        3               1            5       0       0
    default       53        52       24              56        1,270       0       0
    duplicate      9         3        3               0            3       0       0
    lkml         210       176        7           6,177        9,223       0       0
    threading     12        12        3              21           45       0       0

That is 100% agreement on every pair. A Message-ID found in several files (1 in default,
34 in lkml, 6 extra copies in duplicate) is one message, stored once, as the service does.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sla_daemon.adapters.mailparse import parse_message
from sla_daemon.core.model import FolderKind, MessageFacts
from sla_daemon.core.threads import ThreadMap, ids_to_link, plan_threading

pytestmark = pytest.mark.corpus

NOW = datetime(2030, 1, 1, tzinfo=UTC)

# Per corpus: (files, messages, threads, pairs together, pairs apart), as measured above.
CORPORA = {
    "broken": (4, 4, 3, 1, 5),
    "default": (53, 52, 24, 56, 1270),
    "duplicate": (9, 3, 3, 0, 3),
    "lkml": (210, 176, 7, 6177, 9223),
    "threading": (12, 12, 3, 21, 45),
}
ORDERS = ("file order", "reverse order")


def _parse(raw: bytes) -> MessageFacts:
    return parse_message(
        raw,
        mailbox="corpus",
        folder="INBOX",
        folder_kind=FolderKind.INBOX,
        internaldate=None,
        now=NOW,
    )


def _thread(messages: Iterable[MessageFacts]) -> tuple[dict[str, str], Mapping[str, str]]:
    """Store ``messages`` in order; return (Message-ID -> conversation, all links).

    ``ThreadMap`` applies each plan as the service applies it to the store (header
    threading only: notmuch has no subject fallback). A second copy of a Message-ID
    already stored is skipped: it is the same message.
    """
    threads = ThreadMap()
    stored: set[str] = set()
    for facts in messages:
        if facts.message_id in stored:
            continue
        stored.add(facts.message_id)
        threads.thread(facts, subject_fallback=False)
    return threads.links_for(stored), threads.links


def _ordered(messages: Sequence[MessageFacts], order: str) -> list[MessageFacts]:
    return list(messages) if order == "file order" else list(reversed(messages))


def _compare(
    expected: Mapping[str, int], actual: Mapping[str, str]
) -> tuple[int, int, list[tuple[str, str]], list[tuple[str, str]]]:
    """Return (pairs together, pairs apart, splits, merges) of ``actual`` against ``expected``."""
    together_pairs = apart_pairs = 0
    splits = []
    merges = []
    for first, second in itertools.combinations(sorted(expected), 2):
        together = expected[first] == expected[second]
        together_pairs += together
        apart_pairs += not together
        if together and actual[first] != actual[second]:
            splits.append((first, second))
        elif not together and actual[first] == actual[second]:
            merges.append((first, second))
    return together_pairs, apart_pairs, splits, merges


# -- notmuch's EXPECTED_THREADS_*.json -----------------------------------------------------


def _load(corpora_dir: Path, name: str) -> tuple[dict[str, Any], list[MessageFacts]]:
    base = corpora_dir / "threading" / "notmuch"
    oracle_path = base / f"EXPECTED_THREADS_{name}.json"
    if not oracle_path.is_file():
        pytest.skip(f"{oracle_path} is not available")
    oracle = json.loads(oracle_path.read_text(encoding="utf-8"))
    messages = []
    for relative, message_id in oracle["files"].items():
        facts = _parse((base / name / relative).read_bytes())
        assert facts.message_id == message_id, relative
        messages.append(facts)
    return oracle, messages


def test_every_oracle_file_is_checked(corpora_dir: Path) -> None:
    """The corpus files on disk are exactly the ones named here (none missed)."""
    found = sorted(
        path.name.removeprefix("EXPECTED_THREADS_").removesuffix(".json")
        for path in (corpora_dir / "threading" / "notmuch").glob("EXPECTED_THREADS_*.json")
    )
    assert found == sorted(CORPORA)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("name", sorted(CORPORA))
def test_same_thread_membership_agrees_with_notmuch(
    corpora_dir: Path, name: str, order: str
) -> None:
    """Every pair notmuch threads together shares a conversation; no other pair does."""
    oracle, messages = _load(corpora_dir, name)
    expected = {
        message_id: index
        for index, thread in enumerate(oracle["threads"])
        for message_id in thread["messages"]
    }
    conversations, _ = _thread(_ordered(messages, order))
    assert set(conversations) == set(expected)

    together, apart, splits, merges = _compare(expected, conversations)
    agreement = 1 - (len(splits) + len(merges)) / max(together + apart, 1)
    print(
        f"\n{name} ({order}): {len(messages)} files, {len(expected)} messages, "
        f"{len(oracle['threads'])} threads (ours {len(set(conversations.values()))}), "
        f"pairs {together} together / {apart} apart, {len(splits)} splits, "
        f"{len(merges)} merges, agreement {agreement:.1%}"
    )
    figures = (len(messages), len(expected), len(oracle["threads"]), together, apart)
    assert figures == CORPORA[name]
    assert splits == []
    assert merges == []


@pytest.mark.parametrize("name", sorted(CORPORA))
def test_planning_a_stored_message_again_changes_nothing(corpora_dir: Path, name: str) -> None:
    """Every file, duplicate copies included, plans into its stored conversation.

    The duplicate corpus has copies of one Message-ID whose References name different
    (never received) messages; none of them merges or moves anything.
    """
    _, messages = _load(corpora_dir, name)
    conversations, links = _thread(messages)
    for facts in messages:
        known = {i: links[i] for i in ids_to_link(facts) if i in links}
        plan = plan_threading(facts, known)
        assert plan.conversation_id == conversations[facts.message_id]
        assert plan.merge == ()


# -- HEADER_VECTORS.json -------------------------------------------------------------------


def _vectors(corpora_dir: Path) -> dict[str, Any]:
    path = corpora_dir / "threading" / "HEADER_VECTORS.json"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _vectors_or_none() -> dict[str, Any] | None:
    """The vectors at collection time, to name the cases (the fixture skips later)."""
    path = Path(__file__).resolve().parents[3] / "shared" / "corpora" / "threading"
    path = path / "HEADER_VECTORS.json"
    if not path.is_file():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _case_names() -> list[str]:
    vectors = _vectors_or_none()
    return [case["name"] for case in vectors["cases"]] if vectors else ["header vectors"]


def _reference_vectors() -> list[int]:
    vectors = _vectors_or_none()
    if not vectors:
        return [0]
    return [
        index
        for index, vector in enumerate(vectors["reference_parsing"])
        if "expected_ref" in vector or "expected_refs" in vector
    ]


def _raw(message_id: str, subject: str = "", headers: Mapping[str, str] = {}) -> bytes:
    lines = [
        "From: someone@example.org",
        "To: team@example.org",
        "Date: Mon, 01 Jan 2024 10:00:00 +0000",
        f"Subject: {subject}",
        f"Message-ID: <{message_id}>",
        *(f"{name}: {value}" for name, value in headers.items()),
        "",
        "body",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8")


def _case_messages(corpora_dir: Path, case: Mapping[str, Any]) -> list[MessageFacts]:
    if "messages" in case:
        messages = []
        for message in case["messages"]:
            headers = {}
            if "in_reply_to" in message:
                headers["In-Reply-To"] = message["in_reply_to"]
            if "references" in message:
                headers["References"] = message["references"]
            messages.append(_parse(_raw(message["id"], message.get("subject", ""), headers)))
        return messages
    directory = corpora_dir / case["files_dir"]
    return [_parse(path.read_bytes()) for path in sorted(directory.iterdir()) if path.is_file()]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("case_name", _case_names())
def test_header_vector_case(corpora_dir: Path, case_name: str, order: str) -> None:
    """Each header vector case holds, in either order.

    A child shares its parent's thread, a same-thread group is one conversation, separate
    ids stay apart, and duplicate Message-IDs are one message.
    """
    vectors = _vectors(corpora_dir)
    case = next(case for case in vectors["cases"] if case["name"] == case_name)
    messages = _case_messages(corpora_dir, case)
    conversations, links = _thread(_ordered(messages, order))

    checked = 0
    for child, parent in case.get("expected_parent", {}).items():
        assert child in conversations, child
        if parent is not None:
            assert links[parent] == conversations[child], (child, parent)
            checked += 1
    for group in case.get("expected_same_thread", []):
        assert len({conversations[message_id] for message_id in group}) == 1, group
        checked += 1
    for group in case.get("expected_separate", []):
        assert len({conversations[message_id] for message_id in group}) == len(group), group
        checked += 1
    if not checked:
        # No expectation but "must not crash or duplicate": one entry per distinct id.
        assert len(conversations) == len({facts.message_id for facts in messages})


@pytest.mark.parametrize("index", _reference_vectors())
def test_header_vector_reference_parsing(corpora_dir: Path, index: int) -> None:
    """The parser reads the id out of a dodgy In-Reply-To / References header."""
    vector = _vectors(corpora_dir)["reference_parsing"][index]
    facts = _parse(_raw("vector@example.org", headers={vector["header"]: vector["value"]}))
    if vector["header"] == "In-Reply-To":
        assert facts.in_reply_to == vector["expected_ref"]
    else:
        assert list(facts.references) == vector["expected_refs"]
