"""The ledger: each clock's segments and their causes, and ``explain`` printing it."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from sla_daemon.adapters.store import Store
from sla_daemon.cli import main
from sla_daemon.core.engine import auto_ack_key, evaluate
from sla_daemon.core.ledger import ClockLedger, Ledger, Step
from sla_daemon.core.model import ClockName, NoticeKind, SentNotice
from sla_daemon.explain_view import explain_text, ledger_dict
from sla_daemon.logs import reset_logging
from sla_daemon.status_view import status_json
from tests.unit.builders import NOW, client_mail, rules, team_reply
from tests.unit.test_service import FakeSender, FakeSource, _raw, _service

CID = "c-ledger"


def _ledger(*history: object, notices: dict[str, SentNotice] | None = None) -> Ledger:
    result = evaluate(CID, list(history), rules(), notices or {}, NOW)  # type: ignore[arg-type]
    assert result.status.ledger is not None
    return result.status.ledger


def _clocks(ledger: Ledger, cycle: int = 0) -> tuple[ClockLedger, ClockLedger]:
    ack, plan = ledger.cycles[cycle].clocks
    assert (ack.clock, plan.clock) == (ClockName.ACKNOWLEDGE, ClockName.ACTION_PLAN)
    return ack, plan


def test_acknowledged_by_a_human_and_then_the_action_plan() -> None:
    """Started by the client's message, stopped by the first reply and the plan, both met."""
    ledger = _ledger(
        client_mail("m1", 10),
        team_reply("r1", 9.5, "m1"),
        team_reply("r2", 5, "m1", subject="Re: [Action Plan] Checkout broken"),
    )
    ack, plan = _clocks(ledger)
    opened = NOW - timedelta(hours=10)
    assert [(s.step, s.message_id, s.sender) for s in ack.segments] == [
        (Step.STARTED, "m1", "dana@globex.example"),
        (Step.STOPPED, "r1", "bob@acme.example"),
    ]
    assert ack.segments[1].reason == "human reply"
    assert (ack.calendar, ack.within, ack.due_at) == (
        "24x7",
        timedelta(hours=1),
        opened + timedelta(hours=1),
    )
    assert ack.counted == timedelta(minutes=30) and not ack.breached and ack.late_by is None
    assert [s.step for s in plan.segments] == [Step.STARTED, Step.STOPPED]
    assert plan.segments[-1].message_id == "r2"
    assert plan.segments[-1].reason == "action plan: subject tag [Action Plan]"
    assert plan.due_at == opened + timedelta(hours=48)
    assert plan.stopped_at == NOW - timedelta(hours=5)
    assert plan.counted == timedelta(hours=5) and plan.paused == timedelta(0)


def test_auto_ack_stops_the_acknowledge_clock_with_its_notice_key() -> None:
    """A sent auto-ack is the cause, named by its notice key (no message of ours stored)."""
    sent_at = NOW - timedelta(minutes=20)
    key = auto_ack_key("m1")
    notices = {key: SentNotice(key, NoticeKind.AUTO_ACK, sent_at, sent_at)}
    ack, plan = _clocks(_ledger(client_mail("m1", 0.5), notices=notices))
    stop = ack.segments[-1]
    assert (stop.step, stop.at, stop.notice_key, stop.message_id) == (
        Step.STOPPED,
        sent_at,
        key,
        None,
    )
    assert stop.reason == "auto-ack"
    assert plan.stopped_at is None and plan.segments[-1].step is Step.STARTED


def test_pause_and_resume_move_the_due_time_by_the_paused_span() -> None:
    """Paused 20h waiting on the client: due = start + 48h + 20h on 24x7, the span shown."""
    ledger = _ledger(
        client_mail("m1", 40),
        team_reply("r1", 39, "m1", keywords=("$WaitingOnClient",)),
        client_mail("m2", 19, in_reply_to="r1", body="Here are the logs, the export fails."),
    )
    _, plan = _clocks(ledger)
    assert [(s.step, s.message_id) for s in plan.segments] == [
        (Step.STARTED, "m1"),
        (Step.PAUSED, "r1"),
        (Step.RESUMED, "m2"),
    ]
    assert plan.segments[1].reason == "waiting: IMAP keyword $WaitingOnClient"
    assert plan.segments[2].reason == "client message"
    assert plan.paused == timedelta(hours=20)
    assert plan.due_at == NOW - timedelta(hours=40) + timedelta(hours=48) + plan.paused
    assert plan.counted == timedelta(hours=1 + 19)
    text = explain_text(evaluate(CID, _history_paused(), rules(), {}, NOW).status, UTC)
    assert "paused Mon 23 Nov 09:00 by bob@acme.example <r1>" in text
    assert "for 20h; resumed Tue 24 Nov 05:00 by dana@globex.example <m2>" in text
    assert "why: 48h on 24x7, counted from the start, plus 20h paused" in text


def _history_paused() -> list[object]:
    return [
        client_mail("m1", 27),
        team_reply("r1", 27, "m1", keywords=("$WaitingOnClient",)),
        client_mail("m2", 7, in_reply_to="r1", body="Here are the logs, the export fails."),
    ]


def test_a_courtesy_is_recorded_in_its_cycle() -> None:
    """'Thanks, that works!' after the plan is listed with its reason; it opens nothing."""
    ledger = _ledger(
        client_mail("m1", 10),
        team_reply("r1", 9, "m1", subject="Re: [Action Plan] Checkout broken"),
        client_mail("m2", 2, in_reply_to="r1", body="Thanks, that works!"),
    )
    [cycle] = ledger.cycles
    [courtesy] = cycle.courtesies
    assert (courtesy.message_id, courtesy.sender) == ("m2", "dana@globex.example")
    assert courtesy.reason.startswith("courtesy reply (3 words")


def test_automated_mail_is_listed_as_ignored_with_the_verdict() -> None:
    """An out-of-office reply moves nothing and is listed with the detector's reason."""
    ooo = client_mail("ooo1", 1, in_reply_to="r1", headers=(("auto-submitted", "auto-replied"),))
    ledger = _ledger(client_mail("m1", 3), team_reply("r1", 2, "m1"), ooo)
    [ignored] = ledger.ignored
    assert ignored.message_id == "ooo1"
    assert ignored.reason.startswith("automated: auto_reply")
    assert "Auto-Submitted" in ignored.reason


def test_breach_shows_how_late_in_json_and_text() -> None:
    """A running clock past due is breached; JSON and text say by how much."""
    result = evaluate(CID, [client_mail("m1", 50), team_reply("r1", 49.5, "m1")], rules(), {}, NOW)
    ledger = result.status.ledger
    assert ledger is not None
    _, plan = _clocks(ledger)
    assert plan.breached and plan.late_by == timedelta(hours=2)
    document = json.loads(status_json([result.status], NOW))
    [clock] = [
        c
        for c in document["conversations"][0]["ledger"]["cycles"][0]["clocks"]
        if c["clock"] == "action_plan"
    ]
    assert clock["late_seconds"] == 7200 and clock["due_at"] == "2026-11-24T10:00:00+00:00"
    assert clock["segments"][0]["from"] == "dana@globex.example"
    text = explain_text(result.status, UTC)
    assert "action_plan  started Sun 22 Nov 10:00 by dana@globex.example <m1>" in text
    assert "due Tue 24 Nov 10:00 (48h on 24x7): BREACHED, running 2h late" in text
    assert ledger_dict(None) is None


@pytest.fixture
def _restore_logging() -> Iterator[None]:
    """``main`` configures logging for the process; leave it as the next test expects."""
    root_level = logging.getLogger().level
    yield
    reset_logging()
    logging.getLogger().setLevel(root_level)


CONFIG = """\
state_dir: {state}
timezone: Europe/Berlin
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: imap.acme.example
    username: support@acme.example
    password_env: SLA_TEST_IMAP_PASSWORD_UNSET
smtp:
  host: smtp.acme.example
policies:
  standard:
    acknowledge: {{within: 1h}}
    action_plan: {{within: 48h}}
accounts:
  - name: Globex
    domains: [globex.example]
    owner: alice@acme.example
"""


@pytest.mark.usefixtures("_restore_logging")
def test_explain_command_prints_the_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`explain ID` reads the state read-only and needs no secret; an unknown id exits 1."""
    at = NOW - timedelta(minutes=2)
    raw = _raw("m1@globex.example", "dana@globex.example", "Export fails", at)
    store = Store.in_dir(tmp_path / "state")
    _service(store, FakeSource([(raw, at)]), FakeSender()).run_cycle()
    [conversation] = store.conversation_ids()
    store.close()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(state=tmp_path / "state"), encoding="utf-8")
    before = (tmp_path / "state" / "state.sqlite3").read_bytes()

    as_of = (NOW + timedelta(hours=1)).isoformat()
    args = ["--config", str(config), "--log-level", "error", "explain"]
    assert main([*args, conversation, "--as-of", as_of]) == 0
    out = capsys.readouterr().out
    assert f"Conversation {conversation}: Export fails" in out
    assert "account Globex, client dana@globex.example, state awaiting_action_plan" in out
    # Times in Europe/Berlin: the mail came at 11:58 UTC, the auto-ack went at 12:00 UTC.
    assert "acknowledge  started Tue 24 Nov 12:58 by dana@globex.example <m1@globex.example>" in out
    assert f"stopped 13:00 (auto-ack, notice {auto_ack_key('m1@globex.example')})" in out
    assert "due 13:58 (1h on 24x7): met" in out
    assert "due Thu 26 Nov 12:58 (48h on 24x7): running, due in 1d 22h" in out

    assert main([*args, "<m1@globex.example>", "--as-of", as_of]) == 0
    assert f"Conversation {conversation}" in capsys.readouterr().out
    assert main([*args, "no-such-conversation"]) == 1
    assert "no conversation 'no-such-conversation'" in capsys.readouterr().err
    assert (tmp_path / "state" / "state.sqlite3").read_bytes() == before
