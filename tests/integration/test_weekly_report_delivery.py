"""The weekly report end to end: real Dovecot, real SQLite state, real SMTP sink.

The service is built from a config file by ``app.build_service`` with ``reports.weekly``
at Monday 08:00 Berlin and driven by a clock the test moves. Mail is seeded in the week
before with backdated INTERNALDATEs: one request answered with an action plan at once,
one never answered.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.configs import MailboxSpec, Replace
from tests.conftest import ImapUser
from tests.integration.test_briefing_delivery import MovableClock
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail, SmtpSink
from tests.services_from_config import ServicesFromConfig, services_from_config

pytestmark = pytest.mark.integration

LEAD, BOSS = "lead@acme.example", "boss@acme.example"
MONDAY_0800_BERLIN = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
OVERRIDES = {
    "timezone": "UTC",
    "policies": Replace(
        {
            "standard": {
                "auto_ack": False,
                "acknowledge": {"within": "1h"},
                "action_plan": {"within": "48h"},
            }
        }
    ),
    "accounts": [
        {
            "name": "Globex",
            "domains": ["globex.example"],
            "policy": "standard",
            "owner": "alice@acme.example",
        }
    ],
    "reports": {"weekly": {"at": "mon 08:00", "to": [LEAD, BOSS], "timezone": "Europe/Berlin"}},
    # The daemon's default digest window: only the report is due at once.
    "notices": {"digest_window": "5m", "delivery": {"retry_first": "1m"}},
}


def _seed(server: DovecotServer, user: str) -> None:
    """Globex: g1 answered with an action plan after 10 minutes; g2 never answered."""
    opened = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    for raw, folder, at in (
        (build_mail("g1@globex.example", sender="dana@globex.example", subject="VPN down",
                    at=opened), "INBOX", opened),
        (build_mail("r1@acme.example", sender="bob@acme.example", to="dana@globex.example",
                    subject="Re: VPN down", at=opened + timedelta(minutes=10),
                    body="Action plan: we restart the gateway tonight.",
                    parent="g1@globex.example"), "Sent", opened + timedelta(minutes=10)),
        (build_mail("g2@globex.example", sender="dana@globex.example", subject="Invoices missing",
                    at=opened + timedelta(days=1)), "INBOX", opened + timedelta(days=1)),
    ):  # fmt: skip
        server.append(user, folder, raw.as_bytes(), at)


@pytest.fixture
def weekly(
    tmp_path: Path,
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ServicesFromConfig]:
    """``weekly(clock)``: a service from the config; all closed after."""
    _seed(dovecot_server, imap_user.username)
    mailbox = MailboxSpec("support", imap_user, idle=None, poll_interval=None)
    with services_from_config(tmp_path, mailbox, smtp_sink, monkeypatch, OVERRIDES) as build:
        yield build


def _reports(sink: SmtpSink) -> list[ReceivedMail]:
    return [m for m in sink.messages if m.message["X-SLA-Daemon"] == "weekly_report"]


def test_one_report_to_each_recipient_at_monday_eight_survives_outage_and_restart(
    weekly: ServicesFromConfig, smtp_sink: SmtpSink
) -> None:
    """First start at 07:59: the week before's report, still in its week, goes at once.

    08:00: this week's report is refused by SMTP (451) and retried a minute later: one mail
    to both recipients, counting the week's two cycles (g2 late on both clocks), with its two PNG
    charts. Neither another cycle nor a restarted service sends it again.
    """
    clock = MovableClock(MONDAY_0800_BERLIN - timedelta(minutes=1))
    service = weekly(clock)
    report = service.run_cycle()
    [earlier] = _reports(smtp_sink)
    assert earlier.message["Subject"] == "SLA report 2026-11-09 to 2026-11-16: 0 cycles, 0 breaches"
    assert report.next_check_at is not None and report.next_check_at <= MONDAY_0800_BERLIN
    smtp_sink.clear()

    clock.at = MONDAY_0800_BERLIN
    smtp_sink.respond_with = "451 4.3.0 Try again later"
    assert service.run_cycle().failed == 1
    assert _reports(smtp_sink) == []
    smtp_sink.respond_with = None

    clock.at = MONDAY_0800_BERLIN + timedelta(minutes=2)
    service.run_cycle()
    [mail] = _reports(smtp_sink)
    assert sorted(mail.rcpt_tos) == [BOSS, LEAD]
    # g2 missed both its clocks: two breaches (the report counts late clocks).
    assert mail.message["Subject"] == "SLA report 2026-11-16 to 2026-11-23: 2 cycles, 2 breaches"
    images = [p for p in mail.message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 2
    body = mail.message.get_body(("plain",))
    assert body is not None and "Invoices missing" in body.get_content()

    clock.at += timedelta(hours=1)
    service.run_cycle()
    restarted = weekly(clock)
    restarted.run_cycle()
    assert len(_reports(smtp_sink)) == 1


def test_a_week_missed_while_down_is_skipped_and_logged(
    weekly: ServicesFromConfig, smtp_sink: SmtpSink
) -> None:
    """Started only on the next Tuesday: that week's report goes, last week's is skipped."""
    clock = MovableClock(MONDAY_0800_BERLIN + timedelta(days=8))
    service = weekly(clock)
    with capture_logs() as logs:
        service.run_cycle()
    [mail] = _reports(smtp_sink)
    assert mail.message["Subject"].startswith("SLA report 2026-11-23 to 2026-11-30: 0 cycles")
    [skipped] = [e for e in logs if e["event"] == "weekly_report.skipped"]
    assert skipped["key"] == "weekly_report|2026-W48"
    assert "never sent for a week that has passed" in skipped["reason"]
