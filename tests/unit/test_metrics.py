"""Health rules, the metrics kept from cycle reports, and the read-only web app."""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from wsgiref.util import setup_testing_defaults

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from sla_daemon.adapters.web import web_app
from sla_daemon.conversation_counts import ConversationCounts
from sla_daemon.core.model import (
    ClockName,
    ConversationState,
    ConversationStatus,
    Evaluation,
)
from sla_daemon.health import health_problems
from sla_daemon.metrics import DaemonMetrics
from sla_daemon.service import CycleReport
from tests.clocks import ManualClock

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _status(
    state: ConversationState, account: str | None, breaches: tuple[ClockName, ...] = ()
) -> Evaluation:
    return Evaluation(
        ConversationStatus(
            id=f"c-{state}-{account}-{len(breaches)}",
            account=account,
            subject="Help",
            client="dana@globex.example",
            state=state,
            opened_at=T0,
            cycle=1,
            acknowledged_at=None,
            acknowledged_by=None,
            first_human_response_at=None,
            action_plan_at=None,
            acknowledge_due=None,
            action_plan_due=None,
            breaches=breaches,
            message_ids=(),
        )
    )


def _samples(metrics: DaemonMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_health_allows_three_poll_intervals_and_names_each_late_mailbox() -> None:
    """A mailbox is late only past 3 poll intervals; each late one gets its own line."""
    synced = {"support": T0 - 3 * MINUTE, "sales": T0 - 3 * MINUTE - timedelta(seconds=1)}
    assert health_problems(T0, synced, MINUTE, None) == [
        "mailbox sales has not synced for 181 s (3 poll intervals are 180 s)"
    ]
    assert health_problems(T0, {"support": T0}, MINUTE, None) == []


def test_health_reports_a_stuck_outbox_by_the_wait_of_its_oldest_due_delivery() -> None:
    """A delivery due more than 3 poll intervals ago and still open makes the outbox stuck."""
    assert health_problems(T0, {}, MINUTE, T0 - 10 * MINUTE) == [
        "outbox stuck: the oldest due delivery has waited 600 s"
    ]
    assert health_problems(T0, {}, MINUTE, T0 - 2 * MINUTE) == []
    assert health_problems(T0, {}, MINUTE, T0 + MINUTE) == []  # a retry not due yet


def test_metrics_take_in_a_cycle_report_and_its_evaluations() -> None:
    """Conversations by state and account, breaches, deliveries and depth come from a cycle."""
    clock = ManualClock(T0)
    metrics = DaemonMetrics(clock)
    metrics.watch(["support"], MINUTE)
    report = CycleReport(suppressed=2, synced=["support"])
    report.suppressed_by_reason.update({"too_old": 1, "sender_cap": 1})
    report.deliveries = {"auto_ack": {"sent": 1}, "breach": {"sent": 2, "failed": 1}}
    evaluations = [
        _status(ConversationState.AWAITING_ACK, "Globex"),
        _status(ConversationState.AWAITING_ACK, "Globex", (ClockName.ACKNOWLEDGE,)),
        _status(ConversationState.CLOSED, None),
    ]
    counts = ConversationCounts.of(evaluations)
    metrics.observe_cycle(report, counts, {"pending": 3, "held": 1}, None)
    metrics.observe_cycle(
        CycleReport(synced=["support"]), ConversationCounts.of(evaluations[:1]), {}, None
    )
    clock.advance(timedelta(seconds=42))

    samples = _samples(metrics)
    conversations = {k: v for k, v in samples.items() if k[0] == "sla_daemon_conversations"}
    assert conversations == {
        ("sla_daemon_conversations", (("account", "Globex"), ("state", "awaiting_ack"))): 1.0
    }, "the second cycle replaces the first one's figures"
    assert samples[("sla_daemon_notices_sent_total", (("kind", "auto_ack"),))] == 1
    assert samples[("sla_daemon_notices_sent_total", (("kind", "breach"),))] == 2
    assert samples[("sla_daemon_notices_failed_total", (("kind", "breach"),))] == 1
    assert samples[("sla_daemon_notices_suppressed_total", (("reason", "too_old"),))] == 1
    assert samples[("sla_daemon_notices_suppressed_total", (("reason", "sender_cap"),))] == 1
    assert samples[("sla_daemon_outbox_depth", (("state", "pending"),))] == 3
    assert samples[("sla_daemon_cycles_total", ())] == 2
    assert samples[("sla_daemon_mailbox_seconds_since_sync", (("mailbox", "support"),))] == 42


def test_breaches_are_counted_by_clock_and_account() -> None:
    """A breached conversation shows in ``sla_daemon_breaches`` under its clock."""
    metrics = DaemonMetrics(ManualClock(T0))
    breached = _status(ConversationState.AWAITING_ACK, "Globex", (ClockName.ACKNOWLEDGE,))
    metrics.observe_cycle(CycleReport(), ConversationCounts.of([breached]), {}, None)
    samples = _samples(metrics)
    key = ("sla_daemon_breaches", (("account", "Globex"), ("clock", "acknowledge")))
    assert samples[key] == 1


def test_a_mailbox_never_synced_counts_from_when_it_was_first_watched() -> None:
    """A new mailbox gets 3 poll intervals; a reload that keeps it keeps its last sync."""
    clock = ManualClock(T0)
    metrics = DaemonMetrics(clock)
    metrics.watch(["support"], MINUTE)
    clock.advance(2 * MINUTE)
    metrics.watch(["support", "sales"], MINUTE)  # a reload adds sales
    clock.advance(2 * MINUTE)
    assert metrics.health_problems() == [
        "mailbox support has not synced for 240 s (3 poll intervals are 180 s)"
    ]
    metrics.watch(["sales"], MINUTE)  # a reload removes support
    assert metrics.health_problems() == []


def test_reconnect_counter_counts_per_mailbox() -> None:
    """Each call of a mailbox's reconnect callback adds one to its counter."""
    metrics = DaemonMetrics(ManualClock(T0))
    count = metrics.reconnect_counter("support")
    count()
    count()
    assert _samples(metrics)[("sla_daemon_imap_reconnects_total", (("mailbox", "support"),))] == 2


def _request(metrics: DaemonMetrics, path: str, method: str = "GET") -> tuple[str, str]:
    environ: dict[str, object] = {"PATH_INFO": path, "REQUEST_METHOD": method}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO()
    answer: list[str] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc: object = None) -> None:
        answer.append(status)

    body: Iterable[bytes] = web_app(metrics)(environ, start_response)  # type: ignore[arg-type]
    return answer[0], b"".join(body).decode()


def test_healthz_answers_ok_then_503_with_each_reason() -> None:
    """/healthz is 200 ``ok`` while healthy and 503 with one line per reason after."""
    clock = ManualClock(T0)
    metrics = DaemonMetrics(clock)
    metrics.watch(["support"], MINUTE)
    assert _request(metrics, "/healthz") == ("200 OK", "ok\n")
    clock.advance(5 * MINUTE)
    status, body = _request(metrics, "/healthz")
    assert status == "503 Service Unavailable"
    assert body == "mailbox support has not synced for 300 s (3 poll intervals are 180 s)\n"


def test_web_app_serves_metrics_and_refuses_the_rest() -> None:
    """/metrics is the exposition; other paths are 404, other methods 405."""
    metrics = DaemonMetrics(ManualClock(T0))
    status, body = _request(metrics, "/metrics")
    assert status == "200 OK" and "sla_daemon_cycles_total 0.0" in body
    assert _request(metrics, "/")[0] == "404 Not Found"
    assert _request(metrics, "/healthz", method="POST")[0] == "405 Method Not Allowed"
