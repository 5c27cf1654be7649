"""One cycle of the daemon: sync every source, thread, evaluate, enqueue, flush.

The service orchestrates; the core decides; adapters come in through the constructor
(built in ``app.py``), so unit tests can hand it fakes and integration tests real servers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

import structlog
from structlog.typing import FilteringBoundLogger

from sla_daemon.adapters.store import Store
from sla_daemon.auto_ack_limits import note_inbound
from sla_daemon.briefings import Briefings
from sla_daemon.clock import Clock
from sla_daemon.core.classify import classify
from sla_daemon.core.model import (
    Evaluation,
    FolderKind,
    MessageFacts,
    Rules,
)
from sla_daemon.core.threads import ids_to_link, plan_threading, without_known_people
from sla_daemon.delivery import DeliverySettings
from sla_daemon.errors import AuthenticationError, TransientError
from sla_daemon.evaluation import evaluate_all
from sla_daemon.evaluation_cache import EvaluationCache
from sla_daemon.outbox import NoticeRenderer, Outbox, OutboxReport
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor, MailSource, NoticeSender
from sla_daemon.weekly_reports import WeeklyReports

log = structlog.get_logger(__name__)


class MessageParser(Protocol):
    """Turns fetched bytes into facts (``adapters.mailparse.parse_message``)."""

    def __call__(
        self,
        raw: bytes,
        *,
        mailbox: str,
        folder: str,
        folder_kind: FolderKind,
        internaldate: datetime | None,
        flags: Sequence[str],
        max_body_bytes: int,
        now: datetime,
        extra_headers: Sequence[str],
    ) -> MessageFacts:
        """Parse one message; raise an exception with a ``reason`` when it cannot."""
        ...


@dataclass
class CycleReport(OutboxReport):
    """What one cycle did, for logs, for ``run --once`` and for the runner's next wake-up."""

    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    source_errors: list[str] = field(default_factory=list)
    login_failures: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)
    """The mailboxes read completely in this cycle."""


@dataclass(frozen=True)
class IngestSettings:
    """How the service reads mail."""

    backfill: timedelta = timedelta(days=14)
    max_body_bytes: int = 256 * 1024


class SlaService:
    """Runs cycles over a store, sources, a renderer and a sender."""

    def __init__(
        self,
        *,
        store: Store,
        sources: Sequence[MailSource],
        parse: MessageParser,
        is_malformed: Callable[[Exception], str | None],
        renderer: NoticeRenderer,
        sender: NoticeSender,
        rules: Rules,
        clock: Clock,
        ingest: IngestSettings = IngestSettings(),
        dry_run: bool = False,
        briefings: Briefings | None = None,
        delivery: DeliverySettings | None = None,
        weekly_reports: WeeklyReports | None = None,
        evaluation_cache: EvaluationCache | None = None,
    ) -> None:
        self.store = store
        self.sources = sources
        self.parse = parse
        self.is_malformed = is_malformed
        self.outbox = Outbox(
            store=store,
            renderer=renderer,
            sender=sender,
            rules=rules,
            clock=clock,
            delivery=delivery,
        )
        self.rules = rules
        self.clock = clock
        self.ingest = ingest
        self.dry_run = dry_run
        self.briefings = briefings
        """The owners' morning briefings (``notices.briefing_at``), or None."""
        self.weekly_reports = weekly_reports
        """The weekly report (``reports.weekly``), or None."""
        self.evaluation_cache = evaluation_cache or EvaluationCache()
        """Every conversation's latest evaluation; a cycle refreshes what changed or fell due."""
        self.last_evaluations: list[Evaluation] = []
        """Every conversation's latest evaluation after the last ``decide``, and the check-ins."""
        self._extra_headers = tuple(rules.markers.action_plan.headers) + tuple(
            rules.markers.waiting_on_client.headers
        )

    def close(self) -> None:
        """Close every source's connections and the state database."""
        for source in self.sources:
            source.close()
        self.store.close()

    def run_cycle(self) -> CycleReport:
        """One pass: sync, thread, evaluate, enqueue decisions, flush the outbox."""
        report = CycleReport()
        self.sync(report)
        self.decide(report)
        if not self.dry_run:
            self.flush(report)
        log.info(
            "cycle.done",
            fetched=report.fetched,
            stored=report.stored,
            duplicates=report.duplicates,
            quarantined=report.quarantined,
            decided=report.decided,
            suppressed=report.suppressed,
            suppressed_by_reason=dict(sorted(report.suppressed_by_reason.items())),
            sent=report.sent,
            failed=report.failed,
            deliveries=report.deliveries,
            source_errors=len(report.source_errors) + len(report.login_failures),
        )
        return report

    # -- sync ----------------------------------------------------------------------------

    def sync(self, report: CycleReport) -> None:
        """Read every source; one failing source is logged and the others go on."""
        for source in self.sources:
            backfill_since = self.clock.now() - self.ingest.backfill
            try:
                for batch in source.poll(self.store.cursors(source.name), backfill_since):
                    self._store_batch(batch, report)
                report.synced.append(source.name)
            except AuthenticationError as exc:
                log.error("source.login_refused", mailbox=source.name, error=str(exc))
                report.login_failures.append(f"{source.name}: {exc}")
                source.close()
            except TransientError as exc:
                log.warning("source.unavailable", mailbox=source.name, error=str(exc))
                report.source_errors.append(f"{source.name}: {exc}")
                source.close()

    def _store_batch(self, batch: FolderBatch, report: CycleReport) -> None:
        """Store one batch and advance the folder's cursor in the same transaction."""
        now = self.clock.now()
        parsed: list[tuple[FetchedMessage, MessageFacts]] = []
        counts_before = (report.stored, report.duplicates, report.quarantined)
        roles: dict[str, int] = {}
        with self.store.transaction(refetchable=True):
            for fetched in batch.messages:
                report.fetched += 1
                facts = self._parse(batch, fetched, now, report)
                if facts is not None:
                    parsed.append((fetched, without_known_people(facts, self.rules)))
            parsed.sort(key=lambda pair: (pair[1].arrived_at, pair[1].message_id))
            # The links of the whole batch in one lookup, kept current as it is stored.
            links = self.store.conversation_links(
                message_id for _, facts in parsed for message_id in ids_to_link(facts)
            )
            known = self.store.messages(facts.message_id for _, facts in parsed)
            # Bound once: each call through the module's lazy logger binds anew.
            batch_log = log.bind(mailbox=batch.mailbox, folder=batch.folder)
            for fetched, facts in parsed:
                role = self._store_message(
                    batch, fetched, facts, now, report, links, known, batch_log
                )
                if role is not None:
                    roles[role] = roles.get(role, 0) + 1
            self.store.set_cursor(
                batch.mailbox, batch.folder, FolderCursor(batch.uidvalidity, batch.last_uid), now
            )
            self._apply_flag_changes(batch)
        if batch.messages:
            # One line per batch; each message's own line is at debug level.
            stored, duplicates, quarantined = counts_before
            log.info(
                "batch.stored",
                mailbox=batch.mailbox,
                folder=batch.folder,
                fetched=len(batch.messages),
                stored=report.stored - stored,
                duplicates=report.duplicates - duplicates,
                quarantined=report.quarantined - quarantined,
                roles=dict(sorted(roles.items())),
            )

    def _apply_flag_changes(self, batch: FolderBatch) -> None:
        """Record each location's flags, apply the batch's flag updates, keep its MODSEQ.

        Runs inside the batch's transaction, after its messages and cursor are stored.
        Keywords are stored facts, so the next evaluation sees a keyword set (or taken
        away) after a message was first read, e.g. ``$ActionPlan`` set on a reply in Sent.
        """
        self.store.record_location_keywords(
            batch.mailbox,
            batch.folder,
            batch.uidvalidity,
            [(fetched.uid, fetched.flags) for fetched in batch.messages],
        )
        for uid, flags in batch.flag_updates:
            change = self.store.set_location_keywords(
                batch.mailbox, batch.folder, batch.uidvalidity, uid, flags
            )
            if change is not None:
                log.info(
                    "message.keywords_changed",
                    message_id=change.message_id,
                    mailbox=batch.mailbox,
                    folder=batch.folder,
                    uid=uid,
                    keywords=list(change.keywords),
                    previous=list(change.previous),
                )
        if batch.highest_modseq is not None:
            cursor = FolderCursor(batch.uidvalidity, batch.last_uid, batch.highest_modseq)
            self.store.set_cursor(batch.mailbox, batch.folder, cursor, self.clock.now())

    def _parse(
        self, batch: FolderBatch, fetched: FetchedMessage, now: datetime, report: CycleReport
    ) -> MessageFacts | None:
        try:
            return self.parse(
                fetched.raw,
                mailbox=batch.mailbox,
                folder=batch.folder,
                folder_kind=batch.kind,
                internaldate=fetched.internaldate,
                flags=fetched.flags,
                max_body_bytes=self.ingest.max_body_bytes,
                now=now,
                extra_headers=self._extra_headers,
            )
        except Exception as exc:
            reason = self.is_malformed(exc)
            if reason is None:
                raise
            self.store.quarantine(
                batch.mailbox,
                batch.folder,
                batch.uidvalidity,
                fetched.uid,
                reason,
                fetched.raw,
                now,
            )
            report.quarantined += 1
            log.warning(
                "message.quarantined",
                mailbox=batch.mailbox,
                folder=batch.folder,
                uid=fetched.uid,
                reason=reason,
            )
            return None

    def _store_message(
        self,
        batch: FolderBatch,
        fetched: FetchedMessage,
        facts: MessageFacts,
        now: datetime,
        report: CycleReport,
        links: dict[str, str],
        stored: dict[str, MessageFacts],
        batch_log: FilteringBoundLogger,
    ) -> str | None:
        """Store one parsed message; return its role, or None for a copy already stored.

        ``links`` holds the stored link of every id of the batch's ``ids_to_link`` that
        has one, ``stored`` the stored facts of the batch's messages seen before; both
        are updated here as the store is, so that a message may link to one stored
        before it in the same batch, or be its duplicate.
        """
        known = stored.get(facts.message_id)
        self.store.add_location(
            batch.mailbox, batch.folder, batch.uidvalidity, fetched.uid, facts.message_id
        )
        if known is not None:
            report.duplicates += 1
            merged = tuple(dict.fromkeys(known.keywords + facts.keywords))
            if merged != known.keywords:
                stored[facts.message_id] = replace(known, keywords=merged)
                self.store.replace_facts(stored[facts.message_id])
            batch_log.debug(
                "message.duplicate",
                message_id=facts.message_id,
                reason="the same Message-ID was already stored from another folder",
            )
            return None
        known_links = {i: links[i] for i in ids_to_link(facts) if i in links}
        # The subject fallback is only for a message whose headers name nothing known.
        candidates = () if known_links else tuple(self.store.subject_candidates(facts))
        plan = plan_threading(facts, known_links, candidates, self.rules)
        conversation_id = plan.conversation_id
        if plan.by_subject:
            log.info(
                "conversation.joined_by_subject",
                message_id=facts.message_id,
                conversation=conversation_id,
                subject=facts.subject,
                reason=plan.reason,
            )
        for other in plan.merge:
            self.store.merge_conversation(other, into=conversation_id)
            for message_id, linked in links.items():  # as the store moved them
                if linked == other:
                    links[message_id] = conversation_id
            log.info(
                "conversation.merged",
                merged=other,
                into=conversation_id,
                reason=f"{facts.message_id} links both threads",
            )
        self.store.add_message(facts, conversation_id, now)
        stored[facts.message_id] = facts
        self.store.link(plan.link_ids, conversation_id)
        for message_id in plan.link_ids:  # where none was before, as the store does
            links.setdefault(message_id, conversation_id)
        report.stored += 1
        verdict = classify(facts, self.rules)
        note_inbound(report.suppressed_by_reason, facts, verdict.role, verdict.reason)
        batch_log.debug(
            "message.stored",
            message_id=facts.message_id,
            conversation=conversation_id,
            role=verdict.role.value,
            account=verdict.account.name if verdict.account else None,
            reason=verdict.reason,
        )
        return verdict.role.value

    # -- evaluate and decide -------------------------------------------------------------

    def evaluate_all(self, now: datetime) -> list[Evaluation]:
        """Evaluate every stored conversation at ``now`` (read-only)."""
        return evaluate_all(self.store, self.rules, now)

    def decide(self, report: CycleReport) -> None:
        """Evaluate what changed or fell due now and hand the decisions to the outbox.

        The first cycle of a service evaluates every conversation (``EvaluationCache``);
        the decisions of a conversation not evaluated again stand as they were taken.
        """
        self.outbox.dry_run = self.dry_run
        now = self.clock.now()
        refresh = self.evaluation_cache.refresh(self.store, self.rules, now)
        check_ins = self.evaluation_cache.check_ins(self.rules, now)
        self.last_evaluations = self.evaluation_cache.evaluations() + check_ins
        report.next_check_at = self.evaluation_cache.next_check_at()
        try:
            self.outbox.decide(refresh.evaluated + check_ins, now, report)
        except Exception:
            # The decisions of this refresh may be unrecorded: the next cycle starts over.
            self.evaluation_cache.reset()
            raise
        self.evaluation_cache.settle(self.store, refresh, keep_summaries=not self.dry_run)
        if self.briefings is not None:
            self.briefings.decide(
                self.store, self.last_evaluations, now, report, dry_run=self.dry_run
            )
        if self.weekly_reports is not None:
            self.weekly_reports.decide(
                self.store, self.last_evaluations, now, report, dry_run=self.dry_run
            )

    def flush(self, report: CycleReport) -> None:
        """Send what the outbox holds."""
        self.outbox.flush(report)
