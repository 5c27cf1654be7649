"""The evaluations of every conversation, kept between cycles and refreshed in part.

An evaluation changes only when the conversation's messages or notices change, or when
time reaches its ``next_check_at`` (the next warning, breach, reminder, follow-up or
close). The store notes every changed conversation in a journal (schema 6); the cache
keeps each conversation's next check time in a heap. A cycle therefore evaluates the
journal's conversations and those whose check time has come, and nothing else: an idle
cycle loads nothing. The first refresh of a cache (a start, a configuration reload)
evaluates every stored conversation once, so a changed policy is applied everywhere.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sla_daemon.collections_pause import fewer_collections
from sla_daemon.core.aftercare import AccountContact, account_contacts, check_in_evaluations
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import Evaluation, MessageFacts, Rules, SentNotice


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


@dataclass(frozen=True)
class Refresh:
    """What one refresh evaluated, and the journal position it read up to."""

    evaluated: list[Evaluation]
    """The conversations evaluated now, in the store's order: the outbox takes these."""
    journal_upto: int
    """Forget the journal up to here once the decisions are recorded."""


class EvaluationCache:
    """The latest evaluation of every conversation, and when each must be looked at again."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next refresh evaluates every conversation again."""
        self._evaluations: dict[str, Evaluation] = {}
        self._contacts: dict[str, dict[str, AccountContact]] = {}
        self._check_at: dict[str, datetime] = {}
        self._heap: list[tuple[datetime, str]] = []
        self._complete = False
        self._account_view: tuple[list[Evaluation], dict[str, AccountContact]] | None = None

    def refresh(self, reader: ConversationReader, rules: Rules, now: datetime) -> Refresh:
        """Evaluate what changed or fell due (everything on the first call) at ``now``."""
        journal_upto, changed = reader.changed_conversations()
        if self._complete:
            wanted: Iterable[str] = dict.fromkeys([*changed, *self._due(now)])
        else:
            wanted = reader.conversation_ids()
        evaluated: list[tuple[datetime, str, Evaluation]] = []
        with fewer_collections():
            for conversation_id in wanted:
                messages = reader.conversation_messages(conversation_id)
                if not messages:  # merged into another conversation
                    self._forget(conversation_id)
                    continue
                notices = reader.notices_for(conversation_id)
                evaluation = evaluate(conversation_id, messages, rules, notices, now)
                self._keep(conversation_id, evaluation, messages, rules, now)
                evaluated.append((messages[0].arrived_at, conversation_id, evaluation))
        if evaluated or not self._complete:
            self._account_view = None
        self._complete = True
        if len(self._heap) > 2 * len(self._check_at) + 64:
            # Every evaluation pushes its check time; drop the ones a later one replaced.
            self._heap = [(at, cid) for cid, at in self._check_at.items()]
            heapq.heapify(self._heap)
        evaluated.sort(key=lambda item: (item[0], item[1]))
        return Refresh([evaluation for _, _, evaluation in evaluated], journal_upto)

    def evaluations(self) -> list[Evaluation]:
        """The latest evaluation of every conversation."""
        return list(self._evaluations.values())

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
        self._evaluations[conversation_id] = evaluation
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

    def _forget(self, conversation_id: str) -> None:
        self._evaluations.pop(conversation_id, None)
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
            status = evaluation.status
            if status.account is None or status.opened_at is None:
                continue
            known = latest.get(status.account)
            known_opened = known.status.opened_at if known is not None else None
            if known_opened is None or status.opened_at > known_opened:
                latest[status.account] = evaluation
        return list(latest.values())

    def _merged_contacts(self) -> dict[str, AccountContact]:
        merged: dict[str, AccountContact] = {}
        for contacts in self._contacts.values():
            for name, contact in contacts.items():
                merged[name] = contact.merged(merged[name]) if name in merged else contact
        return merged
