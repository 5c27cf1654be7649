"""Delivery rules without a network: the backoff schedule, giving up, quiet hours, batches."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.schema import MIGRATIONS, SCHEMA_VERSION
from sla_daemon.adapters.store import Store
from sla_daemon.cli import main
from sla_daemon.clock import FixedClock
from sla_daemon.config import parse_config
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery import DeliverySettings, NoticeDelivery, delivery_settings, retry_wait
from sla_daemon.errors import TransientError
from sla_daemon.outbox import Outbox, OutboxReport
from sla_daemon.quiet_hours import QuietHours
from tests.notices import LEAD, OWNER, queue_notice, renderer
from tests.unit.builders import rules
from tests.unit.test_config import VALID

BERLIN = ZoneInfo("Europe/Berlin")
DECIDED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class RecordingSender:
    """Keeps each mail with its envelope recipients; fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.sent: list[tuple[EmailMessage, tuple[str, ...]]] = []
        self.failing = False

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Record the mail, or raise a 451 while failing."""
        if self.failing:
            error = TransientError("451 4.3.0 try later")
            error.reply_code = 451
            raise error
        self.sent.append((message, tuple(recipients or ())))
        return {}


def delivery(store: Store, sender: RecordingSender, settings: DeliverySettings) -> NoticeDelivery:
    """Delivery over ``store`` with the batch renderer."""
    return NoticeDelivery(store=store, sender=sender, settings=settings, batch_renderer=renderer())


def test_backoff_starts_at_retry_first_doubles_and_stops_at_retry_max() -> None:
    """30s, 1m, 2m, 4m, 8m, then 10m for every further failure."""
    settings = DeliverySettings(retry_first=timedelta(seconds=30), retry_max=timedelta(minutes=10))
    waits = [retry_wait(n, settings).total_seconds() for n in range(1, 9)]
    assert waits == [30, 60, 120, 240, 480, 600, 600, 600]


def test_a_delivery_failing_past_give_up_after_is_failed_with_its_last_error(
    tmp_path: Path,
) -> None:
    """Transient failures for give_up_after: the delivery ends failed, tried no more."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED)
    sender = RecordingSender()
    sender.failing = True
    settings = DeliverySettings(
        retry_first=timedelta(minutes=1),
        retry_max=timedelta(minutes=4),
        give_up_after=timedelta(minutes=10),
    )
    with capture_logs() as logs:
        delivery(store, sender, settings).run(DECIDED)
        while (waiting := store.next_delivery_at()) is not None:
            delivery(store, sender, settings).run(waiting)
    [failed] = store.deliveries("w1")
    assert failed.state == "failed" and failed.last_code == 451
    attempts = [e["attempt"] for e in logs if e["event"] == "notice.retry_scheduled"]
    # Tried at 0, 1, 3, 7 and at the give-up moment 10 minutes after the decision.
    assert attempts == [1, 2, 3, 4] and failed.attempts == 5
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["notice.delivery_failed"]


def test_quiet_hours_across_midnight() -> None:
    """20:00-07:00: 23:30 and 06:59 are quiet until 07:00; 07:00 and 19:59 are not."""
    quiet = QuietHours(time(20, 0), time(7, 0), BERLIN)
    late = datetime(2026, 11, 24, 23, 30, tzinfo=BERLIN)
    early = datetime(2026, 11, 25, 6, 59, tzinfo=BERLIN)
    seven = datetime(2026, 11, 25, 7, 0, tzinfo=BERLIN)
    assert quiet.until(late) == quiet.until(early) == seven.astimezone(UTC)
    assert quiet.until(seven) is None
    assert quiet.until(datetime(2026, 11, 25, 19, 59, tzinfo=BERLIN)) is None


def test_quiet_hours_follow_the_wall_clock_over_a_dst_change() -> None:
    """On the night summer time ends, 22:00-06:00 Berlin is nine hours of real time."""
    quiet = QuietHours(time(22, 0), time(6, 0), BERLIN)
    start = datetime(2026, 10, 24, 20, 0, tzinfo=UTC)  # 22:00 CEST
    end = quiet.until(start)
    assert end == datetime(2026, 10, 25, 5, 0, tzinfo=UTC)  # 06:00 CET
    assert end - start == timedelta(hours=9)
    assert quiet.until(start - timedelta(seconds=1)) is None


def test_quiet_hours_within_one_day_and_empty_windows() -> None:
    """12:00-13:00 holds only that hour; equal start and end hold nothing."""
    lunch = QuietHours(time(12, 0), time(13, 0), UTC)
    assert lunch.until(datetime(2026, 11, 24, 12, 30, tzinfo=UTC)) == datetime(
        2026, 11, 24, 13, 0, tzinfo=UTC
    )
    assert lunch.until(datetime(2026, 11, 24, 11, 30, tzinfo=UTC)) is None
    assert QuietHours(time(8, 0), time(8, 0), UTC).until(DECIDED) is None


@pytest.mark.parametrize(
    ("kind", "held"),
    [(NoticeKind.WARNING, True), (NoticeKind.BREACH, False), (NoticeKind.AUTO_ACK, False)],
)
def test_quiet_hours_hold_routine_team_notices_only(
    tmp_path: Path, kind: NoticeKind, held: bool
) -> None:
    """Inside the owner's quiet hours a warning waits for their end; breaches and acks don't."""
    store = Store(tmp_path / "s.sqlite3")
    night = datetime(2026, 11, 24, 22, 0, tzinfo=UTC)  # 23:00 in Berlin
    queue_notice(store, "n1", kind, (OWNER,), night)
    settings = DeliverySettings(quiet_hours={OWNER: QuietHours(time(20, 0), time(7, 0), BERLIN)})
    sender = RecordingSender()
    delivery(store, sender, settings).run(night)
    [row] = store.deliveries("n1")
    if held:
        assert sender.sent == [] and row.state == "held"
        assert row.next_attempt_at == datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
    else:
        assert len(sender.sent) == 1 and row.state == "sent"


def test_batches_form_per_recipient_and_a_lone_notice_goes_as_rendered(tmp_path: Path) -> None:
    """Owner: two due notices -> one batch; lead: one -> the notice itself; acks never batch."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "a1", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "a2", NoticeKind.BREACH, (OWNER, LEAD), DECIDED)
    queue_notice(store, "a3", NoticeKind.AUTO_ACK, (OWNER,), DECIDED)
    sender = RecordingSender()
    settings = DeliverySettings(digest_window=timedelta(minutes=5))
    tally = delivery(store, sender, settings).run(DECIDED + timedelta(minutes=5))
    sent = {(str(m["X-SLA-Notice-Key"]), rcpts) for m, rcpts in sender.sent}
    assert sent == {(f"batch|{OWNER}|a1", (OWNER,)), ("a2", (LEAD,)), ("a3", (OWNER,))}
    assert tally.mails_sent == 3
    assert tally.outcomes == {
        "warning": {"sent": 1},
        "breach": {"sent": 2},
        "auto_ack": {"sent": 1},
    }


def test_a_zero_window_sends_each_notice_at_once(tmp_path: Path) -> None:
    """digest_window 0: nothing is held and nothing batched."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "a1", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "a2", NoticeKind.CHECK_IN, (OWNER,), DECIDED)
    sender = RecordingSender()
    delivery(store, sender, DeliverySettings()).run(DECIDED)
    assert sorted(str(m["X-SLA-Notice-Key"]) for m, _ in sender.sent) == ["a1", "a2"]


def test_migration_gives_existing_notices_one_delivery_per_recipient(tmp_path: Path) -> None:
    """A schema-3 database: pending, sent and failed notices get deliveries in that state."""
    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for migration in MIGRATIONS[:3]:
        db.executescript(migration)
    db.execute("PRAGMA user_version = 3")
    rows = [
        ("p", f'["{OWNER}", "{LEAD}"]', "pending", None, 1, "451 later"),
        ("s", f'["{OWNER}"]', "sent", DECIDED.isoformat(), 1, None),
        ("f", f'["{OWNER}"]', "failed", None, 1, "550 no"),
        ("x", f'["{OWNER}"]', "suppressed", None, 0, None),
    ]
    for key, recipients, status, sent_at, attempts, error in rows:
        db.execute(
            "INSERT INTO outbox (key, conversation_id, kind, recipients, status, payload, "
            "decided_at, sent_at, attempts, last_error) VALUES (?, 'c', 'warning', ?, ?, "
            "x'00', ?, ?, ?, ?)",
            (key, recipients, status, DECIDED.isoformat(), sent_at, attempts, error),
        )
    db.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    found = {(d.key, d.recipient): (d.state, d.attempts, d.last_error) for d in store.deliveries()}
    assert found == {
        ("p", OWNER): ("pending", 1, "451 later"),
        ("p", LEAD): ("pending", 1, "451 later"),
        ("s", OWNER): ("sent", 1, None),
        ("f", OWNER): ("failed", 1, "550 no"),
    }
    assert store.deliveries("s")[0].sent_at == DECIDED


def test_a_dry_run_flush_sends_and_marks_nothing(tmp_path: Path) -> None:
    """``run --dry-run``: the outbox's flush leaves every delivery pending and sends nothing."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED)
    sender = RecordingSender()
    box = Outbox(
        store=store,
        renderer=renderer(),
        sender=sender,
        rules=rules(),
        clock=FixedClock(DECIDED + timedelta(days=1)),
        dry_run=True,
    )
    report = OutboxReport()
    box.flush(report)
    assert sender.sent == [] and report.deliveries == {}
    assert [(d.state, d.attempts) for d in store.deliveries()] == [("pending", 0)]


def test_notices_decided_within_one_window_travel_together(tmp_path: Path) -> None:
    """A notice still in its window joins the owner's batch when an earlier one falls due."""
    store = Store(tmp_path / "s.sqlite3")
    settings = DeliverySettings(digest_window=timedelta(minutes=5))
    sender = RecordingSender()
    queue_notice(store, "a1", NoticeKind.WARNING, (OWNER,), DECIDED)
    delivery(store, sender, settings).run(DECIDED)
    later = DECIDED + timedelta(minutes=2)
    queue_notice(store, "a2", NoticeKind.FOLLOW_UP, (OWNER,), later)
    delivery(store, sender, settings).run(later)
    assert sender.sent == []
    delivery(store, sender, settings).run(DECIDED + timedelta(minutes=5))
    [(batch, recipients)] = sender.sent
    assert batch["X-SLA-Notice-Key"] == f"batch|{OWNER}|a1" and recipients == (OWNER,)
    assert {d.state for d in store.deliveries()} == {"sent"}
    assert store.next_delivery_at() is None


def test_status_lists_failed_notices_in_text_and_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status`` shows a FAILED NOTICES section; ``status --json`` a failed_notices list."""
    state = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(VALID.replace("/tmp/sla-state", str(state)), encoding="utf-8")
    store = Store.in_dir(state)
    queue_notice(store, "b1", NoticeKind.BREACH, (OWNER,), DECIDED)
    with store.transaction():
        store.mark_delivery_failed("b1", OWNER, 550, f"{OWNER} refused: 550 5.1.1 No such user")
    store.close()

    assert main(["--config", str(config), "status", "--as-of", DECIDED.isoformat()]) == 0
    text = capsys.readouterr().out
    assert "FAILED NOTICES (1)" in text and "breach to alice@acme.example" in text
    assert "550 5.1.1 No such user" in text
    assert main(["--config", str(config), "status", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {"as_of", "conversations"} <= document.keys()
    [failed] = document["failed_notices"]
    assert (failed["key"], failed["reply_code"], failed["attempts"]) == ("b1", 550, 1)


def test_configured_quiet_hours_default_to_the_top_level_time_zone() -> None:
    """Quiet hours without a timezone are read in ``timezone``; addresses match any case."""
    text = VALID + "timezone: Europe/Berlin\nnotices:\n  digest_window: 2m\n  quiet_hours:\n"
    text += '    Alice@Acme.example: {start: "20:00", end: "07:00"}\n'
    config = parse_config(text, "config.yaml")
    settings = delivery_settings(config.notices, config.timezone)
    assert settings.digest_window == timedelta(minutes=2)
    assert settings.quiet_hours == {OWNER: QuietHours(time(20, 0), time(7, 0), BERLIN)}
