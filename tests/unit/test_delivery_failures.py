"""The log lines of failed deliveries: the same events and fields for notices and batches."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from structlog.testing import capture_logs

from sla_daemon.adapters.store import Store
from sla_daemon.core.model import NoticeKind
from sla_daemon.delivery import DeliverySettings
from tests.notices import OWNER, queue_notice
from tests.unit.test_delivery import RecordingSender, delivery
from tests.unit.test_delivery_batches import DECIDED, WINDOW, RefusingSender

SINGLE_FIELDS = ["event", "key", "kind", "recipient", "code", "error", "log_level"]
"""The fields every failure line has, whether or not the delivery was in a batch."""


def test_a_single_notice_logs_its_retry_and_its_failure_without_a_batch(tmp_path: Path) -> None:
    """451 then 550: one retry_scheduled and one delivery_failed, with their fields, no batch."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "w1", NoticeKind.WARNING, (OWNER,), DECIDED)
    sender = RecordingSender()
    sender.failing = True
    with capture_logs() as logs:
        delivery(store, sender, DeliverySettings()).run(DECIDED)
        waiting = store.next_delivery_at()
        assert waiting is not None
        delivery(store, RefusingSender(), DeliverySettings()).run(waiting)
    retry, failed = [e for e in logs if e["event"].startswith("notice.")]
    assert set(retry) == {*SINGLE_FIELDS, "attempt", "next_attempt_at"}
    assert (retry["event"], retry["attempt"], retry["code"]) == ("notice.retry_scheduled", 1, 451)
    assert retry["next_attempt_at"] == (DECIDED + timedelta(seconds=30)).isoformat()
    assert set(failed) == {*SINGLE_FIELDS, "attempts", "reason"}
    assert (failed["event"], failed["attempts"], failed["code"]) == (
        "notice.delivery_failed",
        2,
        550,
    )
    assert failed["reason"] == "permanent failure" and failed["recipient"] == OWNER


def test_each_notice_of_a_failing_batch_is_logged_with_the_batch_named(tmp_path: Path) -> None:
    """451 then 550 for a batch of two: a line per notice and outcome, each naming the batch."""
    store = Store(tmp_path / "s.sqlite3")
    queue_notice(store, "b1", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "b2", NoticeKind.FOLLOW_UP, (OWNER,), DECIDED)
    sender = RecordingSender()
    sender.failing = True
    with capture_logs() as logs:
        delivery(store, sender, WINDOW).run(DECIDED + WINDOW.digest_window)
        waiting = store.next_delivery_at()
        assert waiting is not None
        delivery(store, RefusingSender(), WINDOW).run(waiting)
    failures = [
        e for e in logs if e["event"] in {"notice.retry_scheduled", "notice.delivery_failed"}
    ]
    assert [(e["event"], e["key"]) for e in failures] == [
        ("notice.retry_scheduled", "b1"),
        ("notice.retry_scheduled", "b2"),
        ("notice.delivery_failed", "b1"),
        ("notice.delivery_failed", "b2"),
    ]
    assert {e["batch"] for e in failures} == {f"batch|{OWNER}|b1"}
    retry, _, failed, _ = failures
    assert set(retry) == {*SINGLE_FIELDS, "batch", "attempt", "next_attempt_at"}
    assert set(failed) == {*SINGLE_FIELDS, "batch", "attempts", "reason"}
    assert (retry["kind"], failed["attempts"], failed["code"]) == ("warning", 2, 550)
