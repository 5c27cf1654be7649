"""How many conversations are in each state, and how many breached each clock, by account.

The metrics show these counts after every cycle. The evaluation cache keeps them up to
date as it keeps, replaces and forgets evaluations, so that a cycle costs what it
evaluated rather than a walk over every conversation, and a start counts the summaries
it keeps in one pass. A conversation without a client request (cycle 0) holds no
promise and is not counted, as in ``status``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from operator import itemgetter
from typing import cast

from sla_daemon.core.model import ClockName, ConversationState, Evaluation, Headline

CountKey = tuple[int, ConversationState, str | None, tuple[ClockName, ...]]
"""What a conversation is counted under: its headline's cycle, state, account, breaches."""

_count_key = cast(Callable[[Headline], CountKey], itemgetter(0, 1, 2, 4))
"""A headline's ``CountKey``: picked out in C, as a start counts every kept summary."""


class ConversationCounts:
    """Conversations counted by state and account, and breached clocks by account."""

    def __init__(self) -> None:
        self._counts: Counter[CountKey] = Counter()

    @classmethod
    def of(cls, evaluations: Iterable[Evaluation]) -> ConversationCounts:
        """The counts of ``evaluations``, made from scratch."""
        counts = cls()
        counts.add_all(evaluation.headline for evaluation in evaluations)
        return counts

    def add(self, headline: Headline) -> None:
        """Count one more conversation with ``headline``."""
        self._counts[_count_key(headline)] += 1

    def add_all(self, headlines: Iterable[Headline]) -> None:
        """Count a conversation for each of ``headlines``."""
        self._counts.update(map(_count_key, headlines))

    def remove(self, headline: Headline) -> None:
        """Count one conversation with ``headline`` less (one counted before)."""
        key = _count_key(headline)
        left = self._counts[key] - 1
        if left > 0:
            self._counts[key] = left
        else:
            del self._counts[key]

    def by_state(self) -> dict[tuple[ConversationState, str | None], int]:
        """Conversations with a client request, by state and account."""
        result: Counter[tuple[ConversationState, str | None]] = Counter()
        for (cycle, state, account, _), count in self._counts.items():
            if cycle:
                result[(state, account)] += count
        return dict(result)

    def by_breach(self) -> dict[tuple[ClockName, str | None], int]:
        """Conversations with a client request that breached each clock, by account."""
        result: Counter[tuple[ClockName, str | None]] = Counter()
        for (cycle, _, account, breaches), count in self._counts.items():
            if cycle:
                for clock in breaches:
                    result[(clock, account)] += count
        return dict(result)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConversationCounts):
            return NotImplemented
        return self._counts == other._counts

    __hash__ = None  # type: ignore[assignment]  # mutable: equal counts, no hash

    def __repr__(self) -> str:
        return f"ConversationCounts({dict(self._counts)!r})"
