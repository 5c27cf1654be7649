"""Batch mails are recorded before they are sent and are only ever sent as recorded."""

from __future__ import annotations

import contextlib
import email
import email.policy
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from sla_daemon.adapters.schema import MIGRATIONS, SCHEMA_VERSION
from sla_daemon.adapters.store import Store
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery import DeliverySettings
from sla_daemon.errors import PermanentError
from sla_daemon.quiet_hours import QuietHours
from tests.notices import OWNER, queue_notice
from tests.unit.test_delivery import RecordingSender, delivery

DECIDED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
WINDOW = DeliverySettings(
    digest_window=timedelta(minutes=5),
    retry_first=timedelta(minutes=1),
    retry_max=timedelta(minutes=4),
    give_up_after=timedelta(minutes=30),
)


class Crash(BaseException):
    """The process dies: nothing after the send runs."""


class CrashingSender(RecordingSender):
    """The server takes the mail, then the process dies before it hears the answer."""

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Record the mail, then crash."""
        super().send(message, recipients)
        raise Crash


class RefusingSender(RecordingSender):
    """Every mail is refused for good (550)."""

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Raise a 550."""
        error = PermanentError("550 5.7.1 rejected")
        error.reply_code = 550
        raise error


def stored_mail(payload: bytes) -> EmailMessage:
    """The mail as stored, parsed as the sender parses it."""
    message = email.message_from_bytes(payload, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _two_due(store: Store) -> datetime:
    """Two of the owner's warnings decided together; the moment they fall due."""
    queue_notice(store, "b1", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "b2", NoticeKind.FOLLOW_UP, (OWNER,), DECIDED)
    return DECIDED + WINDOW.digest_window


def test_a_batch_in_flight_at_a_crash_goes_again_as_recorded_and_new_notices_later(
    tmp_path: Path,
) -> None:
    """Crash after the server took a batch: the restart re-sends the same bytes, once.

    A notice decided after the restart whose key sorts first (it would have named a new
    composition) and a second one due for the same owner do not change that mail; they
    go out in a later mail of their own.
    """
    path = tmp_path / "s.sqlite3"
    store = Store(path)
    due = _two_due(store)
    crashing = CrashingSender()
    with contextlib.suppress(Crash):
        delivery(store, crashing, WINDOW).run(due)
    store.close()
    [(first, _)] = crashing.sent

    store = Store(path)  # the restart
    later = due + timedelta(minutes=1)
    queue_notice(store, "a0", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "a9", NoticeKind.CHECK_IN, (OWNER,), DECIDED)
    sender = RecordingSender()
    delivery(store, sender, WINDOW).run(later)
    [(again, recipients), (batch, _)] = sender.sent
    assert again.as_bytes() == first.as_bytes() and recipients == (OWNER,)
    assert again["Message-ID"] == first["Message-ID"] != batch["Message-ID"]
    assert batch["X-SLA-Notice-Key"] == f"batch|{OWNER}|a0"
    via = {d.key: (d.state, d.via) for d in store.deliveries()}
    assert via == {
        "b1": ("sent", f"batch|{OWNER}|b1"),
        "b2": ("sent", f"batch|{OWNER}|b1"),
        "a0": ("sent", f"batch|{OWNER}|a0"),
        "a9": ("sent", f"batch|{OWNER}|a0"),
    }
    delivery(store, sender, WINDOW).run(later + timedelta(hours=1))
    assert len(sender.sent) == 2


def test_a_batch_retried_after_a_4xx_keeps_its_mail_when_other_notices_fall_due(
    tmp_path: Path,
) -> None:
    """451, then a new notice for the owner: the retry is the recorded batch, unchanged."""
    store = Store(tmp_path / "s.sqlite3")
    due = _two_due(store)
    sender = RecordingSender()
    sender.failing = True
    delivery(store, sender, WINDOW).run(due)
    assert store.batch(f"batch|{OWNER}|b1") is not None
    assert {(d.state, d.attempts, d.last_code) for d in store.deliveries()} == {("pending", 1, 451)}
    queue_notice(store, "a0", NoticeKind.WARNING, (OWNER,), due - timedelta(minutes=5))
    sender.failing = False
    retry_at = store.next_delivery_at()
    assert retry_at == due + WINDOW.retry_first
    delivery(store, sender, WINDOW).run(retry_at)
    keys = [str(m["X-SLA-Notice-Key"]) for m, _ in sender.sent]
    assert keys == [f"batch|{OWNER}|b1", "a0"]  # a0 alone is due: sent as rendered
    recorded = store.batch(f"batch|{OWNER}|b1")
    assert recorded is not None and (recorded.state, recorded.attempts) == ("sent", 2)
    assert sender.sent[0][0].as_bytes() == stored_mail(recorded.payload).as_bytes()


def test_a_refused_batch_fails_every_notice_in_it_and_is_not_sent_again(tmp_path: Path) -> None:
    """550 for the batch: both deliveries and the batch are failed; no later attempt."""
    store = Store(tmp_path / "s.sqlite3")
    due = _two_due(store)
    delivery(store, RefusingSender(), WINDOW).run(due)
    assert {(d.state, d.last_code) for d in store.deliveries()} == {("failed", 550)}
    recorded = store.batch(f"batch|{OWNER}|b1")
    assert recorded is not None and recorded.state == "failed"
    assert store.next_delivery_at() is None


def test_a_batch_gives_up_give_up_after_its_youngest_notice_with_its_own_backoff(
    tmp_path: Path,
) -> None:
    """Retries at 1, 2, 4, 4... minutes (per batch), failed 30 minutes after b2's decision."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "b1", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "b2", NoticeKind.WARNING, (OWNER,), DECIDED + timedelta(minutes=2))
    sender = RecordingSender()
    sender.failing = True
    tries = [DECIDED + WINDOW.digest_window]
    delivery(store, sender, WINDOW).run(tries[0])
    while (waiting := store.next_delivery_at()) is not None:
        tries.append(waiting)
        delivery(store, sender, WINDOW).run(waiting)
    minutes = [int((t - DECIDED).total_seconds() // 60) for t in tries]
    assert minutes == [5, 6, 8, 12, 16, 20, 24, 28, 32]
    assert {(d.state, d.attempts) for d in store.deliveries()} == {("failed", 9)}
    recorded = store.batch(f"batch|{OWNER}|b1")
    assert recorded is not None and (recorded.state, recorded.attempts) == ("failed", 9)


def test_migrating_a_version_6_database_with_held_notices_records_their_batch(
    tmp_path: Path,
) -> None:
    """Held deliveries of a schema-6 database go out, after the migration, as a recorded batch."""
    source = Store(tmp_path / "render.sqlite3")
    _two_due(source)
    rows = source._db.execute(
        "SELECT key, conversation_id, kind, recipients, message_id, payload, decided_at FROM outbox"
    ).fetchall()
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:6]:
        db.executescript(migration)
    db.execute("PRAGMA user_version = 6")
    held_until = (DECIDED + WINDOW.digest_window).isoformat()
    for key, conversation, kind, recipients, message_id, payload, decided in rows:
        db.execute(
            "INSERT INTO outbox (key, conversation_id, kind, recipients, status, message_id, "
            "payload, decided_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
            (key, conversation, kind, recipients, message_id, payload, decided),
        )
        db.execute(
            "INSERT INTO deliveries (key, recipient, state, next_attempt_at) "
            "VALUES (?, ?, 'held', ?)",
            (key, OWNER, held_until),
        )
    db.close()

    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION > 6
    assert {(d.key, d.state, d.via) for d in store.deliveries()} == {
        ("b1", "held", None),
        ("b2", "held", None),
    }
    sender = RecordingSender()
    delivery(store, sender, WINDOW).run(DECIDED + WINDOW.digest_window)
    [(batch, _)] = sender.sent
    recorded = store.batch(f"batch|{OWNER}|b1")
    assert recorded is not None and recorded.message_id == batch["Message-ID"]
    assert {d.state for d in store.deliveries()} == {"sent"}


def test_quiet_hours_hold_a_recorded_batch_as_a_whole_until_they_end(tmp_path: Path) -> None:
    """A batch retried inside the owner's quiet hours waits for their end, then goes as recorded."""
    store = Store(tmp_path / "s.sqlite3")
    due = _two_due(store)  # 12:05 UTC, 13:05 in Berlin
    quiet = QuietHours(time(13, 5, 30), time(14, 0), ZoneInfo("Europe/Berlin"))
    settings = replace(WINDOW, quiet_hours={OWNER: quiet})
    sender = RecordingSender()
    sender.failing = True
    delivery(store, sender, settings).run(due)
    sender.failing = False
    retry_at = store.next_delivery_at()
    assert retry_at == due + WINDOW.retry_first
    delivery(store, sender, settings).run(retry_at)
    assert sender.sent == []
    end = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    assert {(d.state, d.next_attempt_at, d.via) for d in store.deliveries()} == {
        ("held", end, f"batch|{OWNER}|b1")
    }
    delivery(store, sender, settings).run(end)
    [(batch, _)] = sender.sent
    recorded = store.batch(f"batch|{OWNER}|b1")
    assert recorded is not None and batch["Message-ID"] == recorded.message_id
    assert {d.state for d in store.deliveries()} == {"sent"}
