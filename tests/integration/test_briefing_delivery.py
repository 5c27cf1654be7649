"""The morning briefing end to end: real Dovecot, real SQLite state, real SMTP sink.

The daemon's service is built from a config file by ``app.build_service`` and driven by
a clock the test moves: Alice (Globex, a Berlin business calendar) gets her briefing at
08:00 Berlin, Carol (Initech, 24x7) at 08:00 New York (the configured zone), Frank
(Hooli, no mail at all) gets none. Mail is seeded with backdated INTERNALDATEs relative
to that clock, so every figure below follows from the seeded times alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.configs import MailboxSpec, Replace
from tests.conftest import ImapUser
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail, SmtpSink
from tests.services_from_config import ServicesFromConfig, services_from_config

pytestmark = pytest.mark.integration

ALICE, CAROL, FRANK = "alice@acme.example", "carol@acme.example", "frank@acme.example"
TUESDAY_0759_BERLIN = datetime(2026, 11, 24, 6, 59, tzinfo=UTC)
# Every notice goes out in the cycle that decides it (the builder's digest_window: 0s).
OVERRIDES = {
    "timezone": "America/New_York",
    "calendars": {"office": {"timezone": "Europe/Berlin", "hours": {"mon-fri": ["09:00-18:00"]}}},
    "policies": Replace(
        {
            "office": {
                "calendar": "office",
                "auto_ack": False,
                "acknowledge": {"within": "4h", "warn_before": ["1h"]},
                "action_plan": {"within": "16h", "warn_before": ["4h"]},
            },
            "round": {
                "auto_ack": False,
                "acknowledge": {"within": "1h"},
                "action_plan": {"within": "48h", "warn_before": ["4h"]},
            },
        }
    ),
    "accounts": [
        {"name": "Globex", "domains": ["globex.example"], "policy": "office", "owner": ALICE},
        {"name": "Initech", "domains": ["initech.example"], "policy": "round", "owner": CAROL},
        {"name": "Hooli", "domains": ["hooli.example"], "policy": "round", "owner": FRANK},
    ],
    "notices": {"briefing_at": "08:00"},
}


class MovableClock:
    """A clock the test sets; the service reads it once per cycle."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        """The time the test set last."""
        return self.at


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _seed(server: DovecotServer, user: str) -> None:
    """Globex: one unanswered request; Initech: two requests acknowledged by Bob."""

    def mail(message_id: str, sender: str, subject: str, at: str, parent: str = "") -> bytes:
        to = "dana@initech.example" if parent else "support@acme.example"
        built = build_mail(
            message_id, sender=sender, to=to, subject=subject, at=_utc(at), parent=parent or None
        )
        return built.as_bytes()

    # Mon 10:00 Berlin: acknowledge (4 business hours) due Mon 14:00, late on Tuesday;
    # action plan (16 business hours) due Tue 17:00 Berlin, within Tuesday's working day.
    opened = "2026-11-23T09:00"
    checkout = mail("g1@globex.example", "dana@globex.example", "Globex checkout", opened)
    server.append(user, "INBOX", checkout, _utc(opened))
    # Initech, 24x7, plan 48h with a 4h warning: due Tue 16:00 UTC (3h after Carol's
    # 08:00: at risk) and Tue 20:00 UTC (15:00 in New York: due today).
    for number, opened in (("1", "2026-11-22T16:00"), ("2", "2026-11-22T20:00")):
        request = f"i{number}@initech.example"
        server.append(
            user,
            "INBOX",
            mail(request, "eve@initech.example", f"Initech export {number}", opened),
            _utc(opened),
        )
        replied = (_utc(opened) + timedelta(minutes=10)).isoformat()[:16]
        server.append(
            user,
            "Sent",
            mail(f"r{number}@acme.example", "bob@acme.example", "Re: x", replied, parent=request),
            _utc(replied),
        )


@pytest.fixture
def briefed(
    tmp_path: Path,
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServicesFromConfig]:
    """``briefed(clock, dry_run=False)``: a service from the config; all closed after."""
    _seed(dovecot_server, imap_user.username)
    mailbox = MailboxSpec("support", imap_user, idle=None, poll_interval=None)
    with services_from_config(tmp_path, mailbox, smtp_sink, monkeypatch, OVERRIDES) as build:
        yield build


def _briefings(sink: SmtpSink) -> list[ReceivedMail]:
    return [m for m in sink.messages if m.message["X-SLA-Daemon"] == "briefing"]


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    content: str = body.get_content()
    return content


def test_one_briefing_per_owner_at_eight_in_their_zone_once_a_day(
    briefed: ServicesFromConfig, smtp_sink: SmtpSink
) -> None:
    """Each owner's briefing goes once a day at 08:00 in their zone, and only then.

    07:59 Berlin nothing; 08:00 Alice's; 08:30 nothing more; 08:00 New York Carol's (Frank,
    with nothing to say, none); a restart re-sends nothing; the next day a new one.
    """
    clock = MovableClock(TUESDAY_0759_BERLIN)
    service = briefed(clock)
    report = service.run_cycle()
    assert _briefings(smtp_sink) == []
    assert report.next_check_at == _utc("2026-11-24T07:00")  # the runner wakes for 08:00

    clock.at = _utc("2026-11-24T07:00")
    service.run_cycle()
    [alice] = _briefings(smtp_sink)
    assert alice.rcpt_tos == (ALICE,)
    assert alice.message["Subject"] == "Your day: 1 late, 1 at risk, 0 due today"
    assert alice.message["Auto-Submitted"] == "auto-generated"
    text = _text(alice.message)
    assert "Mon 23 Nov 2026 14:00 CET (UTC+01:00) (18h late)" in text  # acknowledgement
    assert "Tue 24 Nov 2026 17:00 CET (UTC+01:00) (in 9h)" in text  # action plan
    assert text.count("Globex: ") == 2 and "Globex checkout" in text

    clock.at = _utc("2026-11-24T07:30")
    service.run_cycle()
    assert len(_briefings(smtp_sink)) == 1

    clock.at = _utc("2026-11-24T13:00")  # 08:00 in New York
    with capture_logs() as logs:
        service.run_cycle()
    [_, carol] = _briefings(smtp_sink)
    assert carol.rcpt_tos == (CAROL,)
    assert carol.message["Subject"] == "Your day: 0 late, 1 at risk, 1 due today"
    carol_text = _text(carol.message)
    assert "Tue 24 Nov 2026 11:00 EST (UTC-05:00) (in 3h)" in carol_text
    assert "Tue 24 Nov 2026 15:00 EST (UTC-05:00) (in 7h)" in carol_text
    assert carol_text.index("Initech export 1") < carol_text.index("Initech export 2")
    [skipped] = [e for e in logs if e["event"] == "briefing.suppressed"]
    assert skipped["owner"] == FRANK and skipped["reason"] == "nothing late, at risk or due today"
    [frank] = [e for e in service.store.outbox() if e.key == f"briefing|{FRANK}|2026-11-24"]
    assert (frank.status, frank.payload) == ("suppressed", None)

    clock.at = _utc("2026-11-24T13:30")
    restarted = briefed(clock)
    assert restarted.run_cycle().sent == 0
    assert len(_briefings(smtp_sink)) == 2

    clock.at = _utc("2026-11-25T07:00")  # Wednesday 08:00 Berlin
    restarted.run_cycle()
    [first, _, next_day] = _briefings(smtp_sink)
    assert next_day.rcpt_tos == (ALICE,)
    assert next_day.message["Subject"] == "Your day: 2 late, 0 at risk, 0 due today"
    assert next_day.message["Message-ID"] != first.message["Message-ID"]


def test_dry_run_logs_the_briefing_and_records_nothing(
    briefed: ServicesFromConfig, smtp_sink: SmtpSink
) -> None:
    """``run --dry-run`` at 08:00 logs what Alice would get; nothing is stored or sent."""
    clock = MovableClock(_utc("2026-11-24T07:00"))
    service = briefed(clock, dry_run=True)
    with capture_logs() as logs:
        service.run_cycle()
    [would] = [e for e in logs if e["event"] == "briefing.would_decide"]
    assert (would["owner"], would["late"], would["at_risk"]) == (ALICE, 1, 1)
    assert smtp_sink.messages == []
    assert [e for e in service.store.outbox() if e.key.startswith("briefing|")] == []
