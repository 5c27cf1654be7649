"""Batch mails: recorded before they are sent, then sent as recorded until they settle.

When a recipient has several team notices due at once, ``delivery`` composes ONE mail for
them. It is recorded first (its key, recipient, Message-ID and bytes, and the deliveries
it carries, in one transaction), then sent. Whatever happens next (a 4xx, a crash between
the server's acceptance and the record, a restart while other notices fell due for the
recipient), the next attempt sends the recorded bytes, with the same Message-ID, for the
same deliveries: a batch is never composed twice.

The failure rules are those of a single notice: a transient failure is retried after the
backoff (counted per batch), a permanent one fails every delivery in it, and so does one
still failing ``give_up_after`` after the decision of its youngest notice (no notice in it
is given up sooner than it would be on its own). The recipient's quiet hours hold a
recorded batch as a whole unless it carries a breach.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING

import structlog

from sla_daemon.adapters.store import Store
from sla_daemon.adapters.store_batches import RecordedBatch
from sla_daemon.adapters.store_deliveries import Delivery
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery_failures import (
    SendFailure,
    failure_of,
    log_delivery_failed,
    log_retry_scheduled,
    refusal,
)
from sla_daemon.errors import PermanentError, TransientError
from sla_daemon.ports import BatchedNotice, NoticeSender

if TYPE_CHECKING:
    from sla_daemon.delivery import BatchRenderer, DeliverySettings, DeliveryTally

log = structlog.get_logger(__name__)


def batch_key(recipient: str, deliveries: Sequence[Delivery]) -> str:
    """A batch's key: the same recipient and first notice give the same Message-ID."""
    return f"batch|{recipient}|{deliveries[0].key}"


def record_batch(
    store: Store,
    renderer: BatchRenderer,
    deliveries: Sequence[Delivery],
    notices: Sequence[BatchedNotice],
    now: datetime,
) -> RecordedBatch:
    """Render the batch mail for ``deliveries`` (one recipient's) and record it with them."""
    recipient = deliveries[0].recipient
    key = batch_key(recipient, deliveries)
    message = renderer.render_batch(key, recipient, notices, now)
    batch = RecordedBatch(
        key=key,
        recipient=recipient,
        message_id=str(message["Message-ID"]),
        payload=message.as_bytes(),
        state="pending",
        attempts=0,
        recorded_at=now,
    )
    with store.transaction():
        store.record_batch(batch, [d.key for d in deliveries])
    log.info(
        "notice.batch_recorded",
        key=key,
        recipient=recipient,
        notices=[d.key for d in deliveries],
        message_id=batch.message_id,
    )
    return batch


class BatchDelivery:
    """Sends recorded batch mails as recorded and records what became of them."""

    def __init__(
        self,
        *,
        store: Store,
        sender: NoticeSender,
        settings: DeliverySettings,
        backoff: Callable[[int, DeliverySettings], timedelta],
        record_sent: Callable[[Callable[[], None]], None],
    ) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings
        self.backoff = backoff
        """The wait after the n-th failed attempt in a row (``delivery.retry_wait``)."""
        self.record_sent = record_sent
        """Writes a sent mail's records, or keeps them for later (``NoticeDelivery``)."""

    def resend(self, key: str, now: datetime, tally: DeliveryTally) -> None:
        """Send batch ``key``, recorded before (a retry, a restart), exactly as recorded."""
        batch = self.store.batch(key)
        assert batch is not None  # recorded in the transaction that set its deliveries' via
        members = self.store.batch_deliveries(key)
        quiet = self.settings.quiet_hours.get(batch.recipient.lower())
        until = None
        if quiet is not None and all(d.kind is not NoticeKind.BREACH for d in members):
            until = quiet.until(now)
        if until is None:
            self.send(batch, members, now, tally)
            return
        with self.store.transaction():
            for delivery in members:
                self.store.hold_delivery(delivery.key, batch.recipient, until)
                tally.count(delivery.kind, "held")
        log.info(
            "notice.held",
            key=key,
            recipient=batch.recipient,
            until=until.isoformat(),
            reason="the recipient's quiet hours",
        )

    def send(
        self, batch: RecordedBatch, members: Sequence[Delivery], now: datetime, tally: DeliveryTally
    ) -> None:
        """Send the recorded bytes; the deliveries it carries are marked together."""
        message = email.message_from_bytes(batch.payload, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        try:
            refused = self.sender.send(message, [batch.recipient])
        except (TransientError, PermanentError) as exc:
            tally.mails_failed += 1
            with self.store.transaction():
                self._failed(batch, members, failure_of(exc, batch.recipient), now, tally)
            return
        tally.mails_sent += 1

        def record() -> None:
            if batch.recipient in refused:
                failure = refusal(batch.recipient, *refused[batch.recipient])
                self._failed(batch, members, failure, now, tally)
                return
            self.store.settle_batch(batch.key, "sent")
            for delivery in members:
                self.store.mark_delivered(delivery.key, batch.recipient, now, batch.key)
                tally.count(delivery.kind, "sent")

        self.record_sent(record)
        log.info(
            "notice.batch_sent",
            key=batch.key,
            recipient=batch.recipient,
            notices=[d.key for d in members],
            message_id=batch.message_id,
            attempt=batch.attempts + 1,
        )

    def _failed(
        self,
        batch: RecordedBatch,
        members: Sequence[Delivery],
        failure: SendFailure,
        now: datetime,
        tally: DeliveryTally,
    ) -> None:
        """Retry the batch after the backoff, or fail every delivery it carries for good.

        Written in the caller's transaction; each delivery is logged as a single notice's
        is (``notice.retry_scheduled``, ``notice.delivery_failed``), with the batch named.
        """
        code, error, permanent = failure
        give_up_at = max(d.decided_at for d in members) + self.settings.give_up_after
        attempt = batch.attempts + 1
        if permanent or now >= give_up_at:
            self.store.settle_batch(batch.key, "failed")
            for delivery in members:
                self.store.mark_delivery_failed(delivery.key, batch.recipient, code, error)
                tally.count(delivery.kind, "failed")
                log_delivery_failed(delivery, failure, attempt, batch=batch.key)
            return
        next_at = min(now + self.backoff(attempt, self.settings), give_up_at)
        self.store.settle_batch(batch.key, "pending")
        for delivery in members:
            self.store.mark_delivery_retry(delivery.key, batch.recipient, code, error, next_at)
            tally.count(delivery.kind, "retrying")
            log_retry_scheduled(delivery, failure, attempt, next_at, batch=batch.key)
