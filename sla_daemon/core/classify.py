"""Who wrote a message, for which account, and which markers it carries.

All functions are pure: they read ``MessageFacts`` and ``Rules`` and return plain values,
so a configuration change reclassifies stored mail without fetching it again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from sla_daemon.core.automated import NOTICE_HEADER, detect_automated
from sla_daemon.core.model import Account, CourtesyRule, MarkerSet, MessageFacts, Role, Rules

__all__ = [
    "NOTICE_HEADER",
    "Classification",
    "account_for_address",
    "automation_reason",
    "classify",
    "client_recipient",
    "is_team_address",
    "marker_reason",
    "new_text",
]

_TRUTHY = {"yes", "true", "1", "on"}


@dataclass(frozen=True)
class Classification:
    """The verdict on one message; ``reason`` says why (logged and shown by ``inspect``)."""

    role: Role
    account: Account | None
    reason: str


def automation_reason(facts: MessageFacts) -> str | None:
    """Return why ``facts`` is automated mail (kind and reasons), or None.

    A thin wrapper over ``detect_automated`` for callers that only need the text, such
    as ``"auto_reply: Auto-Submitted: auto-replied"``. Automated mail never opens or
    advances a conversation and is never auto-acked.
    """
    verdict = detect_automated(facts)
    return verdict.describe() if verdict.is_automated else None


def _parent_domains(domain: str) -> Iterator[str]:
    """``domain`` and every domain it is a subdomain of: a.b.c, b.c, c."""
    while True:
        yield domain
        dot = domain.find(".")
        if dot < 0:
            return
        domain = domain[dot + 1 :]


def is_team_address(email: str, rules: Rules) -> bool:
    """True when ``email`` belongs to the team (a team address or domain)."""
    # Asked for every sender and recipient of every message: kept per address for the
    # configuration ``rules`` stands for (a new configuration starts an empty memo).
    memo = rules.address_lookup.memo
    key = ("team", email)
    known = memo.get(key)
    if known is None:
        known = _is_team_address(email, rules)
        _remember(memo, key, known)
    return known is True


MEMO_LIMIT = 50_000
"""Verdicts kept per configuration at most (a few MB); past it the memo starts over."""


def _remember(memo: dict[object, object], key: object, value: object) -> None:
    """Keep ``value`` in ``memo``; a daemon that meets ever new addresses stays bounded."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value


def _is_team_address(email: str, rules: Rules) -> bool:
    email = email.lower()
    lookup = rules.address_lookup
    if email in lookup.team_addresses or email == rules.team.from_address.email:
        return True
    return any(d in lookup.team_domains for d in _parent_domains(email.rpartition("@")[2]))


def account_for_address(email: str, rules: Rules) -> Account | None:
    """Return the account an external address belongs to (exact address before domain).

    Among the accounts whose domain the address is in (or a subdomain of), the one
    configured first wins.
    """
    email = email.lower()
    lookup = rules.address_lookup
    account = lookup.account_by_address.get(email)
    if account is not None:
        return account
    matches = [
        lookup.account_by_domain[d]
        for d in _parent_domains(email.rpartition("@")[2])
        if d in lookup.account_by_domain
    ]
    if matches:
        return min(matches, key=lambda match: match[0])[1]
    if rules.default_account is not None:
        return rules.account_named(rules.default_account)
    return None


_NO_SENDER = Classification(Role.AUTOMATED, None, "no sender address")


def classify(facts: MessageFacts, rules: Rules) -> Classification:
    """Decide whether ``facts`` was written by a client, the team, a machine, or other."""
    verdict = detect_automated(facts)
    if verdict.is_automated:
        return Classification(Role.AUTOMATED, None, verdict.describe())
    if facts.sender is None:
        # Nobody to answer and nobody to attribute the mail to: it opens nothing.
        return _NO_SENDER
    sender = facts.sender.email
    # A person's verdict depends only on the sender (and, for the team, on the client it
    # writes to) under this configuration: worked out once per address and kept.
    client = client_recipient(facts, rules) if is_team_address(sender, rules) else None
    memo = rules.address_lookup.memo
    key = ("verdict", sender, client)
    known = memo.get(key)
    if isinstance(known, Classification):
        return known
    made = _classify_person(sender, client, rules)
    _remember(memo, key, made)
    return made


def _classify_person(sender: str, client: str | None, rules: Rules) -> Classification:
    if is_team_address(sender, rules):
        account = account_for_address(client, rules) if client else None
        return Classification(Role.TEAM, account, f"team sender {sender}")
    account = account_for_address(sender, rules)
    if account is None:
        return Classification(Role.OTHER, None, f"{sender} belongs to no configured account")
    return Classification(Role.CLIENT, account, f"client of account {account.name}")


def client_recipient(facts: MessageFacts, rules: Rules) -> str | None:
    """The first recipient outside the team, or None for team-internal mail."""
    for address in facts.recipients:
        if not is_team_address(address.email, rules):
            return address.email
    return None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


_QUOTE_INTRO = re.compile(
    r"^(on .{1,200} wrote:|am .{1,200} schrieb .{1,100}:|le .{1,200} a écrit\s?:|"
    r"-+\s*original message\s*-+|from:\s.+)$",
    re.IGNORECASE,
)


def new_text(body: str) -> str:
    """The part of a reply its author wrote: quoted lines and the quoted tail removed."""
    kept = []
    for line in body.splitlines():
        stripped = line.strip()
        if _QUOTE_INTRO.match(stripped):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def marker_reason(facts: MessageFacts, markers: MarkerSet) -> str | None:
    """Return which marker of ``markers`` the message carries (for the ledger), or None."""
    subject = facts.subject.lower()
    for tag in markers.subject_tags:
        if tag.lower() in subject:
            return f"subject tag {tag}"
    keywords = {k.lower() for k in facts.keywords}
    for keyword in markers.imap_keywords:
        if keyword.lower() in keywords:
            return f"IMAP keyword {keyword}"
    for header in markers.headers:
        value = facts.header(header)
        if value is not None and value.strip().lower() in _TRUTHY:
            return f"header {header}: {value.strip()}"
    if markers.body_patterns:
        text = new_text(facts.body_text)
        for pattern in markers.body_patterns:
            if _compiled(pattern).search(text):
                return f"body pattern {pattern}"
    return None


_SIGNATURE = re.compile(r"^(--|__+|—)\s*$")
_WORD = re.compile(r"\w+")


def courtesy_reason(facts: MessageFacts, rule: CourtesyRule) -> str | None:
    """Why a client's message is only a courtesy ("Thanks, that works!"), or None.

    Judged on the text its author wrote, without quotes or signature: at most
    ``rule.max_words`` words, no question mark, one of ``rule.patterns`` and none of
    ``rule.request_patterns``. A courtesy is recorded but opens no cycle.
    """
    if not rule.patterns:
        return None
    lines = []
    for line in new_text(facts.body_text).splitlines():
        if _SIGNATURE.match(line.strip()):
            break
        lines.append(line)
    text = " ".join(" ".join(lines).split())
    if not text:
        text = facts.subject
    words = _WORD.findall(text)
    if not words or len(words) > rule.max_words or "?" in text:
        return None
    for pattern in rule.request_patterns:
        if _compiled(pattern).search(text):
            return None
    for pattern in rule.patterns:
        if _compiled(pattern).search(text):
            return f"courtesy reply ({len(words)} words, matches {pattern})"
    return None
