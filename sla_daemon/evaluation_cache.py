"""The evaluations of every conversation, kept between cycles and refreshed in part.

An evaluation changes only when the conversation's messages or notices change, or when
time reaches its ``next_check_at`` (the next warning, breach, reminder, follow-up or
close). The store notes every changed conversation in a journal (schema 6); the cache
keeps each conversation's next check time in a heap. A cycle therefore evaluates the
journal's conversations and those whose check time has come, and nothing else: an idle
cycle loads nothing.

The first refresh of a cache (a start, a configuration reload) reads the stored
conversation summaries (schema 8) made under the same rules (``rules_fingerprint``) and
evaluates only the conversations that have none, that the journal names, whose check
time came, or whose summary is from later than now (the clock went back). Every other
conversation (one waiting on the client too, as between cycles: its paused clock has
no check time)
is kept from its summary as a ``StoredEvaluation``: an ``Evaluation`` whose status is
decoded only when first asked for, and whose headline (what the metrics and check-ins
count by) is at hand without it. A subclass keeps ``core.model.Evaluation`` as it is for
every consumer (the status page, briefings, reports), with nothing to decode until one
of them looks. Rules changed by a reload have another fingerprint: every conversation
is evaluated again, so a changed policy is applied everywhere.

After the outbox has recorded a refresh's decisions, ``settle`` writes the summaries
of the conversations it evaluated in the transaction that forgets the journal entries
they cover. A crash before that leaves the journal, so the next start evaluates them
again. A dry run records no decisions, so it writes no summary: it deletes those of the
conversations it evaluated instead.
"""

from __future__ import annotations

import gc
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from sla_daemon.collections_pause import BULK_YOUNG_THRESHOLD, fewer_collections
from sla_daemon.conversation_counts import ConversationCounts
from sla_daemon.core.aftercare import AccountContact, account_contacts, check_in_evaluations
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import (
    Evaluation,
    Headline,
    MessageFacts,
    Rules,
    SentNotice,
)
from sla_daemon.summary_codec import (
    ConversationSummary,
    StoredEvaluation,
    decode_contacts,
    encode_contacts,
    encode_status,
)

log = structlog.get_logger(__name__)

START_YOUNG_THRESHOLD = 10_000_000
"""The collector's youngest threshold during a start from summaries: none runs at all.

A start keeps nearly every object it makes (about 25 per conversation, under 3 million
for 100,000): each collection would walk them and free nothing, a quarter of the start.
"""

FREEZE_AFTER_START = 10_000
"""Conversations from which a cache's first refresh moves what it made out of the collector.

What a start keeps (every conversation's evaluation, summary, contacts) lives until the
next start or reload and holds no reference cycle, so the collector would walk it at
every full collection and never free any of it: ``gc.freeze`` moves all objects alive
then to the permanent generation, which the collector skips. Reference counting still
frees them when a reload replaces the cache. The price is any cyclic garbage alive at
that moment, kept for good: one start's worth at most. Below this size the walk costs
less than a few milliseconds, so nothing is frozen.
"""


class ConversationReader(Protocol):
    """What the cache reads: the store's conversations, notices and change journal."""

    def conversation_ids(self) -> list[str]:
        """Every stored conversation, in the store's order."""
        ...

    def conversation_messages(self, conversation_id: str) -> list[MessageFacts]:
        """One conversation's messages in arrival order (empty once merged away)."""
        ...

    def notices_for(self, conversation_id: str) -> dict[str, SentNotice]:
        """The outbox's decisions for one conversation, by key."""
        ...

    def changed_conversations(self) -> tuple[int, list[str]]:
        """The journal's position and the conversations changed up to it."""
        ...

    def summaries(self, rules_fingerprint: str) -> list[ConversationSummary]:
        """The stored summaries made under the rules of ``rules_fingerprint``."""
        ...


class SummaryKeeper(Protocol):
    """Where ``settle`` writes: the store's summaries and journal."""

    def forget_changes(self, upto: int) -> None:
        """Drop the journal's entries up to ``upto``."""
        ...

    def keep_summaries(
        self,
        summaries: Sequence[ConversationSummary],
        journal_upto: int,
        *,
        dropped: Iterable[str] = (),
    ) -> None:
        """Write ``summaries``, delete ``dropped``'s, forget the journal: one transaction."""
        ...


@dataclass(frozen=True)
class Refresh:
    """What one refresh evaluated, and the journal position it read up to."""

    evaluated: list[Evaluation]
    """The conversations evaluated now, in the store's order: the outbox takes these."""
    journal_upto: int
    """Forget the journal up to here once the decisions are recorded."""
    at: datetime
    """The instant the conversations were evaluated at."""


class EvaluationCache:
    """The latest evaluation of every conversation, and when each must be looked at again.

    With a ``rules_fingerprint`` its first refresh starts from the stored summaries made
    under those rules, and ``settle`` keeps new ones; without, it evaluates everything.
    """

    def __init__(self, rules_fingerprint: str | None = None) -> None:
        self.rules_fingerprint = rules_fingerprint
        self.reset()

    def reset(self) -> None:
        """Forget everything held in memory: the next refresh starts again from the store."""
        self._evaluations: dict[str, Evaluation] = {}
        self._counts = ConversationCounts()
        # A conversation's contacts, or a summary's encoding of them until check-ins ask.
        self._contacts: dict[str, dict[str, AccountContact] | bytes] = {}
        self._merged_away: set[str] = set()
        self._check_at: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._complete = False
        self._account_view: tuple[list[Evaluation], dict[str, AccountContact]] | None = None

    def refresh(self, reader: ConversationReader, rules: Rules, now: datetime) -> Refresh:
        """Evaluate what changed or fell due (everything on the first call) at ``now``."""
        journal_upto, changed = reader.changed_conversations()
        order: list[str] | None = None
        if self._complete:
            wanted: Iterable[str] = dict.fromkeys([*changed, *self._due(now)])
        elif self.rules_fingerprint is None:
            wanted = reader.conversation_ids()
        else:
            order = reader.conversation_ids()
        evaluated: list[tuple[datetime, str, Evaluation]] = []
        # A start reads, keeps or evaluates every conversation: a bulk pass (see there).
        with fewer_collections(
            START_YOUNG_THRESHOLD if order is not None else BULK_YOUNG_THRESHOLD
        ):
            if order is not None:
                wanted = self._start_from_summaries(reader, order, changed, now)
            for conversation_id in wanted:
                messages = reader.conversation_messages(conversation_id)
                if not messages:  # merged into another conversation
                    self._forget(conversation_id)
                    continue
                notices = reader.notices_for(conversation_id)
                evaluation = evaluate(conversation_id, messages, rules, notices, now)
                self._keep(conversation_id, evaluation, messages, rules, now)
                evaluated.append((messages[0].arrived_at, conversation_id, evaluation))
            if order is not None and evaluated:
                # Kept ones went in in the store's order; the evaluated ones go in after.
                self._evaluations = {
                    c: self._evaluations[c] for c in order if c in self._evaluations
                }
            if not self._complete and len(self._evaluations) >= FREEZE_AFTER_START:
                # Before the threshold is restored: the first collection after it would
                # walk everything the start made (a quarter of a second for 100,000).
                gc.freeze()
        if evaluated or not self._complete:
            self._account_view = None
        self._complete = True
        if len(self._heap) > 2 * len(self._check_at) + 64:
            # Every evaluation pushes its check time; drop the ones a later one replaced.
            self._heap = [(at, cid) for cid, at in self._check_at.items()]
            heapq.heapify(self._heap)
        evaluated.sort(key=lambda item: (item[0], item[1]))
        return Refresh([evaluation for _, _, evaluation in evaluated], journal_upto, now)

    def settle(self, store: SummaryKeeper, refresh: Refresh, *, keep_summaries: bool) -> None:
        """Forget the journal read by ``refresh``, with the summaries of what it evaluated.

        Call it once the outbox has recorded the refresh's decisions. Without
        ``keep_summaries`` (a dry run, which records none) the summaries of the
        conversations it evaluated are deleted instead: a later start evaluates them.
        """
        merged_away, self._merged_away = self._merged_away, set()
        if self.rules_fingerprint is None:
            store.forget_changes(refresh.journal_upto)
            return
        evaluated = [e for e in refresh.evaluated if e.status.id in self._evaluations]
        if not keep_summaries:
            dropped = [*merged_away, *(e.status.id for e in evaluated)]
            store.keep_summaries([], refresh.journal_upto, dropped=dropped)
            return
        with fewer_collections():  # after a start: one summary per conversation
            self._keep_summaries(store, evaluated, refresh, merged_away)

    def _keep_summaries(
        self,
        store: SummaryKeeper,
        evaluated: list[Evaluation],
        refresh: Refresh,
        merged_away: set[str],
    ) -> None:
        assert self.rules_fingerprint is not None
        summaries = [
            ConversationSummary(
                e.status.id,
                self.rules_fingerprint,
                refresh.at,
                self._check_at.get(e.status.id),
                e.headline,
                encode_status(e.status),
                self._encoded_contacts(e.status.id),
            )
            for e in evaluated
        ]
        store.keep_summaries(summaries, refresh.journal_upto, dropped=merged_away)

    def evaluations(self) -> list[Evaluation]:
        """The latest evaluation of every conversation."""
        return list(self._evaluations.values())

    def counts(self) -> ConversationCounts:
        """The latest evaluations counted by state, account and breach (kept up to date)."""
        return self._counts

    def next_check_at(self) -> datetime | None:
        """The earliest moment a kept evaluation must be made again."""
        while self._heap and self._check_at.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def check_ins(self, rules: Rules, now: datetime) -> list[Evaluation]:
        """The accounts' check-in evaluations at ``now`` (``aftercare.check_in_evaluations``)."""
        if not any(account.check_in_every for account in rules.accounts):
            return []
        if self._account_view is None:
            self._account_view = (self._latest_per_account(), self._merged_contacts())
        latest, contacts = self._account_view
        return check_in_evaluations(latest, contacts, rules, now)

    def _keep(
        self,
        conversation_id: str,
        evaluation: Evaluation,
        messages: list[MessageFacts],
        rules: Rules,
        now: datetime,
    ) -> None:
        replaced = self._evaluations.get(conversation_id)
        if replaced is not None:
            self._counts.remove(replaced.headline)
        self._evaluations[conversation_id] = evaluation
        self._counts.add(evaluation.headline)
        contacts = account_contacts([messages], rules, now)
        if contacts:
            self._contacts[conversation_id] = contacts
        else:
            self._contacts.pop(conversation_id, None)
        # Mail stamped after ``now`` is not in the evaluation yet; it counts when it arrives.
        later = [m.arrived_at for m in messages if m.arrived_at > now]
        checks = [at for at in (evaluation.next_check_at, min(later, default=None)) if at]
        if checks:
            self._check_at[conversation_id] = min(checks)
            heapq.heappush(self._heap, (min(checks), conversation_id))
        else:
            self._check_at.pop(conversation_id, None)

    def _start_from_summaries(
        self, reader: ConversationReader, ids: list[str], changed: list[str], now: datetime
    ) -> list[str]:
        """Keep every conversation its summary still stands for; return the others."""
        assert self.rules_fingerprint is not None
        summaries = {s.conversation_id: s for s in reader.summaries(self.rules_fingerprint)}
        journal = set(changed)
        wanted: list[str] = []
        kept_headlines: list[Headline] = []
        # Bound once: this loop runs once per stored conversation.
        evaluations, contacts, check_at, heap = (
            self._evaluations,
            self._contacts,
            self._check_at,
            self._heap,
        )
        for conversation_id in ids:
            summary = summaries.get(conversation_id)
            if summary is None or conversation_id in journal or not _holds(summary, now):
                wanted.append(conversation_id)
                continue
            evaluations[conversation_id] = StoredEvaluation(summary)
            kept_headlines.append(summary.headline)
            if summary.contacts != b"[]":
                contacts[conversation_id] = summary.contacts
            if summary.check_at is not None:
                check_at[conversation_id] = summary.check_at
                heap.append((summary.check_at, conversation_id))
        heapq.heapify(self._heap)
        self._counts.add_all(kept_headlines)
        # Summaries of conversations merged away since: ``settle`` deletes them.
        self._merged_away.update(summaries.keys() - set(ids))
        log.info(
            "evaluation.start",
            conversations=len(ids),
            kept_from_summaries=len(ids) - len(wanted),
            to_evaluate=len(wanted),
            reason="a summary under the same rules stands until its conversation changes "
            "or its check time comes",
        )
        return wanted

    def _encoded_contacts(self, conversation_id: str) -> bytes:
        contacts = self._contacts.get(conversation_id, {})
        return contacts if isinstance(contacts, bytes) else encode_contacts(contacts)

    def _forget(self, conversation_id: str) -> None:
        self._merged_away.add(conversation_id)
        forgotten = self._evaluations.pop(conversation_id, None)
        if forgotten is not None:
            self._counts.remove(forgotten.headline)
        self._contacts.pop(conversation_id, None)
        self._check_at.pop(conversation_id, None)

    def _due(self, now: datetime) -> list[str]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            at, conversation_id = heapq.heappop(self._heap)
            if self._check_at.get(conversation_id) == at:
                due.append(conversation_id)
        return due

    def _latest_per_account(self) -> list[Evaluation]:
        """Per account, the evaluation ``check_in_evaluations`` would pick among all."""
        latest: dict[str, Evaluation] = {}
        for evaluation in self._evaluations.values():
            headline = evaluation.headline
            if headline.account is None or headline.opened_at is None:
                continue
            known = latest.get(headline.account)
            known_opened = known.headline.opened_at if known is not None else None
            if known_opened is None or headline.opened_at > known_opened:
                latest[headline.account] = evaluation
        return list(latest.values())

    def _merged_contacts(self) -> dict[str, AccountContact]:
        merged: dict[str, AccountContact] = {}
        for conversation_id, contacts in self._contacts.items():
            if isinstance(contacts, bytes):
                contacts = self._contacts[conversation_id] = decode_contacts(contacts)
            for name, contact in contacts.items():
                merged[name] = contact.merged(merged[name]) if name in merged else contact
        return merged


def _holds(summary: ConversationSummary, now: datetime) -> bool:
    """Whether ``summary`` still says what an evaluation at ``now`` would."""
    if summary.evaluated_at > now:  # the clock went back since it was made
        return False
    # Waiting on the client is kept too: its paused clock has no check time, and between
    # cycles a running daemon keeps its evaluation (and shown due time) the same way.
    return summary.check_at is None or summary.check_at > now
