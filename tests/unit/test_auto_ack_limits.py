"""The per-sender auto-ack cap and the suppression counts, over a real SQLite store."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog.testing

from sla_daemon.adapters.store import Store
from sla_daemon.auto_ack_limits import REASON_CODES, reason_code
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import Address, MessageFacts, NoticeKind
from sla_daemon.service import SlaService
from tests.mailbuild import build_mail
from tests.unit.builders import NOW, client_mail, rules, team_reply
from tests.unit.test_service import FakeSender, FakeSource, _service


def _request(number: int, sender: str, at: datetime, reply_to: str | None = None) -> bytes:
    headers = {"Reply-To": reply_to} if reply_to else None
    mail = build_mail(
        f"r{number}@globex.example",
        sender=sender,
        subject=f"Request {number}",
        at=at,
        body=f"Please look at problem {number}.",
        headers=headers,
    )
    return mail.as_bytes()


def _run(
    tmp_path: Path, mails: list[bytes], *, cap: int = 3, now: datetime = NOW
) -> tuple[SlaService, FakeSource, FakeSender]:
    at = now - timedelta(minutes=2)
    source = FakeSource([(raw, at) for raw in mails])
    sender = FakeSender()
    service = _service(
        Store(tmp_path / "s.sqlite3"),
        source,
        sender,
        now=now,
        rules_=replace(rules(), auto_ack_per_sender_per_day=cap),
    )
    return service, source, sender


def test_fourth_request_of_a_sender_in_a_day_is_not_auto_acked(tmp_path: Path) -> None:
    """With a cap of 3, the fourth auto-ack to one address is suppressed, naming the cap."""
    mails = [_request(n, "dana@globex.example", NOW) for n in range(1, 5)]
    service, _, sender = _run(tmp_path, mails)
    with structlog.testing.capture_logs() as logs:
        report = service.run_cycle()
    assert len(sender.sent) == 3
    assert report.suppressed_by_reason["sender_cap"] == 1
    [held] = [e for e in service.store.outbox() if e.status == "suppressed"]
    assert held.kind is NoticeKind.AUTO_ACK
    assert held.reason is not None and held.reason.startswith("per-sender cap")
    assert "auto_ack_per_sender_per_day: 3" in held.reason
    assert any(e["event"] == "notice.suppressed" and "per-sender cap" in e["reason"] for e in logs)


def test_cap_compares_addresses_without_case_and_counts_the_reply_to(tmp_path: Path) -> None:
    """Auto-acks go to the Reply-To; DANA@ and dana@ are one address for the cap."""
    mails = [
        _request(1, "a@globex.example", NOW, reply_to="Dana@Globex.example"),
        _request(2, "b@globex.example", NOW, reply_to="dana@globex.example"),
        _request(3, "DANA@GLOBEX.EXAMPLE", NOW),
    ]
    service, _, sender = _run(tmp_path, mails, cap=2)
    report = service.run_cycle()
    assert len(sender.sent) == 2
    assert report.suppressed_by_reason == {"sender_cap": 1}


def test_suppressed_auto_acks_do_not_count_toward_the_cap(tmp_path: Path) -> None:
    """An auto-ack held back for another reason (reply address of ours) is not counted."""
    mails = [
        _request(1, "dana@globex.example", NOW, reply_to="support@acme.example"),
        _request(2, "dana@globex.example", NOW),
    ]
    service, _, sender = _run(tmp_path, mails, cap=1)
    report = service.run_cycle()
    assert [m["To"] for m in sender.sent] == ["dana@globex.example"]
    assert report.suppressed_by_reason == {"our_address": 1}


@pytest.mark.parametrize(("hours_later", "acked"), [(23.9, False), (24.1, True)])
def test_the_cap_counts_only_the_last_24_hours(
    tmp_path: Path, hours_later: float, acked: bool
) -> None:
    """With a cap of 1, a second request is auto-acked only once the first ack is 24h old."""
    first, _, _ = _run(tmp_path, [_request(1, "dana@globex.example", NOW)], cap=1)
    first.run_cycle()
    first.store.close()
    later = NOW + timedelta(hours=hours_later)
    source = FakeSource(
        [
            (_request(1, "dana@globex.example", NOW), NOW - timedelta(minutes=2)),
            (_request(2, "dana@globex.example", later), later - timedelta(minutes=2)),
        ]
    )
    sender = FakeSender()
    capped = replace(rules(), auto_ack_per_sender_per_day=1)
    _service(Store(tmp_path / "s.sqlite3"), source, sender, now=later, rules_=capped).run_cycle()
    auto_acks = [m["Subject"] for m in sender.sent if m["Auto-Submitted"] == "auto-replied"]
    assert auto_acks == (["Re: Request 2"] if acked else [])


def test_a_cap_of_zero_disables_auto_acks(tmp_path: Path) -> None:
    """auto_ack_per_sender_per_day: 0 sends no auto-ack at all and says why."""
    service, _, sender = _run(tmp_path, [_request(1, "dana@globex.example", NOW)], cap=0)
    report = service.run_cycle()
    assert sender.sent == []
    assert report.suppressed_by_reason == {"auto_ack_disabled": 1}
    [entry] = service.store.outbox()
    assert entry.reason is not None and "disabled" in entry.reason


def test_inbox_automated_mail_is_counted_and_logged_by_kind(tmp_path: Path) -> None:
    """An out-of-office reply in INBOX is logged as not due an auto-ack and counted."""
    auto = build_mail(
        "ooo@globex.example",
        sender="dana@globex.example",
        subject="Out of office",
        at=NOW,
        headers={"Auto-Submitted": "auto-replied"},
    ).as_bytes()
    service, _, sender = _run(tmp_path, [auto])
    with structlog.testing.capture_logs() as logs:
        report = service.run_cycle()
    assert sender.sent == []
    assert report.suppressed_by_reason == {"auto_reply": 1}
    [line] = [e for e in logs if e["event"] == "auto_ack.not_due"]
    assert line["reason"] == "auto_reply" and "Auto-Submitted" in line["detail"]


def _engine_auto_ack_reason(*messages: MessageFacts) -> str:
    """The reason the engine gives for suppressing the auto-ack of ``messages``."""
    evaluation = evaluate("c-1", messages, rules(), {}, NOW)
    [decision] = [d for d in evaluation.decisions if d.kind is NoticeKind.AUTO_ACK]
    assert decision.suppressed_reason is not None
    return decision.suppressed_reason


def test_every_known_reason_has_its_own_code() -> None:
    """The engine's own reason texts (taken from it) and the outbox's map to distinct codes."""
    engine_reasons = {
        "team_replied": _engine_auto_ack_reason(
            client_mail("m1", 0.5), team_reply("r1", 0.4, "m1")
        ),
        "too_old": _engine_auto_ack_reason(client_mail("m1", 2)),
        "our_address": _engine_auto_ack_reason(
            replace(client_mail("m1", 0.1), reply_to=(Address("support@acme.example"),))
        ),
    }
    for code, reason in engine_reasons.items():
        assert reason_code(reason) == code, reason
    summary = "already past due when first seen; reported in the summary digest|x"
    assert reason_code(summary) == "in_summary"
    assert len({code for _, code in REASON_CODES}) == len(REASON_CODES)
    assert reason_code("something new") == "other"
