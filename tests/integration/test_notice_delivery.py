"""Delivery of outbox notices through a real aiosmtpd sink and a real SQLite store.

The sink scripts the server's replies (451, 421 and hang up, 550 for one address) or is
stopped and started again; the clock is moved by hand, so an hour of retries takes
no time. Every test reads what the sink received and what the database recorded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.adapters.store import Store
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery import DeliverySettings
from sla_daemon.logs import configure_logging
from sla_daemon.outbox import Outbox, OutboxReport
from sla_daemon.status_view import FailedNotice, status_json, status_table
from tests.clocks import ManualClock
from tests.notices import LEAD, OWNER, queue_notice, renderer
from tests.servers.smtp_sink import SmtpSink
from tests.unit.builders import rules

pytestmark = pytest.mark.integration

DECIDED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SETTINGS = DeliverySettings(
    retry_first=timedelta(seconds=30),
    retry_max=timedelta(minutes=10),
    give_up_after=timedelta(days=2),
)


@pytest.fixture
def clock() -> ManualClock:
    """The test's time, starting when the notices are decided."""
    return ManualClock(DECIDED)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A state database in the test's directory."""
    opened = Store(tmp_path / "state.sqlite3")
    yield opened
    opened.close()


def outbox(
    store: Store, sink: SmtpSink, clock: ManualClock, settings: DeliverySettings = SETTINGS
) -> Outbox:
    """An outbox sending through the real SMTP sender to ``sink``."""
    sender = SmtpSender(sink.host, sink.port, "none", None, None, timeout=5.0)
    return Outbox(
        store=store,
        renderer=renderer(),
        sender=sender,
        rules=rules(),
        clock=clock,
        delivery=settings,
    )


def flush(box: Outbox) -> OutboxReport:
    """One flush; its report."""
    report = OutboxReport()
    box.flush(report)
    return report


def test_451_then_success_delivers_once_and_records_the_attempts(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """Two 451 replies, then acceptance: one mail arrives, after three attempts."""
    message_id = queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED)
    smtp_sink.data_replies += ["451 4.3.0 Try again later", "451 4.3.0 Try again later"]
    box = outbox(store, smtp_sink, clock)
    first = flush(box)
    assert first.next_check_at == DECIDED + timedelta(seconds=30)
    assert first.deliveries == {"warning": {"retrying": 1}}
    [waiting] = store.deliveries("w1")
    assert (waiting.state, waiting.attempts, waiting.last_code) == ("pending", 1, 451)
    assert "Try again later" in (waiting.last_error or "")
    clock.advance(timedelta(seconds=10))
    assert flush(box).deliveries == {}  # not due yet: nothing is tried
    clock.set(DECIDED + timedelta(seconds=30))
    assert flush(box).next_check_at == DECIDED + timedelta(seconds=90)  # the wait doubled
    clock.set(DECIDED + timedelta(seconds=90))
    last = flush(box)
    assert last.deliveries == {"warning": {"sent": 1}} and last.sent == 1
    [mail] = smtp_sink.messages
    assert mail.message["Message-ID"] == message_id and mail.rcpt_tos == (OWNER,)
    [done] = store.deliveries("w1")
    assert (done.state, done.attempts, done.sent_at) == ("sent", 3, clock.now())
    [entry] = store.outbox()
    assert entry.status == "sent"


def test_421_and_a_closed_connection_is_retried(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """A 421 to DATA (the server hangs up) is transient: the next attempt delivers."""
    queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED)
    smtp_sink.data_replies.append("421 4.3.2 Shutting down")
    box = outbox(store, smtp_sink, clock)
    assert flush(box).deliveries == {"warning": {"retrying": 1}}
    assert store.deliveries("w1")[0].last_code == 421
    clock.advance(timedelta(seconds=30))
    assert flush(box).deliveries == {"warning": {"sent": 1}}
    assert len(smtp_sink.messages) == 1


def test_550_is_failed_for_good_and_shown_by_status(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """A 550 is recorded with the reply, never tried again, and listed by status."""
    queue_notice(store, "b1", NoticeKind.BREACH, (OWNER,), DECIDED)
    smtp_sink.data_replies.append("550 5.7.1 Message rejected as spam")
    box = outbox(store, smtp_sink, clock)
    report = flush(box)
    assert report.deliveries == {"breach": {"failed": 1}} and report.next_check_at is None
    [failed] = store.failed_deliveries()
    assert (failed.state, failed.last_code) == ("failed", 550)
    assert "Message rejected as spam" in (failed.last_error or "")
    clock.advance(timedelta(hours=3))
    assert flush(box).deliveries == {} and smtp_sink.messages == []
    assert store.outbox()[0].status == "failed"

    shown = [
        FailedNotice(
            d.key,
            d.kind.value,
            d.conversation_id,
            d.recipient,
            d.decided_at,
            d.attempts,
            d.last_code,
            d.last_error or "",
        )
        for d in store.failed_deliveries()
    ]
    document = json.loads(status_json([], clock.now(), shown))
    [entry] = document["failed_notices"]
    assert (entry["key"], entry["recipient"], entry["reply_code"]) == ("b1", OWNER, 550)
    assert document["conversations"] == []  # the existing keys stay
    text = status_table([], clock.now(), UTC, shown)
    assert "FAILED NOTICES (1)" in text and "Message rejected as spam" in text


def test_one_refused_recipient_does_not_stop_the_others(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """550 for the lead only: the owner gets the breach, the lead's delivery is failed."""
    queue_notice(store, "b1", NoticeKind.BREACH, (OWNER, LEAD), DECIDED)
    smtp_sink.rcpt_replies[LEAD] = ["550 5.1.1 No such user"]
    report = flush(outbox(store, smtp_sink, clock))
    assert report.deliveries == {"breach": {"sent": 1, "failed": 1}}
    [mail] = smtp_sink.messages
    assert mail.rcpt_tos == (OWNER,)
    by_recipient = {d.recipient: d for d in store.deliveries("b1")}
    assert by_recipient[OWNER].state == "sent"
    assert by_recipient[LEAD].state == "failed" and by_recipient[LEAD].last_code == 550
    assert "No such user" in (by_recipient[LEAD].last_error or "")


def test_a_refused_recipient_is_logged_once_with_the_reply_and_the_notice_key(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """The sink refuses the lead: one log entry, at any level, names the lead.

    It is the delivery's error, with the notice key, the server's code and reply; the
    SMTP sender adds nothing of its own, not even at debug level.
    """
    queue_notice(store, "b1", NoticeKind.BREACH, (OWNER, LEAD), DECIDED)
    smtp_sink.rcpt_replies[LEAD] = ["550 5.1.1 No such user here"]
    configure_logging(level="debug")
    with capture_logs() as logs:
        flush(outbox(store, smtp_sink, clock))
    about_lead = [entry for entry in logs if LEAD in json.dumps(entry, default=str)]
    assert len(about_lead) == 1, about_lead
    [entry] = about_lead
    assert (entry["event"], entry["log_level"]) == ("notice.delivery_failed", "error")
    assert entry["key"] == "b1" and entry["recipient"] == LEAD and entry["code"] == 550
    assert "No such user here" in entry["error"]


def test_a_4xx_for_one_recipient_retries_only_that_one(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """451 for the lead: the owner gets it now, the lead later, both with one Message-ID."""
    message_id = queue_notice(store, "b1", NoticeKind.BREACH, (OWNER, LEAD), DECIDED)
    smtp_sink.rcpt_replies[LEAD] = ["451 4.2.1 Mailbox busy"]
    box = outbox(store, smtp_sink, clock)
    assert flush(box).deliveries == {"breach": {"sent": 1, "retrying": 1}}
    clock.advance(timedelta(seconds=30))
    assert flush(box).deliveries == {"breach": {"sent": 1}}
    first, second = smtp_sink.messages
    assert (first.rcpt_tos, second.rcpt_tos) == ((OWNER,), (LEAD,))
    assert first.message["Message-ID"] == second.message["Message-ID"] == message_id
    assert {d.state for d in store.deliveries("b1")} == {"sent"}


def test_an_hour_long_outage_delays_notices_and_loses_none(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """Sink down for an hour of cycles, then up: every notice arrives exactly once."""
    box = outbox(store, smtp_sink, clock)
    smtp_sink.stop()
    keys = []
    for minute in range(0, 61):
        if minute % 20 == 0:
            key = f"w{minute}"
            queue_notice(store, key, NoticeKind.WARNING, (OWNER,), clock.now())
            keys.append(key)
        report = flush(box)
        assert report.sent == 0
        clock.advance(timedelta(minutes=1))
    assert {d.state for d in store.deliveries()} == {"pending"}
    smtp_sink.start()
    while report.next_check_at is not None:
        clock.set(max(clock.now(), report.next_check_at))
        report = flush(box)
    received = sorted(str(m.message["X-SLA-Notice-Key"]) for m in smtp_sink.messages)
    assert received == sorted(keys)
    assert {d.state for d in store.deliveries()} == {"sent"}
    assert clock.now() <= DECIDED + timedelta(minutes=61) + SETTINGS.retry_max


def test_the_retry_schedule_survives_a_restart(
    tmp_path: Path, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """A new store and outbox over the same file keep the next attempt time and attempts."""
    path = tmp_path / "state.sqlite3"
    first_store = Store(path)
    queue_notice(first_store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED)
    smtp_sink.data_replies += ["451 4.3.0 Try again later"] * 2
    flush(outbox(first_store, smtp_sink, clock))
    clock.advance(timedelta(seconds=30))
    flush(outbox(first_store, smtp_sink, clock))
    first_store.close()

    reopened = Store(path)
    box = outbox(reopened, smtp_sink, clock)
    [waiting] = reopened.deliveries("w1")
    assert (waiting.attempts, waiting.next_attempt_at) == (2, clock.now() + timedelta(minutes=1))
    assert flush(box).deliveries == {}  # not before its time, even after a restart
    clock.advance(timedelta(minutes=1))
    assert flush(box).deliveries == {"warning": {"sent": 1}}
    assert len(smtp_sink.messages) == 1
    reopened.close()


def test_notices_due_together_go_out_as_one_batch(
    store: Store, smtp_sink: SmtpSink, clock: ManualClock
) -> None:
    """Held for the window, three team notices for the owner arrive as one batch mail."""
    settings = DeliverySettings(digest_window=timedelta(minutes=5))
    queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED, subject="Printer jam")
    queue_notice(store, "b1", NoticeKind.BREACH, (OWNER, LEAD), DECIDED, subject="Server down")
    queue_notice(store, "c1", NoticeKind.CHECK_IN, (OWNER,), DECIDED)
    box = outbox(store, smtp_sink, clock, settings)
    held = flush(box)
    assert held.next_check_at == DECIDED + timedelta(minutes=5) and smtp_sink.messages == []
    assert {d.state for d in store.deliveries()} == {"held"}
    clock.set(DECIDED + timedelta(minutes=5))
    flush(box)
    by_recipient = {m.rcpt_tos: m for m in smtp_sink.messages}
    batch, single = by_recipient[(OWNER,)], by_recipient[(LEAD,)]
    assert batch.message["X-SLA-Daemon"] == "batch" and "3 notices" in batch.message["Subject"]
    text = batch.message.get_body(preferencelist=("plain",)).get_content()
    assert "Printer jam" in text and "Server down" in text and "check in" in text.lower()
    assert single.message["X-SLA-Notice-Key"] == "b1"
    owner_rows = [d for d in store.deliveries() if d.recipient == OWNER]
    assert {(d.state, d.via) for d in owner_rows} == {("sent", f"batch|{OWNER}|b1")}
