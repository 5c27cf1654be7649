"""Counting what the SMTP sink received against the notices that were due.

A notice is named by a key the test chooses (e.g. its kind and conversation). The tally
says which expected keys arrived, which never did (lost), which arrived without being
expected, how many mails repeated a Message-ID already received (duplicated: the mail
in flight at a crash may go once more) and which keys came under more than one
Message-ID (a repeat that is not the same mail).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

from tests.servers.smtp_sink import ReceivedMail


@dataclass(frozen=True)
class NoticeTally:
    """Expected notices against received mail; see the module docstring."""

    expected: int
    delivered: int
    duplicated: int
    lost: tuple[str, ...]
    unexpected: tuple[str, ...]
    several_ids: Mapping[str, frozenset[str]]

    @property
    def exactly_once(self) -> bool:
        """Every expected notice arrived, nothing else did, each key under one Message-ID."""
        return not (self.lost or self.unexpected or self.several_ids)

    def describe(self) -> str:
        """A few lines for an assertion message."""
        return (
            f"expected {self.expected}, delivered {self.delivered}, duplicated "
            f"{self.duplicated}, lost {len(self.lost)} {list(self.lost)[:5]}, unexpected "
            f"{len(self.unexpected)} {list(self.unexpected)[:5]}, keys under several "
            f"Message-IDs {dict(list(self.several_ids.items())[:3])}"
        )


def tally(
    expected: Collection[str],
    received: Iterable[ReceivedMail],
    key: Callable[[ReceivedMail], str],
) -> NoticeTally:
    """Count ``received`` against the ``expected`` keys, each mail named by ``key``."""
    ids_by_key: dict[str, set[str]] = defaultdict(set)
    copies: Counter[str] = Counter()
    for mail in received:
        message_id = str(mail.message["Message-ID"])
        ids_by_key[key(mail)].add(message_id)
        copies[message_id] += 1
    arrived = set(ids_by_key)
    return NoticeTally(
        expected=len(expected),
        delivered=len(arrived & set(expected)),
        duplicated=sum(count - 1 for count in copies.values()),
        lost=tuple(sorted(set(expected) - arrived)),
        unexpected=tuple(sorted(arrived - set(expected))),
        several_ids={k: frozenset(ids) for k, ids in ids_by_key.items() if len(ids) > 1},
    )
