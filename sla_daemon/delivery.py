"""Delivery of decided notices: per recipient, held when it should wait, retried when it can.

The outbox decides and renders; this module gets the mail to each recipient:

- *Holding.* A team notice (anything but an auto-ack) waits ``digest_window`` after its
  decision so that notices close together travel as one mail; a recipient's quiet hours
  hold everything but breaches until they end. Held deliveries are stored ``held`` with
  the time they are due.
- *Batching.* When a recipient has several team notices due at once (and batching is on),
  they go out as ONE batch mail with its own deterministic Message-ID, recorded with the
  deliveries it carries before it is sent and sent as recorded until it settles
  (``delivery_batches``); each delivery in it is marked sent by it. A single due notice
  goes out as it was rendered.
- *Failures.* A server reply or connection problem that may pass (4xx, 421, refused or
  reset connections, timeouts) is retried after ``retry_first``, doubling up to
  ``retry_max``, until ``give_up_after`` after the decision; then, or on a permanent
  reply (5xx), the delivery is recorded ``failed`` with the reply and never tried again.
  Every time lives in the database, so a restart continues the same schedule.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import structlog
from tenacity import RetryCallState, wait_exponential

from sla_daemon.adapters.store import Store
from sla_daemon.adapters.store_deliveries import Delivery
from sla_daemon.config_notices import NoticesConfig
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery_batches import BatchDelivery, record_batch
from sla_daemon.delivery_failures import (
    SendFailure,
    failure_of,
    log_delivery_failed,
    log_retry_scheduled,
    refusal,
)
from sla_daemon.errors import PermanentError, StateWriteError, TransientError
from sla_daemon.ports import BatchedNotice, NoticeSender
from sla_daemon.quiet_hours import QuietHours

log = structlog.get_logger(__name__)

CLIENT_KINDS = frozenset({NoticeKind.AUTO_ACK})
"""Notices to clients: never held, never batched."""

UNBATCHED_KINDS = CLIENT_KINDS | {NoticeKind.BRIEFING, NoticeKind.WEEKLY_REPORT}
"""Never held for the batching window nor batched: the morning briefing and the weekly
report are summaries already, due at the time chosen for them (quiet hours still hold
them)."""


@dataclass(frozen=True)
class DeliverySettings:
    """How notices are delivered (``notices`` in the configuration).

    The defaults hold and batch nothing; ``app.py`` passes the configured values.
    """

    retry_first: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(minutes=10)
    give_up_after: timedelta = timedelta(days=2)
    digest_window: timedelta = timedelta(0)
    quiet_hours: Mapping[str, QuietHours] = field(default_factory=dict)


def delivery_settings(notices: NoticesConfig, timezone: str) -> DeliverySettings:
    """The settings of the ``notices`` section; quiet hours default to ``timezone``."""
    return DeliverySettings(
        retry_first=notices.delivery.retry_first,
        retry_max=notices.delivery.retry_max,
        give_up_after=notices.delivery.give_up_after,
        digest_window=notices.digest_window,
        quiet_hours={
            address.lower(): QuietHours(
                quiet.start, quiet.end, ZoneInfo(quiet.timezone or timezone)
            )
            for address, quiet in notices.quiet_hours.items()
        },
    )


def retry_wait(failures: int, settings: DeliverySettings) -> timedelta:
    """The wait after the ``failures``-th failed attempt in a row: first, doubling, capped.

    Computed by tenacity's ``wait_exponential`` (the project's retry library), which
    only needs the attempt number; the waiting itself is done by the runner, because a
    wait of minutes must survive a restart and must not block the other notices.
    """
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = max(1, failures)
    wait = wait_exponential(
        multiplier=settings.retry_first.total_seconds(),
        max=settings.retry_max.total_seconds(),
    )
    return timedelta(seconds=wait(state))


def hold_until(delivery: Delivery, now: datetime, settings: DeliverySettings) -> datetime | None:
    """Until when ``delivery`` must wait (batching window, quiet hours), or None: due now."""
    if delivery.kind in CLIENT_KINDS:
        return None
    window_end = delivery.decided_at + settings.digest_window
    if window_end > now and delivery.kind not in UNBATCHED_KINDS:
        return window_end
    quiet = settings.quiet_hours.get(delivery.recipient.lower())
    if quiet is None or delivery.kind is NoticeKind.BREACH:
        return None
    return quiet.until(now)


@runtime_checkable
class BatchRenderer(Protocol):
    """Builds the one mail that carries several notices to one recipient."""

    def render_batch(
        self, key: str, recipient: str, notices: Sequence[BatchedNotice], now: datetime
    ) -> EmailMessage:
        """The batch mail for ``recipient``; its Message-ID derives from ``key``."""
        ...


@dataclass
class DeliveryTally:
    """What delivery did in one pass: mails handed over, and each delivery's outcome."""

    mails_sent: int = 0
    mails_failed: int = 0
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per notice kind, per outcome (``sent``, ``held``, ``retrying``, ``failed``)."""

    def count(self, kind: NoticeKind, outcome: str, number: int = 1) -> None:
        """Count ``number`` deliveries of ``kind`` with ``outcome``."""
        by_outcome = self.outcomes.setdefault(str(kind), {})
        by_outcome[outcome] = by_outcome.get(outcome, 0) + number


def _parse(payload: bytes) -> EmailMessage:
    message = email.message_from_bytes(payload, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def batched_notice(delivery: Delivery) -> BatchedNotice:
    """The subject and plain text of a stored notice, for a batch."""
    assert delivery.payload is not None  # deliveries exist only for notices with mail
    message = _parse(delivery.payload)
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if isinstance(body, EmailMessage) else ""
    return BatchedNotice(delivery.key, delivery.kind, str(message["Subject"] or ""), text)


class NoticeDelivery:
    """Delivers what the outbox holds; see the module docstring."""

    def __init__(
        self,
        *,
        store: Store,
        sender: NoticeSender,
        settings: DeliverySettings,
        batch_renderer: BatchRenderer | None,
        unrecorded: list[Callable[[], None]] | None = None,
    ) -> None:
        self.store = store
        self.sender = sender
        self.settings = settings
        self.batch_renderer = batch_renderer
        self.unrecorded = [] if unrecorded is None else unrecorded
        """Records of mail that went out but could not be written (a full disk); the
        list outlives this object, so that a later run writes them before sending."""

    def run(self, now: datetime) -> DeliveryTally:
        """Hold, batch, send and record every delivery due at ``now``."""
        tally = DeliveryTally()
        self._catch_up()
        due: list[Delivery] = []
        recorded: dict[str, None] = {}  # batches recorded earlier, to send as recorded
        for delivery in self.store.open_deliveries(now):
            if delivery.via is not None:
                recorded[delivery.via] = None
                continue
            until = hold_until(delivery, now, self.settings)
            if until is not None and until > now:
                with self.store.transaction():
                    self.store.hold_delivery(delivery.key, delivery.recipient, until)
                tally.count(delivery.kind, "held")
                log.info(
                    "notice.held",
                    key=delivery.key,
                    recipient=delivery.recipient,
                    until=until.isoformat(),
                    reason=self._hold_reason(delivery, now),
                )
                continue
            due.append(delivery)
        for key in recorded:
            self._batches().resend(key, now, tally)
        due += self._joining(due, now)
        singles, batches = self._group(due)
        for recipient, grouped in batches.items():
            self._send_batch(recipient, grouped, now, tally)
        for grouped in singles.values():
            self._send_notice(grouped, now, tally)
        return tally

    def _joining(self, due: Sequence[Delivery], now: datetime) -> list[Delivery]:
        """Held notices that join a recipient's batch early rather than wait for their own.

        When a team notice falls due, the same recipient's notices still in their batching
        window (and held by nothing else) go with it: notices decided within one window
        of each other travel together, in one mail.
        """
        if self.batch_renderer is None or self.settings.digest_window <= timedelta(0):
            return []
        taken = {(d.key, d.recipient) for d in due}
        recipients = dict.fromkeys(d.recipient for d in due if d.kind not in UNBATCHED_KINDS)
        joining = []
        for recipient in recipients:
            quiet = self.settings.quiet_hours.get(recipient.lower())
            for held in self.store.held_for(recipient):
                in_window = held.decided_at + self.settings.digest_window > now
                kept_quiet = (
                    quiet is not None
                    and held.kind is not NoticeKind.BREACH
                    and quiet.until(now) is not None
                )
                if held.kind in UNBATCHED_KINDS or held.via is not None:
                    continue
                if (held.key, recipient) not in taken and in_window and not kept_quiet:
                    joining.append(held)
        return joining

    def _hold_reason(self, delivery: Delivery, now: datetime) -> str:
        in_window = delivery.decided_at + self.settings.digest_window > now
        if in_window and delivery.kind not in UNBATCHED_KINDS:
            return "batching window: notices close together go out as one mail"
        return "the recipient's quiet hours"

    def _group(
        self, due: Sequence[Delivery]
    ) -> tuple[dict[str, list[Delivery]], dict[str, list[Delivery]]]:
        """Due deliveries as notices to send as rendered, and batches per recipient."""
        per_recipient: dict[str, list[Delivery]] = {}
        batching = self.batch_renderer is not None and self.settings.digest_window > timedelta(0)
        if batching:
            for delivery in due:
                if delivery.kind not in UNBATCHED_KINDS:
                    per_recipient.setdefault(delivery.recipient, []).append(delivery)
        batches = {r: items for r, items in per_recipient.items() if len(items) > 1}
        singles: dict[str, list[Delivery]] = {}
        for delivery in due:
            if delivery.recipient not in batches or delivery.kind in UNBATCHED_KINDS:
                singles.setdefault(delivery.key, []).append(delivery)
        return singles, batches

    def _send_notice(self, deliveries: list[Delivery], now: datetime, tally: DeliveryTally) -> None:
        """Send one notice as rendered to its due recipients (the same Message-ID each time)."""
        first = deliveries[0]
        assert first.payload is not None  # deliveries exist only for notices with mail
        recipients = [d.recipient for d in deliveries]
        try:
            refused = self.sender.send(_parse(first.payload), recipients)
        except (TransientError, PermanentError) as exc:
            tally.mails_failed += 1
            with self.store.transaction():
                for delivery in deliveries:
                    self._record_failure(delivery, failure_of(exc, delivery.recipient), now, tally)
            return
        tally.mails_sent += 1

        def record() -> None:
            for delivery in deliveries:
                if delivery.recipient in refused:
                    failure = refusal(delivery.recipient, *refused[delivery.recipient])
                    self._record_failure(delivery, failure, now, tally)
                    continue
                self.store.mark_delivered(delivery.key, delivery.recipient, now, None)
                tally.count(delivery.kind, "sent")

        self._record_sent(record)
        log.info(
            "notice.sent",
            key=first.key,
            kind=first.kind.value,
            recipients=[r for r in recipients if r not in refused],
            message_id=first.message_id,
        )

    def _send_batch(
        self, recipient: str, deliveries: list[Delivery], now: datetime, tally: DeliveryTally
    ) -> None:
        """Record several notices to ``recipient`` as one batch mail, then send it."""
        assert self.batch_renderer is not None  # batches are only formed with a renderer
        notices = [batched_notice(d) for d in deliveries]
        batch = record_batch(self.store, self.batch_renderer, deliveries, notices, now)
        self._batches().send(batch, deliveries, now, tally)

    def _batches(self) -> BatchDelivery:
        """Sending recorded batch mails, with this delivery's settings and records."""
        return BatchDelivery(
            store=self.store,
            sender=self.sender,
            settings=self.settings,
            backoff=retry_wait,
            record_sent=self._record_sent,
        )

    def _record_sent(self, record: Callable[[], None]) -> None:
        """Write what became of a mail that went out; keep it for later if that fails.

        A full disk refuses the write after the server took the mail: left pending, the
        same mail would go again at every cycle until there is room. Kept in
        ``unrecorded`` instead, it is written first thing in a later run, before anything
        is sent (only a restart in between sends it once more, as after a crash).
        """
        try:
            with self.store.transaction():
                record()
        except StateWriteError:
            self.unrecorded.append(record)
            raise

    def _catch_up(self) -> None:
        """Write the records ``_record_sent`` could not; raise ``StateWriteError`` if still not."""
        if not self.unrecorded:
            return
        with self.store.transaction():
            for record in self.unrecorded:
                record()
        log.info("notice.records_caught_up", mails=len(self.unrecorded))
        self.unrecorded.clear()

    def _record_failure(
        self, delivery: Delivery, failure: SendFailure, now: datetime, tally: DeliveryTally
    ) -> None:
        """Schedule the next attempt, or record the delivery failed for good."""
        code, error, permanent = failure
        give_up_at = delivery.decided_at + self.settings.give_up_after
        if permanent or now >= give_up_at:
            self.store.mark_delivery_failed(delivery.key, delivery.recipient, code, error)
            tally.count(delivery.kind, "failed")
            log_delivery_failed(delivery, failure, delivery.attempts + 1)
            return
        failures = delivery.attempts + 1
        next_at = min(now + retry_wait(failures, self.settings), give_up_at)
        self.store.mark_delivery_retry(delivery.key, delivery.recipient, code, error, next_at)
        tally.count(delivery.kind, "retrying")
        log_retry_scheduled(delivery, failure, failures, next_at)
