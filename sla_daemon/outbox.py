"""The outbox: decisions in, each notice recorded once, rendered, then sent and marked.

A decision is recorded under its deterministic key before anything is sent, together
with the rendered mail and a pending delivery per recipient; the flush hands what is
due to ``delivery`` (holding, batching, retries), which marks each as sent right after.
A restart therefore never loses a due notice and never sends one twice (the one in
flight at a crash may go once more, with the same Message-ID).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

import structlog

from sla_daemon.adapters.store import Store
from sla_daemon.auto_ack_limits import apply_sender_cap, count_suppression
from sla_daemon.clock import Clock
from sla_daemon.core.model import (
    Account,
    ConversationStatus,
    Decision,
    Evaluation,
    MessageFacts,
    NoticeKind,
    Rules,
)
from sla_daemon.delivery import BatchRenderer, DeliverySettings, NoticeDelivery
from sla_daemon.ports import NoticeSender

log = structlog.get_logger(__name__)

_IN_SUMMARY = "already past due when first seen"  # the reason given in _record_digest
DigestItem = tuple[Decision, ConversationStatus, Account | None]


class NoticeRenderer(Protocol):
    """Turns decisions into the mail that carries them (``adapters.render``)."""

    def render(
        self,
        decision: Decision,
        status: ConversationStatus,
        trigger: MessageFacts | None,
        account: Account | None,
        now: datetime,
        *,
        history: Sequence[MessageFacts] = (),
    ) -> EmailMessage:
        """Build the notice for ``decision``; ``history`` is the conversation's mail."""
        ...

    def render_digest(
        self, key: str, owner: str, items: Sequence[DigestItem], now: datetime
    ) -> EmailMessage:
        """Build one summary of several pre-existing breaches for ``owner``."""
        ...


@dataclass
class OutboxReport:
    """What the outbox did in one cycle."""

    decided: int = 0
    suppressed: int = 0
    sent: int = 0
    failed: int = 0
    next_check_at: datetime | None = None
    digests: list[str] = field(default_factory=list)
    # Per notice kind, per delivery outcome (sent, held, retrying, failed): a count.
    deliveries: dict[str, dict[str, int]] = field(default_factory=dict)
    # Suppressed notices and unanswered inbox mail, by reason code (auto_ack_limits).
    suppressed_by_reason: Counter[str] = field(default_factory=Counter)


class Outbox:
    """Records decisions once and sends what is pending."""

    def __init__(
        self,
        *,
        store: Store,
        renderer: NoticeRenderer,
        sender: NoticeSender,
        rules: Rules,
        clock: Clock,
        dry_run: bool = False,
        delivery: DeliverySettings | None = None,
    ) -> None:
        self.store = store
        self.delivery = delivery or DeliverySettings()
        self.renderer = renderer
        self.sender = sender
        self.rules = rules
        self.clock = clock
        self.dry_run = dry_run
        self._unrecorded: list[Callable[[], None]] = []  # see NoticeDelivery.unrecorded

    def decide(
        self, evaluations: Sequence[Evaluation], now: datetime, report: OutboxReport
    ) -> None:
        """Record every decision not taken before (rendered), or log it on a dry run.

        Breaches that were already past due when the daemon first saw the conversation
        (a first start, a newly added mailbox) are not sent one by one: an owner with
        such breaches in several conversations gets one summary of them.
        """
        digests: dict[str, list[DigestItem]] = {}
        for evaluation in evaluations:
            if evaluation.next_check_at is not None and (
                report.next_check_at is None or evaluation.next_check_at < report.next_check_at
            ):
                report.next_check_at = evaluation.next_check_at
            for decision in evaluation.decisions:
                if self.store.is_decided(decision.key):
                    continue
                decision = apply_sender_cap(
                    decision, self.store, self.rules.auto_ack_per_sender_per_day, now
                )
                if self.dry_run:
                    # Rendered as for real, so a broken template shows on a dry run too.
                    subject = None
                    if decision.suppressed_reason is None:
                        subject = str(self._render(decision, evaluation.status, now)["Subject"])
                    log.info(
                        "notice.would_decide",
                        key=decision.key,
                        kind=decision.kind.value,
                        recipients=list(decision.recipients),
                        subject=subject,
                        suppressed=decision.suppressed_reason,
                        pre_existing=decision.pre_existing,
                    )
                    continue
                if decision.pre_existing and decision.suppressed_reason is None:
                    account = self._account(evaluation.status)
                    owner = account.owner if account else decision.recipients[0]
                    digests.setdefault(owner, []).append((decision, evaluation.status, account))
                    continue
                self._record(decision, evaluation.status, now, report)
                count_suppression(report.suppressed_by_reason, decision.suppressed_reason)
        for owner, items in sorted(digests.items()):
            if len({decision.conversation_id for decision, _, _ in items}) == 1:
                # One late conversation is told the usual way (owner and leads); the
                # summary spares an owner a mail per conversation, it hides nothing.
                for decision, status, _ in items:
                    self._record(decision, status, now, report)
            else:
                self._record_digest(owner, items, now, report)
                count_suppression(report.suppressed_by_reason, _IN_SUMMARY, len(items))

    def _account(self, status: ConversationStatus) -> Account | None:
        return self.rules.account_named(status.account) if status.account else None

    def _render(
        self, decision: Decision, status: ConversationStatus, now: datetime
    ) -> EmailMessage:
        """The notice for ``decision``, as it would be recorded and sent."""
        trigger = (
            self.store.message(decision.trigger_message_id) if decision.trigger_message_id else None
        )
        # An escalation quotes the client's latest words and names who acknowledged.
        history = (
            self.store.conversation_messages(decision.conversation_id)
            if decision.kind in (NoticeKind.WARNING, NoticeKind.BREACH)
            else ()
        )
        return self.renderer.render(
            decision, status, trigger, self._account(status), now, history=history
        )

    def _record(
        self, decision: Decision, status: ConversationStatus, now: datetime, report: OutboxReport
    ) -> None:
        payload: bytes | None = None
        message_id: str | None = None
        if decision.suppressed_reason is None:
            message = self._render(decision, status, now)
            payload, message_id = message.as_bytes(), str(message["Message-ID"])
        with self.store.transaction():
            self.store.decide(
                decision.key,
                decision.conversation_id,
                decision.kind,
                decision.recipients,
                now,
                payload=payload,
                message_id=message_id,
                suppressed_reason=decision.suppressed_reason,
            )
        if decision.suppressed_reason is not None:
            report.suppressed += 1
            log.info(
                "notice.suppressed",
                key=decision.key,
                kind=decision.kind.value,
                reason=decision.suppressed_reason,
            )
        else:
            report.decided += 1
            log.info(
                "notice.queued",
                key=decision.key,
                kind=decision.kind.value,
                recipients=list(decision.recipients),
            )

    def _record_digest(
        self, owner: str, items: list[DigestItem], now: datetime, report: OutboxReport
    ) -> None:
        """One summary mail for ``owner``; each breach in it is recorded as covered by it.

        All in one transaction: a breach is either in exactly one summary or in none.
        """
        key = f"digest|{owner}|{now.isoformat(timespec='seconds')}"
        message = self.renderer.render_digest(key, owner, items, now)
        reason = f"already past due when first seen; reported in the summary {key}"
        with self.store.transaction():
            self.store.decide(
                key,
                "",
                NoticeKind.DIGEST,
                (owner,),
                now,
                payload=message.as_bytes(),
                message_id=str(message["Message-ID"]),
            )
            for decision, _, _ in items:
                self.store.decide(
                    decision.key,
                    decision.conversation_id,
                    decision.kind,
                    decision.recipients,
                    now,
                    suppressed_reason=reason,
                )
        report.decided += 1
        report.suppressed += len(items)
        report.digests.append(key)
        log.info("notice.digest_queued", key=key, owner=owner, breaches=len(items))

    def flush(self, report: OutboxReport) -> None:
        """Deliver what is due (``delivery.NoticeDelivery``); the runner wakes for the rest.

        Nothing is sent or marked on a dry run.
        """
        if self.dry_run:
            return
        renderer = self.renderer if isinstance(self.renderer, BatchRenderer) else None
        delivery = NoticeDelivery(
            store=self.store,
            sender=self.sender,
            settings=self.delivery,
            batch_renderer=renderer,
            unrecorded=self._unrecorded,
        )
        tally = delivery.run(self.clock.now())
        report.sent += tally.mails_sent
        report.failed += tally.mails_failed
        for kind, outcomes in tally.outcomes.items():
            counts = report.deliveries.setdefault(kind, {})
            for outcome, number in outcomes.items():
                counts[outcome] = counts.get(outcome, 0) + number
        waiting = self.store.next_delivery_at()
        if waiting is not None and (report.next_check_at is None or waiting < report.next_check_at):
            report.next_check_at = waiting
