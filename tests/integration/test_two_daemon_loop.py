"""Two teams whose daemons are each other's clients must not auto-ack each other for ever.

Team A (a.example) counts b.example as a client and team B counts a.example. Each has
its own Dovecot user and config, both send through one real aiosmtpd sink, and the relay
(``tests/servers/relay.py``) delivers each mail into the recipient's INBOX and the
sender's Sent. One person at A writes to B's support address; then both daemons run
their cycles in turn, the relay delivering between them, for ten rounds.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog.testing

from sla_daemon.app import build_service
from sla_daemon.config import load_config
from sla_daemon.service import CycleReport
from tests.configs import MailboxSpec, Replace, write_config
from tests.conftest import ImapUser
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.relay import MailRelay
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

ROUNDS = 10
NOTICE_HEADERS = ("Auto-Submitted", "X-Auto-Response-Suppress", "X-SLA-Daemon", "X-SLA-Notice-Key")


def _config(tmp_path: Path, team: str, client: str, user: ImapUser, sink: SmtpSink) -> Path:
    """Team ``team``.example, whose only account is the domain ``client``.example."""
    mailbox = MailboxSpec(
        "support", user, idle=None, poll_interval=None, password_env=f"{team.upper()}_IMAP_PASSWORD"
    )
    overrides = {
        "team": {
            "name": f"Team {team.upper()}",
            "domains": [f"{team}.example"],
            "from": f"Team {team.upper()} <support@{team}.example>",
        },
        "policies": Replace(
            {"standard": {"acknowledge": {"within": "8h"}, "action_plan": {"within": "48h"}}}
        ),
        "accounts": [
            {
                "name": f"{client.upper()} clients",
                "domains": [f"{client}.example"],
                "owner": f"lead@{team}.example",
            }
        ],
        "notices": {"digest_window": "5m"},  # the daemon's default: team notices batched
    }
    return write_config(
        tmp_path / f"{team}.yaml",
        mailboxes=[mailbox],
        sink=sink,
        state_dir=tmp_path / team / "state",
        overrides=overrides,
    )


@pytest.mark.parametrize("strip", [False, True], ids=["headers kept", "headers stripped"])
def test_two_daemons_answering_each_other_send_at_most_one_auto_ack_each(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    strip: bool,
) -> None:
    """Each daemon sends at most one auto-ack and the mail between them stops.

    With the notice headers kept, B's auto-ack reaches A as automated mail and A's report
    says so (``own_notice``). With a relay that strips them, A answers B's auto-ack once
    (it looks like a client's reply), and B's conversation already had its auto-ack, so
    the exchange still ends after two.
    """
    user_b = ImapUser("loop-b-" + imap_user.username, "pw-b", imap_user.host, imap_user.port)
    dovecot_server.add_user(user_b.username, user_b.password)
    user_a = imap_user
    monkeypatch.setenv("A_IMAP_PASSWORD", user_a.password)
    monkeypatch.setenv("B_IMAP_PASSWORD", user_b.password)
    relay = MailRelay(
        dovecot_server,
        smtp_sink,
        {"a.example": user_a.username, "b.example": user_b.username},
        strip_headers=NOTICE_HEADERS if strip else (),
    )
    now = datetime.now(UTC).replace(microsecond=0)
    first = build_mail(
        "question@a.example",
        sender="Alice <alice@a.example>",
        to="Team B <support@b.example>",
        subject="Your API returns 500",
        at=now - timedelta(minutes=1),
    ).as_bytes()
    dovecot_server.append(user_b.username, "INBOX", first, now - timedelta(minutes=1))
    dovecot_server.append(user_a.username, "Sent", first, now - timedelta(minutes=1))
    services = {
        name: build_service(load_config(_config(tmp_path, name, other, user, smtp_sink)))
        for name, other, user in (("b", "a", user_b), ("a", "b", user_a))
    }
    reasons: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}
    per_round: list[int] = []

    with structlog.testing.capture_logs() as logs:
        for _ in range(ROUNDS):
            for name, service in services.items():
                report: CycleReport = service.run_cycle()
                reasons[name] += report.suppressed_by_reason
                relay.deliver()
            per_round.append(len(smtp_sink.messages))
    for service in services.values():
        service.store.close()

    mails = smtp_sink.messages
    by_team = Counter(str(m.message["From"]).rpartition("@")[2].rstrip(">") for m in mails)
    auto_acks = Counter(
        str(m.message["From"]).rpartition("@")[2].rstrip(">")
        for m in mails
        if m.message["X-SLA-Daemon"] == "auto_ack"
    )
    assert auto_acks["b.example"] == 1  # the human question is acknowledged
    assert auto_acks["a.example"] <= 1
    assert sum(by_team.values()) <= 2
    assert per_round[-1] == per_round[1]  # nothing new after the second round: no loop
    assert relay.undeliverable == []
    if not strip:
        assert auto_acks["a.example"] == 0
        assert reasons["a"]["own_notice"] == 1
        [why] = [e for e in logs if e["event"] == "auto_ack.not_due"]
        assert why["reason"] == "own_notice" and "X-SLA-Daemon" in why["detail"]
    else:
        assert auto_acks["a.example"] == 1
