"""The service's cycle with fake sources and senders over a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import structlog.testing

from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.store import Store
from sla_daemon.clock import FixedClock
from sla_daemon.core.model import ClockPolicy, FolderKind, Rules
from sla_daemon.errors import TransientError
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor
from sla_daemon.service import SlaService
from tests.mailbuild import build_mail
from tests.unit.builders import GLOBEX, NOW, TEAM, rules


def _raw(
    message_id: str, sender: str, subject: str, at: datetime, parent: str | None = None
) -> bytes:
    return build_mail(message_id, sender=sender, subject=subject, at=at, parent=parent).as_bytes()


class FakeSource:
    """An in-memory mailbox with one INBOX that honours cursors like IMAP."""

    def __init__(self, messages: list[tuple[bytes, datetime]], name: str = "support") -> None:
        self.name = name
        self.messages = messages
        self.polls = 0
        self.fail = False

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        """Yield the INBOX messages after the cursor."""
        self.polls += 1
        if self.fail:
            raise TransientError("server went away")
        cursor = cursors.get("INBOX")
        last = cursor.last_uid if cursor else 0
        fresh = [
            FetchedMessage(uid, raw, at)
            for uid, (raw, at) in enumerate(self.messages, start=1)
            if uid > last
        ]
        if fresh:
            yield FolderBatch(self.name, "INBOX", FolderKind.INBOX, 7, fresh[-1].uid, tuple(fresh))

    def watch(self, wake: object, stop: object) -> None:
        """Nothing to watch: tests run cycles by hand."""

    def close(self) -> None:
        """Nothing to release."""


class FakeSender:
    """Records what it is asked to send; can be told to fail transiently."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []
        self.fail = False

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Record ``message`` or raise TransientError."""
        if self.fail:
            raise TransientError("451 try later")
        self.sent.append(message)
        return {}


def _service(
    store: Store,
    source: FakeSource,
    sender: FakeSender,
    now: datetime = NOW,
    rules_: Rules | None = None,
) -> SlaService:
    return SlaService(
        store=store,
        sources=[source],
        parse=parse_message,
        is_malformed=lambda exc: exc.reason if isinstance(exc, MalformedMessage) else None,
        renderer=NoticeRenderer(None, TEAM, "UTC"),
        sender=sender,
        rules=rules_ or rules(),
        clock=FixedClock(now),
    )


def test_cycle_sends_one_auto_ack_and_restart_sends_nothing_twice(tmp_path: Path) -> None:
    """A fresh client mail is auto-acked once; a new service on the same store is idle."""
    at = NOW - timedelta(minutes=2)
    source = FakeSource([(_raw("m1@globex.example", "dana@globex.example", "Help", at), at)])
    sender = FakeSender()
    store = Store(tmp_path / "state.sqlite3")
    report = _service(store, source, sender).run_cycle()
    assert (report.stored, report.sent) == (1, 1)
    assert sender.sent[0]["To"] == "dana@globex.example"
    store.close()

    reopened = Store(tmp_path / "state.sqlite3")
    again = _service(reopened, source, sender).run_cycle()
    assert (again.fetched, again.sent, again.decided) == (0, 0, 0)
    assert len(sender.sent) == 1


def test_transient_send_failure_stays_pending_and_goes_out_next_cycle(tmp_path: Path) -> None:
    """A 4xx from SMTP keeps the notice pending; the cycle after the retry wait sends it once."""
    at = NOW - timedelta(minutes=2)
    source = FakeSource([(_raw("m1@globex.example", "dana@globex.example", "Help", at), at)])
    sender = FakeSender()
    sender.fail = True
    service = _service(Store(tmp_path / "s.sqlite3"), source, sender)
    first = service.run_cycle()
    assert (first.decided, first.sent, first.failed) == (1, 0, 1)
    [entry] = service.store.pending()
    assert entry.attempts == 1 and entry.last_error == "451 try later"
    assert first.next_check_at == NOW + timedelta(seconds=30)  # the first retry wait
    sender.fail = False
    service.clock = service.outbox.clock = FixedClock(NOW + timedelta(seconds=30))
    second = service.run_cycle()
    assert (second.decided, second.sent) == (0, 1)
    assert len(sender.sent) == 1
    assert service.store.pending() == []


def test_unreachable_source_is_reported_and_the_cycle_goes_on(tmp_path: Path) -> None:
    """A source that raises TransientError is logged in the report; nothing crashes."""
    source = FakeSource([])
    source.fail = True
    report = _service(Store(tmp_path / "s.sqlite3"), source, FakeSender()).run_cycle()
    assert report.source_errors == ["support: server went away"]


def test_unparseable_message_is_quarantined_and_the_cursor_advances(tmp_path: Path) -> None:
    """Bytes that cannot be parsed are kept with a reason; later mail is still read."""
    at = NOW - timedelta(minutes=2)
    source = FakeSource(
        [(b"", at), (_raw("ok@globex.example", "dana@globex.example", "Hi", at), at)]
    )
    service = _service(Store(tmp_path / "s.sqlite3"), source, FakeSender())
    report = service.run_cycle()
    assert (report.quarantined, report.stored) == (1, 1)
    [(mailbox, folder, uid, reason)] = service.store.quarantined()
    assert (mailbox, folder, uid) == ("support", "INBOX", 1)
    assert reason
    assert service.store.cursors("support")["INBOX"] == FolderCursor(7, 2)


def test_dry_run_decides_nothing_and_sends_nothing(tmp_path: Path) -> None:
    """With dry_run the mail is read but the outbox stays empty and nothing is sent."""
    at = NOW - timedelta(minutes=2)
    source = FakeSource([(_raw("m1@globex.example", "dana@globex.example", "Help", at), at)])
    sender = FakeSender()
    service = _service(Store(tmp_path / "s.sqlite3"), source, sender)
    service.dry_run = True
    report = service.run_cycle()
    assert report.stored == 1 and report.decided == 0
    assert sender.sent == [] and service.store.outbox() == []


def test_the_same_message_in_two_folders_is_one_message(tmp_path: Path) -> None:
    """A Message-ID fetched twice (another folder or mailbox) is stored once."""
    at = NOW - timedelta(minutes=2)
    raw = _raw("m1@globex.example", "dana@globex.example", "Help", at)
    store = Store(tmp_path / "s.sqlite3")
    sender = FakeSender()
    _service(store, FakeSource([(raw, at)], name="shared"), sender).run_cycle()
    report = _service(store, FakeSource([(raw, at)], name="alice"), sender).run_cycle()
    assert report.duplicates == 1 and report.stored == 0
    assert store.message_count() == 1
    assert len(sender.sent) == 1


def test_the_same_message_twice_in_one_batch_is_stored_once(tmp_path: Path) -> None:
    """A Message-ID met twice in one batch is a duplicate the second time, as across batches."""
    at = NOW - timedelta(minutes=2)
    raw = _raw("m1@globex.example", "dana@globex.example", "Help", at)
    store = Store(tmp_path / "s.sqlite3")
    report = _service(store, FakeSource([(raw, at), (raw, at)]), FakeSender()).run_cycle()
    assert (report.stored, report.duplicates) == (1, 1)
    assert store.message_count() == 1
    assert store.messages(["m1@globex.example", "unknown@globex.example"]) == {
        "m1@globex.example": store.message("m1@globex.example")
    }


def test_several_pre_existing_breaches_go_to_the_owner_in_one_summary(tmp_path: Path) -> None:
    """A first start on old mail sends the owner one summary, not one breach per thread."""
    old = [
        (_raw(f"old{i}@globex.example", "dana@globex.example", f"Old request {i}", at), at)
        for i, at in enumerate([NOW - timedelta(hours=60), NOW - timedelta(hours=70)])
    ]
    sender = FakeSender()
    service = _service(Store(tmp_path / "s.sqlite3"), FakeSource(old), sender)
    report = service.run_cycle()
    summaries = [m for m in sender.sent if m["X-SLA-Daemon"] == "digest"]
    assert len(summaries) == 1 and len(sender.sent) == 1
    assert summaries[0]["To"] == "alice@acme.example"
    assert report.digests and report.suppressed >= 4  # 2 clocks x 2 threads + 2 auto-acks
    again = _service(service.store, FakeSource(old), sender).run_cycle()
    assert again.sent == 0 and len(sender.sent) == 1


def test_a_single_pre_existing_breach_is_escalated_as_usual(tmp_path: Path) -> None:
    """One old breach alone goes to the owner and the leads like any breach."""
    at = NOW - timedelta(hours=60)
    source = FakeSource([(_raw("old@globex.example", "dana@globex.example", "Old", at), at)])
    sender = FakeSender()
    _service(Store(tmp_path / "s.sqlite3"), source, sender).run_cycle()
    kinds = sorted(str(m["X-SLA-Daemon"]) for m in sender.sent)
    assert kinds == ["breach", "breach"]  # acknowledge and action plan, both missed


def test_a_reply_in_the_same_batch_joins_its_parent(tmp_path: Path) -> None:
    """A client mail and the reply to it fetched in one batch are one conversation."""
    at = NOW - timedelta(minutes=5)
    parent = _raw("p@globex.example", "dana@globex.example", "Help", at)
    reply = _raw(
        "r@globex.example", "dana@globex.example", "Re: Help", at, parent="p@globex.example"
    )
    store = Store(tmp_path / "s.sqlite3")
    _service(
        store, FakeSource([(parent, at), (reply, at + timedelta(seconds=1))]), FakeSender()
    ).run_cycle()
    assert len(store.conversation_ids()) == 1
    [conversation] = store.conversation_ids()
    assert [m.message_id for m in store.conversation_messages(conversation)] == [
        "p@globex.example",
        "r@globex.example",
    ]


def test_each_batch_is_summarised_in_one_log_line(tmp_path: Path) -> None:
    """A batch logs one batch.stored line with counts by role; messages log at debug."""
    at = NOW - timedelta(minutes=5)
    source = FakeSource(
        [
            (_raw("c@globex.example", "dana@globex.example", "Help", at), at),
            (_raw("n@news.example", "noreply@news.example", "News", at), at),
            (b"", at),
        ]
    )
    with structlog.testing.capture_logs() as logs:
        _service(Store(tmp_path / "s.sqlite3"), source, FakeSender()).run_cycle()
    [summary] = [e for e in logs if e["event"] == "batch.stored"]
    assert summary["log_level"] == "info"
    assert (summary["fetched"], summary["stored"], summary["quarantined"]) == (3, 2, 1)
    assert summary["roles"] == {"automated": 1, "client": 1}
    assert {e["log_level"] for e in logs if e["event"] == "message.stored"} == {"debug"}


def test_check_in_is_sent_once_per_period_for_the_account(tmp_path: Path) -> None:
    """A client nobody wrote to for 8 days: one check-in to the owner, not again next cycle."""
    checked = replace(GLOBEX, check_in_every=timedelta(days=7))
    policy = replace(rules(), accounts=(checked,))
    at = NOW - timedelta(days=8)
    source = FakeSource([(_raw("m1@globex.example", "dana@globex.example", "Help", at), at)])
    sender = FakeSender()
    service = _service(Store(tmp_path / "s.sqlite3"), source, sender, rules_=policy)
    service.run_cycle()
    check_ins = [m for m in sender.sent if m["X-SLA-Daemon"] == "check_in"]
    assert len(check_ins) == 1
    assert check_ins[0]["To"] == "alice@acme.example"
    assert check_ins[0]["Subject"] == "[SLA check-in] Globex: no message to the client for 7d"
    again = _service(service.store, source, sender, rules_=policy).run_cycle()
    assert again.sent == 0
    assert again.next_check_at is not None


def test_warning_and_breach_come_at_their_time_without_new_mail(tmp_path: Path) -> None:
    """With no new mail, the cycle at each check time still sends its warnings, then the breach.

    The conversation is not evaluated in between, yet the runner is told when to wake.
    """
    opened = NOW - timedelta(minutes=2)
    source = FakeSource(
        [(_raw("m1@globex.example", "dana@globex.example", "Help", opened), opened)]
    )
    sender = FakeSender()
    service = _service(Store(tmp_path / "s.sqlite3"), source, sender)
    service.run_cycle()
    assert [m["X-SLA-Daemon"] for m in sender.sent] == ["auto_ack"]
    settled = service.run_cycle()  # the auto-ack's own change is taken in
    warn_at = opened + timedelta(hours=24)
    assert settled.next_check_at == warn_at
    for hours, kind in ((24, "warning"), (44, "warning"), (48, "breach")):
        at = opened + timedelta(hours=hours)
        service.clock = service.outbox.clock = FixedClock(at - timedelta(seconds=1))
        assert service.run_cycle().sent == 0
        service.clock = service.outbox.clock = FixedClock(at)
        assert service.run_cycle().sent == 1
        assert sender.sent[-1]["X-SLA-Daemon"] == kind
    assert [e.status.id for e in service.last_evaluations] == [
        e.status.id for e in service.evaluate_all(service.clock.now())
    ]


def test_a_new_policy_is_applied_to_every_conversation_at_once(tmp_path: Path) -> None:
    """A service built with a changed policy (a reload, a restart) re-evaluates everything."""
    opened = NOW - timedelta(hours=2)
    source = FakeSource(
        [(_raw("m1@globex.example", "dana@globex.example", "Help", opened), opened)]
    )
    sender = FakeSender()
    store = Store(tmp_path / "s.sqlite3")
    _service(store, source, sender).run_cycle()
    _service(store, source, sender).run_cycle()
    assert [m["X-SLA-Daemon"] for m in sender.sent] == ["breach"]  # ack 1h, too old to auto-ack
    stricter = rules(action_plan=ClockPolicy(timedelta(hours=1)))
    _service(store, source, sender, rules_=stricter).run_cycle()
    assert [m["X-SLA-Daemon"] for m in sender.sent] == ["breach", "breach"]
