"""Inbound loop protection through a real Dovecot, ``run --once`` and a real SMTP sink.

Each case appends one message that must never be auto-acknowledged next to one genuine
client request that must be (so that a run which sends nothing at all fails), runs one
cycle, and checks the sink, the reason counted in the cycle report (the ``cycle.done``
log line's ``suppressed_by_reason``) and the log line that names the reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import configs
from tests.configs import Replace
from tests.conftest import ImapUser
from tests.e2e.test_first_run import OWNER, _cli, support_mailbox
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail, SmtpSink

pytestmark = pytest.mark.integration

SUPPORT = "Acme Support <support@acme.example>"
HELPDESK = "helpdesk@outsourced.example"  # a team address outside the team domain


def write_config(tmp_path: Path, user: ImapUser, sink: SmtpSink) -> Path:
    """One mailbox, the sink, account Globex; the team owns acme.example and HELPDESK."""
    overrides = {
        "team": {"addresses": [HELPDESK]},
        "policies": Replace(
            {"standard": {"acknowledge": {"within": "1h"}, "action_plan": {"within": "48h"}}}
        ),
        "accounts": [{"name": "Globex", "domains": ["globex.example"], "owner": OWNER}],
        "ingest": {"auto_ack_max_age": "1h"},
        "notices": {"digest_window": "5m"},  # the daemon's default: team notices batched
    }
    return configs.write_config(
        tmp_path / "config.yaml",
        mailboxes=[support_mailbox(user)],
        sink=sink,
        overrides=overrides,
    )


def run_once(config: Path, user: ImapUser) -> dict[str, Any]:
    """``run --once``; return the log lines (JSON on a pipe) by event, in order."""
    result = _cli(config, user, "run", "--once")
    assert result.returncode == 0, result.stderr
    events: dict[str, Any] = {}
    for line in result.stderr.splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            events.setdefault(event["event"], []).append(event)
    return events


def auto_acks(mails: list[ReceivedMail]) -> list[ReceivedMail]:
    """The auto-acknowledgements among ``mails``."""
    return [m for m in mails if m.message["X-SLA-Daemon"] == "auto_ack"]


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# (case, sender, extra headers, subject, minutes old, reason code in the report)
CASES: list[tuple[str, str, dict[str, str], str, int, str]] = [
    ("own notice", "dana@globex.example", {"X-SLA-Daemon": "warning"}, "Status", 2, "own_notice"),
    (
        "auto-reply",
        "dana@globex.example",
        {"Auto-Submitted": "auto-replied"},
        "Re: Status",
        2,
        "auto_reply",
    ),
    (
        "bounce",
        "mailer-daemon@globex.example",
        {},
        "Undelivered Mail Returned to Sender",
        2,
        "bounce",
    ),
    (
        "feedback report",
        "dana@globex.example",
        {"Feedback-Type": "abuse"},
        "Report",
        2,
        "feedback_report",
    ),
    (
        "challenge-response",
        "dana@globex.example",
        {"X-Bluebottle-Request": "yes"},
        "Please confirm",
        2,
        "challenge_response",
    ),
    ("bulk", "dana@globex.example", {"Precedence": "bulk"}, "Newsletter", 2, "bulk"),
    ("list traffic", "dana@globex.example", {"List-Id": "<users.globex.example>"}, "Q", 2, "list"),
    ("the team", "bob@acme.example", {}, "Internal question", 2, "team_sender"),
    ("a team address", HELPDESK, {}, "Forwarded request", 2, "team_sender"),
    (
        "Reply-To the notices' From",
        "dana@globex.example",
        {"Reply-To": "support@acme.example"},
        "Help",
        2,
        "our_address",
    ),
    (
        "Reply-To a team address",
        "dana@globex.example",
        {"Reply-To": HELPDESK.upper()},
        "Help",
        2,
        "our_address",
    ),
    ("older than auto_ack_max_age", "dana@globex.example", {}, "Old request", 120, "too_old"),
]


@pytest.mark.parametrize(
    ("sender", "headers", "subject", "minutes", "code"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_mail_that_must_not_be_auto_acked_is_not_and_the_reason_is_reported(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    tmp_path: Path,
    sender: str,
    headers: dict[str, str],
    subject: str,
    minutes: int,
    code: str,
) -> None:
    """No auto-ack for the guarded mail; the control request gets one; the reason is logged.

    The cycle report counts the suppression under its code, and a log line gives it.
    """
    now = _now()
    guarded_at = now - timedelta(minutes=minutes)
    control_at = now - timedelta(minutes=1)
    guarded = build_mail(
        "guarded@globex.example", sender=sender, subject=subject, at=guarded_at, headers=headers
    )
    control = build_mail(
        "control@globex.example",
        sender="Erin <erin@globex.example>",
        subject="Login fails",
        at=control_at,
    )
    dovecot_server.append_many(
        imap_user.username,
        "INBOX",
        [(guarded.as_bytes(), guarded_at, ()), (control.as_bytes(), control_at, ())],
    )
    config = write_config(tmp_path, imap_user, smtp_sink)

    events = run_once(config, imap_user)

    [ack] = auto_acks(smtp_sink.messages)
    assert ack.rcpt_tos == ("erin@globex.example",)
    assert ack.message["In-Reply-To"] == "<control@globex.example>"
    [done] = events["cycle.done"]
    assert done["suppressed_by_reason"] == {code: 1}
    reasons = [e.get("reason") for e in events.get("auto_ack.not_due", [])] + [
        e.get("reason") for e in events.get("notice.suppressed", [])
    ]
    assert len(reasons) == 1 and reasons[0] is not None


def test_at_most_one_auto_ack_per_cycle(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A client who writes three times before anyone answers gets one auto-ack, ever.

    Two runs: the follow-ups arrive before the first and between the runs.
    """
    now = _now()
    first_at = now - timedelta(minutes=5)
    first = build_mail(
        "c1@globex.example", sender="dana@globex.example", subject="Help", at=first_at
    )
    dovecot_server.append(imap_user.username, "INBOX", first.as_bytes(), first_at)
    second_at = now - timedelta(minutes=4)
    second = build_mail(
        "c2@globex.example",
        sender="dana@globex.example",
        subject="Re: Help",
        at=second_at,
        parent="c1@globex.example",
    )
    dovecot_server.append(imap_user.username, "INBOX", second.as_bytes(), second_at)
    config = write_config(tmp_path, imap_user, smtp_sink)

    run_once(config, imap_user)
    third_at = now - timedelta(minutes=1)
    third = build_mail(
        "c3@globex.example",
        sender="dana@globex.example",
        subject="Re: Help",
        at=third_at,
        parent="c2@globex.example",
    )
    dovecot_server.append(imap_user.username, "INBOX", third.as_bytes(), third_at)
    run_once(config, imap_user)

    [ack] = auto_acks(smtp_sink.messages)
    assert ack.message["In-Reply-To"] == "<c1@globex.example>"
