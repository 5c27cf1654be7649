"""Threading of the two mailing-list archives in ``corpora/bulk``, against notmuch.

Each archive is extracted into a temporary directory (never into the project), notmuch
0.37 indexes it there and answers which files share a thread (corpora INDEX.md, section
4), and every file is parsed once by the daemon's parser and threaded in arrival order
(file order) through ``ThreadMap``: first by headers only, as notmuch does, then again
with the subject fallback the daemon uses.

A message (a file) agrees when the files sharing its conversation are exactly the files
sharing its notmuch thread. Header threading must agree on at least 99.9% of the
messages of each archive; the subject fallback's joins are counted and reported apart
(notmuch has no subject fallback, so each of them is a legitimate disagreement).
The figures are printed (run with ``-s``) and recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.core.model import FolderKind, MessageFacts
from sla_daemon.core.threads import ThreadMap

pytestmark = pytest.mark.corpus

ARCHIVES = ("linux-mips-10k", "spamassassin-easy-ham-2405")
TARGET = 0.999
"""Least fraction of messages whose header-threading membership agrees with notmuch.

The archives are threaded with no rules, as a mailbox of people the configuration does
not know: then every ``<...>`` token of In-Reply-To is a relation, as in notmuch. (With
rules, an address of a known team member or client among them is not; see
``core.threads.without_known_people``.)
"""

NOW = datetime(2030, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Figures:
    """How one threading of an archive compares with notmuch."""

    messages: int
    agreeing: int
    threads: int
    conversations: int
    joined_by_subject: int
    splits: int
    """Extra conversations notmuch threads are cut into (sum of pieces - 1 per thread)."""
    merges: int
    """Notmuch threads joined to another (sum of threads - 1 per conversation)."""

    @property
    def agreement(self) -> float:
        """The fraction of messages whose thread membership agrees."""
        return self.agreeing / self.messages


def _extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive, "r:xz") as tar:
        tar.extractall(into, filter="data")
    [top] = [path for path in into.iterdir() if path.is_dir()]
    return top


def _walk(nodes: Sequence[Any]) -> Iterator[dict[str, Any]]:
    """Every message of a notmuch ``show --format=json`` thread (a forest of pairs)."""
    for node in nodes:
        if isinstance(node, list) and len(node) == 2 and not isinstance(node[0], list):
            message, children = node
            if isinstance(message, dict):
                yield message
            yield from _walk(children)
        elif isinstance(node, list):
            yield from _walk(node)


def _notmuch_threads(notmuch: str, maildir: Path, work: Path) -> dict[str, int]:
    """File name -> notmuch thread number, for every file notmuch indexed."""
    config = work / "notmuch-config"
    config.write_text(
        f"[database]\npath={maildir}\n[new]\ntags=\n[user]\nname=Oracle\n"
        "primary_email=oracle@example.org\n[maildir]\nsynchronize_flags=false\n",
        encoding="utf-8",
    )
    env = {**os.environ, "NOTMUCH_CONFIG": str(config), "HOME": str(work)}
    subprocess.run([notmuch, "new", "--quiet"], env=env, check=True, capture_output=True)
    shown = subprocess.run(
        [notmuch, "show", "--format=json", "--body=false", "--entire-thread=true", "*"],
        env=env,
        check=True,
        capture_output=True,
    )
    threads: dict[str, int] = {}
    for number, thread in enumerate(json.loads(shown.stdout)):
        for message in _walk(thread):
            for filename in message["filename"]:
                threads[Path(filename).name] = number
    return threads


def _parse_all(maildir: Path) -> list[tuple[str, MessageFacts | None]]:
    parsed: list[tuple[str, MessageFacts | None]] = []
    for path in sorted(p for p in maildir.iterdir() if p.is_file()):
        try:
            facts = parse_message(
                path.read_bytes(),
                mailbox="bulk",
                folder="INBOX",
                folder_kind=FolderKind.INBOX,
                internaldate=None,
                now=NOW,
            )
        except MalformedMessage:
            facts = None
        parsed.append((path.name, facts))
    return parsed


def _thread(
    parsed: Sequence[tuple[str, MessageFacts | None]], *, subject_fallback: bool
) -> tuple[dict[str, str], int]:
    """File name -> conversation, and how many messages joined by subject."""
    threads = ThreadMap()
    stored: set[str] = set()
    joined = 0
    for _, facts in parsed:
        if facts is None or facts.message_id in stored:
            continue
        stored.add(facts.message_id)
        joined += threads.thread(facts, subject_fallback=subject_fallback).by_subject
    conversations = {}
    for name, facts in parsed:
        conversation = threads.conversation_of(facts.message_id) if facts else None
        conversations[name] = conversation or f"unparsed:{name}"
    return conversations, joined


def _compare(
    expected: Mapping[str, int], actual: Mapping[str, str], joined: int
) -> tuple[Figures, list[str]]:
    """Figures over the files notmuch indexed, and the files that disagree."""
    names = sorted(expected)
    theirs: dict[int, set[str]] = defaultdict(set)
    ours: dict[str, set[str]] = defaultdict(set)
    for name in names:
        theirs[expected[name]].add(name)
        ours[actual[name]].add(name)
    disagreeing = [n for n in names if theirs[expected[n]] != ours[actual[n]]]
    figures = Figures(
        messages=len(names),
        agreeing=len(names) - len(disagreeing),
        threads=len(theirs),
        conversations=len(ours),
        joined_by_subject=joined,
        splits=sum(len({actual[n] for n in group}) - 1 for group in theirs.values()),
        merges=sum(len({expected[n] for n in group}) - 1 for group in ours.values()),
    )
    return figures, disagreeing


@pytest.mark.parametrize("archive", ARCHIVES)
def test_threading_agrees_with_notmuch_on_the_bulk_archives(
    corpora_dir: Path, tmp_path: Path, archive: str
) -> None:
    """Header threading agrees with notmuch on >= 99.9% of messages; subject joins counted."""
    tarball = corpora_dir / "bulk" / f"{archive}.tar.xz"
    if not tarball.is_file():
        pytest.skip(f"{tarball} is not available")
    notmuch = shutil.which("notmuch")
    if notmuch is None:
        pytest.skip("notmuch is not installed (Debian package notmuch): no oracle to compare")
    maildir = _extract(tarball, tmp_path / "mail")
    expected = _notmuch_threads(notmuch, maildir, tmp_path)
    parsed = _parse_all(maildir)
    files = {name for name, _ in parsed}
    assert set(expected) <= files

    headers, _ = _thread(parsed, subject_fallback=False)
    header_figures, disagreeing = _compare(expected, headers, 0)
    subjects, joined = _thread(parsed, subject_fallback=True)
    subject_figures, _ = _compare(expected, subjects, joined)

    print(
        f"\n{archive}: {len(files)} files, {header_figures.messages} indexed by notmuch "
        f"in {header_figures.threads} threads, {sum(f is None for _, f in parsed)} unparsed"
    )
    for label, figures in (("headers only", header_figures), ("with subjects", subject_figures)):
        print(
            f"  {label}: {figures.conversations} conversations, {figures.agreeing} messages "
            f"agree = {figures.agreement:.3%}; splits {figures.splits}, merges "
            f"{figures.merges}; {figures.joined_by_subject} messages joined by subject"
        )
    print(f"  disagreeing with headers only (first 10): {disagreeing[:10]}")
    assert header_figures.agreement >= TARGET
    assert subject_figures.conversations <= header_figures.conversations
