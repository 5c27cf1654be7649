"""Conversation summaries (schema 8): each conversation's last evaluation, in brief.

A start reads the summaries made under its rules and evaluates only the conversations
that changed or fell due since (``evaluation_cache``). A summary is written in the same
transaction that forgets the journal entries it covers, so that either both are kept or
neither: the journal never loses a change that no summary took in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING

import orjson

from sla_daemon.adapters.store_base import iso_utc
from sla_daemon.adapters.store_changes import ChangeRecords
from sla_daemon.core.model import ClockName, ConversationState, Headline
from sla_daemon.summary_codec import ConversationSummary

_STATES = {state.value: state for state in ConversationState}


@lru_cache(maxsize=64)
def _breaches(stored: str) -> tuple[ClockName, ...]:
    """The breached clocks of a stored JSON list (a handful of distinct values in all)."""
    return tuple(ClockName(name) for name in orjson.loads(stored))


class SummaryRecords(ChangeRecords):
    """Reading the summaries made under some rules, and keeping new ones with the journal."""

    if TYPE_CHECKING:

        def transaction(self, *, refetchable: bool = False) -> AbstractContextManager[None]:
            """``Store.transaction``: one unit of work."""
            ...

    def summaries(self, rules_fingerprint: str) -> list[ConversationSummary]:
        """Every stored summary made under the rules of ``rules_fingerprint``."""
        rows = self._db.execute(
            "SELECT conversation_id, evaluated_at, check_at, cycle, state, account, "
            "opened_at, breaches, status, contacts FROM conversation_summaries WHERE rules = ?",
            (rules_fingerprint,),
        )
        parse = datetime.fromisoformat
        # A start reads every row: ``_make`` skips the per-field constructor of a named
        # tuple, and each distinct breaches value is decoded once.
        make_summary, make_headline = ConversationSummary._make, Headline._make
        return [
            make_summary(
                (
                    conversation_id,
                    rules_fingerprint,
                    parse(evaluated_at),
                    parse(check_at) if check_at is not None else None,
                    make_headline(
                        (
                            cycle,
                            _STATES[state],
                            account,
                            parse(opened_at) if opened_at is not None else None,
                            _breaches(breaches),
                        )
                    ),
                    status,
                    contacts,
                )
            )
            for (
                conversation_id,
                evaluated_at,
                check_at,
                cycle,
                state,
                account,
                opened_at,
                breaches,
                status,
                contacts,
            ) in rows
        ]

    def keep_summaries(
        self,
        summaries: Sequence[ConversationSummary],
        journal_upto: int,
        *,
        dropped: Iterable[str] = (),
    ) -> None:
        """Write ``summaries``, delete ``dropped``'s and forget the journal: one transaction.

        The journal is forgotten up to ``journal_upto``. Call it only once the decisions
        of the evaluations summed up are recorded.
        """
        with self.transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO conversation_summaries (conversation_id, rules, "
                "evaluated_at, check_at, cycle, state, account, opened_at, breaches, status, "
                "contacts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        summary.conversation_id,
                        summary.rules,
                        iso_utc(summary.evaluated_at),
                        iso_utc(summary.check_at) if summary.check_at is not None else None,
                        summary.headline.cycle,
                        summary.headline.state.value,
                        summary.headline.account,
                        (
                            iso_utc(summary.headline.opened_at)
                            if summary.headline.opened_at is not None
                            else None
                        ),
                        orjson.dumps(summary.headline.breaches).decode(),
                        summary.status,
                        summary.contacts,
                    )
                    for summary in summaries
                ),
            )
            self._db.executemany(
                "DELETE FROM conversation_summaries WHERE conversation_id = ?",
                ((conversation_id,) for conversation_id in dropped),
            )
            self.forget_changes(journal_upto)
