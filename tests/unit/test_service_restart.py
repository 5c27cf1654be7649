"""A service started again on the same state begins from its conversation summaries.

Each start is a new ``SlaService`` (as ``app.build_service`` makes one: with a rules
fingerprint) over the same SQLite store; the fake source and sender are those of
``test_service``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog.testing

from sla_daemon.adapters.mailparse import MalformedMessage, parse_message
from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.store import Store
from sla_daemon.clock import FixedClock
from sla_daemon.evaluation_cache import EvaluationCache
from sla_daemon.service import SlaService
from tests.unit.builders import NOW, TEAM, rules
from tests.unit.test_service import FakeSender, FakeSource, _raw


def _start(
    path: Path, source: FakeSource, sender: FakeSender, at: datetime, *, dry_run: bool = False
) -> SlaService:
    """A service on the store at ``path`` whose clock reads ``at``."""
    return SlaService(
        store=Store(path),
        sources=[source],
        parse=parse_message,
        is_malformed=lambda exc: exc.reason if isinstance(exc, MalformedMessage) else None,
        renderer=NoticeRenderer(None, TEAM, "UTC"),
        sender=sender,
        rules=rules(),
        clock=FixedClock(at),
        dry_run=dry_run,
        evaluation_cache=EvaluationCache("rules-1"),
    )


def _first_cycle(service: SlaService) -> dict[str, Any]:
    """Run one cycle; the start's ``evaluation.start`` log line."""
    with structlog.testing.capture_logs() as logs:
        service.run_cycle()
    service.close()
    [start] = [line for line in logs if line["event"] == "evaluation.start"]
    return start


def test_a_restart_evaluates_only_what_is_due(tmp_path: Path) -> None:
    """A restart evaluates nothing that is not due; a later one only the request due.

    At the open request's warning time the restart evaluates that one alone and sends
    its warning once; the newsletter stays kept from its summary.
    """
    path = tmp_path / "state.sqlite3"
    opened = NOW - timedelta(minutes=2)
    source = FakeSource(
        [
            (_raw("m1@globex.example", "dana@globex.example", "Help", opened), opened),
            (_raw("n1@vendor.example", "news@vendor.example", "News", opened), opened),
        ]
    )
    sender = FakeSender()
    first = _start(path, source, sender, NOW)
    assert _first_cycle(first)["to_evaluate"] == 2  # both stored by this cycle's sync
    settled = _start(path, source, sender, NOW + timedelta(minutes=1))
    assert _first_cycle(settled)["to_evaluate"] == 1  # the auto-ack's record changed it
    assert [m["X-SLA-Daemon"] for m in sender.sent] == ["auto_ack"]

    idle = _first_cycle(_start(path, source, sender, NOW + timedelta(minutes=2)))
    assert (idle["kept_from_summaries"], idle["to_evaluate"]) == (2, 0)
    warn_at = opened + timedelta(hours=24)
    due = _first_cycle(_start(path, source, sender, warn_at))
    assert (due["kept_from_summaries"], due["to_evaluate"]) == (1, 1)
    assert [m["X-SLA-Daemon"] for m in sender.sent] == ["auto_ack", "warning"]


def test_a_dry_run_start_keeps_no_summary(tmp_path: Path) -> None:
    """A dry run decides nothing, so the next real start evaluates every conversation."""
    path = tmp_path / "state.sqlite3"
    opened = NOW - timedelta(minutes=2)
    source = FakeSource(
        [(_raw("m1@globex.example", "dana@globex.example", "Help", opened), opened)]
    )
    sender = FakeSender()
    _first_cycle(_start(path, source, sender, NOW, dry_run=True))
    store = Store(path)
    assert store.summaries("rules-1") == []
    store.close()
    real = _first_cycle(_start(path, source, sender, NOW + timedelta(minutes=1)))
    assert (real["kept_from_summaries"], real["to_evaluate"]) == (0, 1)
    assert [m["X-SLA-Daemon"] for m in sender.sent] == ["auto_ack"]
