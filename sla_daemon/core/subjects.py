"""The subject fallback of threading: when headers name nothing known, the subject may.

Only a reply that lost its headers is considered, and it joins only a recent
conversation with the same normalized subject and an overlapping participant other than
the team (docs/sla.md states the rule for users). Pure: standard library and the core.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sla_daemon.core.classify import is_team_address
from sla_daemon.core.model import MessageFacts, Rules

SUBJECT_WINDOW = timedelta(days=14)
"""The subject fallback joins a conversation only when its last message is this close in
time to the new message (before or after it)."""

GENERIC_SUBJECTS = frozenset(
    {
        "",
        "hello",
        "hi",
        "hey",
        "hallo",
        "bonjour",
        "question",
        "questions",
        "quick question",
        "no subject",
        "untitled",
        "help",
        "urgent",
        "request",
        "inquiry",
        "enquiry",
        "info",
        "information",
        "update",
        "follow up",
        "followup",
        "thanks",
        "thank you",
        "fyi",
        "test",
        "meeting",
        "issue",
        "problem",
    }
)
"""Normalized subjects too common to say two messages belong together (compared without
punctuation, so "(no subject)" and "Hello!" are generic too)."""

MIN_SUBJECT_LETTERS = 3
"""A normalized subject with fewer letters or digits than this is generic too ("ok", "?")."""

_PREFIX_WORDS = "re|fwd|fw|aw|sv|tr|antw|wg|rif|odp"
# A reply or forward prefix, also numbered (Re[2]:, Re(2):, Re^2:) or spaced ("TR :"),
# or a leading [tag] such as "[Ticket #123]" or a list's "[linux-mips]".
_LEADING = re.compile(
    rf"^(?:(?:{_PREFIX_WORDS})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:\uff1a]|\[[^\]]*\])\s*",
    re.IGNORECASE,
)
# A trailing [tag] or the old "(fwd)" suffix.
_TRAILING = re.compile(r"\s*(?:\[[^\]]*\]|\(fwd?\))$", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class SubjectCandidate:
    """A conversation filed under the new message's normalized subject.

    ``participants`` are the lower-cased addresses of every message in it (senders,
    Reply-To, To and Cc, team included: the team is left out when comparing), and
    ``last_at`` is the arrival of its latest message.
    """

    conversation_id: str
    participants: frozenset[str]
    last_at: datetime


def normalize_subject(text: str) -> str:
    """The subject as the fallback compares it.

    Leading reply and forward prefixes (Re, Fwd, FW, AW, SV, TR, Antw, WG, RIF, Odp, in any
    case, repeated, numbered like ``Re[2]:``) and ``[tags]`` among them are removed, as are
    a trailing ``[tag]`` and ``(fwd)``; runs of white space become one space, and the case
    is folded. ``"RE: [Ticket #123] Fwd: Server  DOWN"`` becomes ``"server down"``.
    """
    subject = _SPACE.sub(" ", text).strip()
    while True:
        shorter = _TRAILING.sub("", _LEADING.sub("", subject)).strip()
        if shorter == subject:
            return subject.casefold()
        subject = shorter


_REPLY_PREFIX = re.compile(
    rf"^\s*(?:\[[^\]]*\]\s*)*(?:{_PREFIX_WORDS})\s*(?:\[\d+\]|\(\d+\)|\^\d+)?\s*[:\uff1a]",
    re.IGNORECASE,
)


def lost_its_headers(facts: MessageFacts) -> bool:
    """Whether ``facts`` looks like a reply or forward whose threading headers were lost.

    Its subject starts with a reply or forward prefix (after any ``[tags]``), yet it
    carries neither In-Reply-To nor References. Only such a message may be joined by
    subject: a new request that happens to reuse a subject must stay a new conversation.
    """
    if facts.in_reply_to or facts.references:
        return False
    return _REPLY_PREFIX.match(facts.subject) is not None


# Asked twice for each stored message (its candidates, then its index entry) and again
# for every message of a thread that repeats the subject.
@functools.lru_cache(maxsize=4096)
def subject_key(text: str) -> str | None:
    """``normalize_subject(text)``, or None when it is too generic to thread by.

    Generic: fewer than ``MIN_SUBJECT_LETTERS`` letters or digits, or one of
    ``GENERIC_SUBJECTS`` once punctuation is dropped.
    """
    normalized = normalize_subject(text)
    words = _NOT_WORD.sub(" ", normalized).strip()
    if len(words.replace(" ", "")) < MIN_SUBJECT_LETTERS or words in GENERIC_SUBJECTS:
        return None
    return normalized


def participants(facts: MessageFacts) -> frozenset[str]:
    """Every address on a message: sender, Reply-To, To and Cc, lower-cased."""
    addresses = [facts.sender] if facts.sender is not None else []
    addresses += [*facts.reply_to, *facts.to, *facts.cc]
    return frozenset(a.email.lower() for a in addresses if a.email)


def subject_match(
    facts: MessageFacts,
    candidates: Iterable[SubjectCandidate],
    rules: Rules | None = None,
) -> tuple[SubjectCandidate, str] | None:
    """The conversation the subject fallback joins ``facts`` to, with the reason, or None.

    Only a reply that lost its headers is considered (``lost_its_headers``). A candidate
    qualifies when ``facts`` has a non-generic subject (``subject_key``), an
    address of ``facts`` other than the team's (``rules``; without rules no address is
    the team's) is among the candidate's participants, and the candidate's last message
    is within ``SUBJECT_WINDOW`` of ``facts.arrived_at``. Of several, the one whose last
    message is closest in time wins (then the smallest conversation id). The caller
    passes the conversations filed under ``subject_key(facts.subject)``.
    """
    key = subject_key(facts.subject)
    if key is None or not lost_its_headers(facts):
        return None
    own = {a for a in participants(facts) if rules is None or not is_team_address(a, rules)}
    best: tuple[timedelta, str, SubjectCandidate, str] | None = None
    for candidate in candidates:
        gap = abs(facts.arrived_at - candidate.last_at)
        shared = sorted(own & candidate.participants)
        if not shared or gap > SUBJECT_WINDOW:
            continue
        if best is None or (gap, candidate.conversation_id) < best[:2]:
            best = (gap, candidate.conversation_id, candidate, shared[0])
    if best is None:
        return None
    gap, _, candidate, shared_address = best
    hours = gap.total_seconds() / 3600
    reason = (
        f"no known In-Reply-To/References; subject {key!r} and participant {shared_address} "
        f"shared with a conversation last active {hours:.1f}h apart "
        f"(window {SUBJECT_WINDOW.days} days)"
    )
    return candidate, reason
