"""``sla-daemon audit`` end to end over an mbox file and a Maildir, with a real SMTP sink.

Three Globex requests (acknowledge within 1h, action plan within 48h, auto-ack on):
(a) answered with an action plan after 10 minutes; (b) answered with a plan after 3 hours
(acknowledgement late); (c) never answered. The export holds both directions in one
mbox (as a Takeout export does) or one Maildir. The audit must print the team's figures
(without the daemon's own notices), list what the daemon would have sent, send nothing
and leave the configured state directory alone.
"""

from __future__ import annotations

import json
import mailbox
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.test_first_run import SLA_DAEMON
from tests.mailbuild import build_mail
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PLAN = "Hello,\n\nAction plan: we restart the gateway tonight.\n"


def _messages() -> list[bytes]:
    mails = []
    for letter, day, reply_after in (("a", 0, timedelta(minutes=10)), ("b", 1, timedelta(hours=3)),
                                     ("c", 2, None)):  # fmt: skip
        opened = T0 + timedelta(days=day)
        request = f"{letter}@globex.example"
        mails.append(
            build_mail(
                request, sender=f"{letter}@globex.example", subject=f"Request {letter}", at=opened
            )
        )
        if reply_after is not None:
            mails.append(
                build_mail(
                    f"reply-{letter}@acme.example",
                    sender="bob@acme.example",
                    to=request,
                    subject=f"Re: Request {letter}",
                    at=opened + reply_after,
                    body=PLAN,
                    parent=request,
                )
            )
    return [mail.as_bytes() for mail in mails]


def _config(tmp_path: Path, sink: SmtpSink) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
state_dir: {tmp_path / "state"}
timezone: UTC
team: {{name: Acme Support, domains: [acme.example], from: "Support <support@acme.example>"}}
mailboxes:
  - {{name: support, path: {tmp_path / "live"}, format: maildir}}
smtp: {{host: {sink.host}, port: {sink.port}, security: none}}
notices: {{digest_window: 0s}}
policies:
  standard:
    acknowledge: {{within: 1h}}
    action_plan: {{within: 48h}}
    re_escalate_every: 7d
accounts:
  - {{name: Globex, domains: [globex.example], policy: standard, owner: alice@acme.example}}
""",
        encoding="utf-8",
    )
    return path


def _export(tmp_path: Path, layout: str) -> Path:
    if layout == "mbox":
        target = tmp_path / "takeout.mbox"
        box: mailbox.Mailbox[mailbox.mboxMessage] | mailbox.Maildir = mailbox.mbox(target)
    else:
        target = tmp_path / "export-maildir"
        box = mailbox.Maildir(target)
    for raw in _messages():
        box.add(raw)
    box.close()
    return target


@pytest.mark.parametrize("layout", ["mbox", "maildir"])
def test_audit_prints_figures_and_would_be_notices_and_sends_nothing(
    layout: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """3 cycles: ack 1 within, 2 late; plan 2 within, 1 late; notices listed; nothing sent."""
    config = _config(tmp_path, smtp_sink)
    export = _export(tmp_path, layout)
    run = subprocess.run(
        [SLA_DAEMON, "--config", str(config), "audit", str(export), "--until", "2026-11-07",
         "--format", "json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    document = json.loads(run.stdout)
    [globex] = [row for row in document["accounts"] if row["name"] == "Globex"]
    assert globex["cycles"] == 3
    assert (globex["acknowledge"]["within"], globex["acknowledge"]["breached"]) == (1, 2)
    assert (globex["action_plan"]["within"], globex["action_plan"]["breached"]) == (2, 1)
    notices = document["would_send"]
    acks = [n for n in notices if n["kind"] == "auto_ack"]
    assert sorted(r for n in acks for r in n["recipients"]) == [
        "a@globex.example", "b@globex.example", "c@globex.example"
    ]  # fmt: skip
    assert all(n["subject"].startswith("Re: Request") for n in acks)
    breaches = [n for n in notices if n["kind"] == "breach"]
    assert [n["decided_at"] for n in breaches] == ["2026-11-06T09:00:00+00:00"]
    assert "Request c" in breaches[0]["subject"]
    assert smtp_sink.messages == []
    assert not (tmp_path / "state").exists()

    text = subprocess.run(
        [SLA_DAEMON, "--config", str(config), "audit", str(export), "--until", "2026-11-07"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    assert "What the daemon would have sent" in text.stdout
    assert "2026-11-06 09:00  breach" in text.stdout
