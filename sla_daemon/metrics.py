"""What the daemon exports on ``/metrics``, and what ``/healthz`` judges by.

One ``DaemonMetrics`` lives as long as the process: a reload builds a new service but
keeps these figures (counters go on counting). It is updated after every cycle from the
cycle's report and the conversation counts the evaluation cache keeps (nothing is
evaluated or walked again), and the IMAP sources count their reconnects into it. Times
since the last sync are computed when scraped, so a hung loop shows as a growing number.
The metric names and labels are listed in docs/operations.md.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from sla_daemon.clock import Clock
from sla_daemon.conversation_counts import ConversationCounts
from sla_daemon.health import health_problems
from sla_daemon.service import CycleReport

NO_ACCOUNT = "(none)"
"""The ``account`` label of conversations outside every configured account."""


class DaemonMetrics:
    """The daemon's figures in a registry of its own, and the state health is judged on."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._last_synced: dict[str, datetime] = {}
        self._poll_interval = timedelta(seconds=60)
        self._oldest_due_delivery: datetime | None = None
        registry = self.registry
        self.conversations = Gauge(
            "sla_daemon_conversations",
            "Client conversations by state and account, as of the last cycle.",
            ["state", "account"],
            registry=registry,
        )
        self.breaches = Gauge(
            "sla_daemon_breaches",
            "Conversations whose clock is breached, by clock and account.",
            ["clock", "account"],
            registry=registry,
        )
        self.notices_sent = Counter(
            "sla_daemon_notices_sent",
            "Notice deliveries handed to the SMTP server, per recipient, by kind.",
            ["kind"],
            registry=registry,
        )
        self.notices_failed = Counter(
            "sla_daemon_notices_failed",
            "Notice deliveries that failed for good, per recipient, by kind.",
            ["kind"],
            registry=registry,
        )
        self.notices_suppressed = Counter(
            "sla_daemon_notices_suppressed",
            "Notices decided but not sent, by reason.",
            ["reason"],
            registry=registry,
        )
        self.outbox_depth = Gauge(
            "sla_daemon_outbox_depth",
            "Deliveries still to go after the last cycle, by state (pending, held).",
            ["state"],
            registry=registry,
        )
        self.imap_reconnects = Counter(
            "sla_daemon_imap_reconnects",
            "IMAP connections made again after one was lost, by mailbox.",
            ["mailbox"],
            registry=registry,
        )
        self.cycles = Counter(
            "sla_daemon_cycles", "Cycles run (sync, evaluate, send).", registry=registry
        )
        registry.register(_SinceSync(self))

    # -- what the daemon tells it --------------------------------------------------------

    def watch(self, mailboxes: Sequence[str], poll_interval: timedelta) -> None:
        """The configured mailboxes (at start and after a reload) and the poll interval.

        A new mailbox counts as synced now: it gets three poll intervals to be read
        before it makes the daemon unhealthy. A removed one is forgotten.
        """
        now = self.clock.now()
        with self._lock:
            self._poll_interval = poll_interval
            self._last_synced = {m: self._last_synced.get(m, now) for m in mailboxes}

    def reconnect_counter(self, mailbox: str) -> Callable[[], None]:
        """A callback that counts one IMAP reconnect of ``mailbox`` (safe from any thread)."""
        child = self.imap_reconnects.labels(mailbox=mailbox)
        return child.inc

    def observe_cycle(
        self,
        report: CycleReport,
        conversations: ConversationCounts,
        open_deliveries: dict[str, int],
        oldest_due_delivery: datetime | None,
    ) -> None:
        """Take in one cycle: its report, the conversations' counts and the outbox after it."""
        now = self.clock.now()
        self.cycles.inc()
        for kind, outcomes in report.deliveries.items():
            if outcomes.get("sent"):
                self.notices_sent.labels(kind=kind).inc(outcomes["sent"])
            if outcomes.get("failed"):
                self.notices_failed.labels(kind=kind).inc(outcomes["failed"])
        for reason, count in report.suppressed_by_reason.items():
            self.notices_suppressed.labels(reason=reason).inc(count)
        self._observe_conversations(conversations)
        for state, count in open_deliveries.items():
            self.outbox_depth.labels(state=state).set(count)
        with self._lock:
            for mailbox in report.synced:
                if mailbox in self._last_synced:
                    self._last_synced[mailbox] = now
            self._oldest_due_delivery = oldest_due_delivery

    def _observe_conversations(self, conversations: ConversationCounts) -> None:
        # Replaced as a whole: a state no conversation is in any more must read 0, not stay.
        self.conversations.clear()
        for (state, account), count in conversations.by_state().items():
            self.conversations.labels(state=str(state), account=account or NO_ACCOUNT).set(count)
        self.breaches.clear()
        for (clock_name, account), count in conversations.by_breach().items():
            self.breaches.labels(clock=str(clock_name), account=account or NO_ACCOUNT).set(count)

    # -- what the listener asks ----------------------------------------------------------

    def seconds_since_sync(self) -> dict[str, float]:
        """Per mailbox, seconds since it was last read completely (or began to be watched)."""
        now = self.clock.now()
        with self._lock:
            return {m: (now - at).total_seconds() for m, at in self._last_synced.items()}

    def health_problems(self) -> list[str]:
        """Why the daemon is unhealthy now, one line per reason (empty: healthy)."""
        now = self.clock.now()
        with self._lock:
            return health_problems(
                now, dict(self._last_synced), self._poll_interval, self._oldest_due_delivery
            )


class _SinceSync(Collector):
    """``sla_daemon_mailbox_seconds_since_sync``, computed at scrape time."""

    def __init__(self, metrics: DaemonMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """One sample per watched mailbox."""
        family = GaugeMetricFamily(
            "sla_daemon_mailbox_seconds_since_sync",
            "Seconds since the mailbox was last read completely (or began to be watched).",
            labels=["mailbox"],
        )
        for mailbox, seconds in sorted(self.metrics.seconds_since_sync().items()):
            family.add_metric([mailbox], seconds)
        yield family
