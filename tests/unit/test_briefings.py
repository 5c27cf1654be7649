"""The briefings' service layer over a real SQLite store: record, suppress, skip, wake."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from structlog.testing import capture_logs

from sla_daemon.adapters.store import Store
from sla_daemon.briefings import NOTHING_TO_SAY, Briefings
from sla_daemon.core.briefing import Briefing
from sla_daemon.core.model import Account, ClockName, Evaluation
from sla_daemon.outbox import OutboxReport
from tests.unit.builders import GLOBEX, rules
from tests.unit.test_briefing import _status

NOW = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)  # 08:00 UTC, the configured zone
RULES = replace(rules(), accounts=(GLOBEX, Account("Initech", "standard", "carol@acme.example")))


class RecordingRenderer:
    """Renders a small mail per briefing; refuses the owners it is told to."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.refuse = refuse
        self.rendered: list[Briefing] = []

    def render_briefing(self, key: str, briefing: Briefing, now: datetime) -> EmailMessage:
        """A text mail numbered by the briefings rendered, or ValueError for a refused owner."""
        if briefing.owner in self.refuse:
            raise ValueError("template briefing.txt.j2: unexpected end of template")
        self.rendered.append(briefing)
        message = EmailMessage()
        message["Message-ID"] = f"<{len(self.rendered)}.briefing@test>"
        message.set_content("briefing")
        return message


def _briefings(renderer: RecordingRenderer) -> Briefings:
    return Briefings(
        renderer=renderer, rules=RULES, briefing_at=time(8, 0), default_zone=ZoneInfo("UTC")
    )


def _late_globex() -> list[Evaluation]:
    late = _status("c1", "Globex", ClockName.ACKNOWLEDGE, NOW - timedelta(hours=1), breached=True)
    return [Evaluation(late)]


def test_a_due_briefing_is_recorded_pending_and_an_empty_one_suppressed(tmp_path: Path) -> None:
    """Alice (one late clock) gets a pending briefing; Carol (nothing) a suppressed key."""
    store = Store(tmp_path / "state.sqlite3")
    renderer = RecordingRenderer()
    report = OutboxReport()
    _briefings(renderer).decide(store, _late_globex(), NOW, report)
    entries = {e.key: e for e in store.outbox()}
    alice = entries["briefing|alice@acme.example|2026-11-24"]
    carol = entries["briefing|carol@acme.example|2026-11-24"]
    assert (alice.status, alice.recipients, alice.conversation_id) == (
        "pending",
        ("alice@acme.example",),
        "",
    )
    assert alice.message_id == "<1.briefing@test>"
    assert (carol.status, carol.reason, carol.payload) == ("suppressed", NOTHING_TO_SAY, None)
    assert (report.decided, report.suppressed) == (1, 1)
    assert report.next_check_at == NOW + timedelta(days=1)

    again = OutboxReport()
    _briefings(renderer).decide(store, _late_globex(), NOW + timedelta(hours=1), again)
    assert (again.decided, again.suppressed, len(renderer.rendered)) == (0, 0, 1)


def test_a_briefing_that_cannot_be_rendered_is_logged_and_tried_again(tmp_path: Path) -> None:
    """A broken template for Alice is logged; nothing is recorded, the next cycle retries."""
    store = Store(tmp_path / "state.sqlite3")
    with capture_logs() as logs:
        _briefings(RecordingRenderer(refuse=("alice@acme.example",))).decide(
            store, _late_globex(), NOW, OutboxReport()
        )
    [failed] = [e for e in logs if e["event"] == "briefing.render_failed"]
    assert "unexpected end of template" in failed["error"]
    assert [e.key for e in store.outbox()] == ["briefing|carol@acme.example|2026-11-24"]

    report = OutboxReport()
    _briefings(RecordingRenderer()).decide(store, _late_globex(), NOW, report)
    assert report.decided == 1


def test_before_briefing_at_nothing_is_decided_and_the_runner_wakes_for_it(
    tmp_path: Path,
) -> None:
    """At 07:30 nothing is recorded; the report's next check is 08:00 today."""
    store = Store(tmp_path / "state.sqlite3")
    report = OutboxReport(next_check_at=NOW + timedelta(hours=3))
    early = NOW - timedelta(minutes=30)
    _briefings(RecordingRenderer()).decide(store, _late_globex(), early, report)
    assert store.outbox() == []
    assert report.next_check_at == NOW
