"""``sla-daemon report`` end to end, against a real Dovecot and a real SMTP sink.

Four client mails are appended with backdated INTERNALDATEs: (x) 30 hours old, answered
with an action plan after 10 minutes; (y) 49 hours old, answered after 20 minutes without
a plan (a breach); (z) one minute old, auto-acknowledged by the run; (w) 10 days old,
answered with an action plan after 30 minutes. After one ``run --once`` the report must
show those figures in JSON, CSV and HTML, and change nothing.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ImapUser
from tests.e2e.test_first_run import OWNER, _cli, _config, _mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

SUPPORT = "Acme Support <support@acme.example>"
PLAN = "Hello,\n\nAction plan: rotate the keys today, then re-run the import.\n"
# letter: (hours old, minutes to the team's reply, whether the reply is an action plan)
SCENARIOS = {"x": (30.0, 10, True), "y": (49.0, 20, False), "w": (240.0, 30, True)}


def _seed(server: DovecotServer, user: ImapUser, now: datetime) -> None:
    inbox = []
    sent = []
    arrivals = {k: now - timedelta(hours=hours) for k, (hours, _, _) in SCENARIOS.items()}
    arrivals["z"] = now - timedelta(minutes=1)
    for k, at in arrivals.items():
        client = f"Client {k.upper()} <{k}@globex.example>"
        raw = _mail(f"{k}@globex.example", client, SUPPORT, f"Request {k}", "Please help.", at)
        inbox.append((raw, at, ()))
    for k, (_, minutes, is_plan) in SCENARIOS.items():
        at = arrivals[k] + timedelta(minutes=minutes)
        body = PLAN if is_plan else "Thanks, we are looking into it."
        raw = _mail(
            f"reply-{k}@acme.example",
            "Bob <bob@acme.example>",
            f"{k}@globex.example",
            f"Re: Request {k}",
            body,
            at,
            parent=f"{k}@globex.example",
        )
        sent.append((raw, at, ()))
    server.append_many(user.username, "INBOX", inbox)
    server.append_many(user.username, "Sent", sent)


def test_report_after_a_run_shows_the_figures_in_json_csv_and_html(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Cycles, medians, p90s, targets met, breaches and follow-ups match the mailbox."""
    now = datetime.now(UTC).replace(microsecond=0)
    _seed(dovecot_server, imap_user, now)
    follow_up = {"policies": {"standard": {"follow_up_after": "24h"}}}
    config = _config(tmp_path, imap_user, smtp_sink, overrides=follow_up)
    run = _cli(config, imap_user, "run", "--once")
    assert run.returncode == 0, run.stderr
    follow_ups = [m for m in smtp_sink.messages if m.message["X-SLA-Daemon"] == "follow_up"]
    database = tmp_path / "state" / "state.sqlite3"
    before = database.read_bytes()

    result = _cli(config, imap_user, "report", "--format", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    [globex] = document["accounts"]
    assert (globex["name"], globex["owner"]) == ("Globex", OWNER)
    assert (globex["conversations"], globex["cycles"]) == (4, 4)
    ack = globex["time_to_acknowledge"]
    assert ack["human"] == {"count": 3, "median_seconds": 1200, "p90_seconds": 1800}
    assert ack["auto"]["count"] == 1
    assert globex["time_to_action_plan"] == {
        "count": 2,
        "median_seconds": 1200,
        "p90_seconds": 1800,
    }
    assert globex["acknowledge"] == {
        "cycles": 4,
        "within": 4,
        "breached": 0,
        "open": 0,
        "share_within": 1.0,
    }
    assert globex["action_plan"] == {
        "cycles": 4,
        "within": 3,
        "breached": 1,
        "open": 2,
        "share_within": 0.75,
    }
    assert globex["breaches"] == 1
    assert globex["follow_ups"] == len(follow_ups) == 2  # x and w: plan quiet for 24h
    assert globex["check_ins"] == 0
    assert document["owners"][0]["name"] == OWNER
    by_subject = {c["subject"]: c for c in document["cycles"]}
    assert by_subject["Request z"]["acknowledged_by"] == "auto"
    assert by_subject["Request y"]["action_plan_within"] is False

    since = (now - timedelta(days=7)).isoformat()
    week = _cli(config, imap_user, "report", "--since", since, "--format", "csv")
    assert week.returncode == 0, week.stderr
    rows = {r["name"]: r for r in csv.DictReader(io.StringIO(week.stdout))}
    assert rows["Globex"]["cycles"] == "3"  # w is older than the period
    assert rows["Globex"]["ack_human_median_s"] == "900"
    assert rows[OWNER]["group"] == "owner"

    page = _cli(config, imap_user, "report", "--format", "html")
    assert page.returncode == 0, page.stderr
    assert page.stdout.count("<svg") == 2
    assert "Request y" in page.stdout  # the breached cycle is listed
    assert database.read_bytes() == before
