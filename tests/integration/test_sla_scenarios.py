"""The SLA rules of docs/sla.md driven through a real Dovecot, ``run --once`` and ``status``.

Each scenario appends mail with backdated INTERNALDATEs to INBOX and Sent, writes a
config, runs ``sla-daemon run --once`` and reads ``status --json`` (with ``--as-of`` where
the story needs a moment in the past); notices are read from a real SMTP sink. Expected
times are derived from the INTERNALDATEs given to Dovecot, never from how long a run took.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest

from tests.configs import Replace
from tests.conftest import ImapUser
from tests.e2e.test_first_run import LEAD, OWNER, _cli, _config, _mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail, SmtpSink

pytestmark = pytest.mark.integration

BERLIN = ZoneInfo("Europe/Berlin")
SUPPORT = "Acme Support <support@acme.example>"
BOB = "Bob <bob@acme.example>"


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _write_config(
    tmp_path: Path,
    user: ImapUser,
    sink: SmtpSink,
    policy: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write config.yaml with one mailbox, the sink, account Globex on ``policy``.

    ``policy`` is the whole of ``policies.standard``; ``extra`` is merged in at the top
    level (e.g. a ``calendars`` section).
    """
    # Each run sends its team notices at once (the builder's digest_window: 0s).
    overrides = {
        "policies": Replace({"standard": policy}),
        "ingest": {"backfill": "60d"},
        **(extra or {}),
    }
    return _config(tmp_path, user, sink, overrides=overrides)


def _run_once(config: Path, user: ImapUser) -> None:
    result = _cli(config, user, "run", "--once")
    assert result.returncode == 0, result.stderr


def _status(config: Path, user: ImapUser, as_of: datetime | None = None) -> dict[str, Any]:
    """``status --json`` (at ``as_of`` when given): the conversations by client local part."""
    args = ["status", "--json"]
    if as_of is not None:
        args += ["--as-of", as_of.isoformat()]
    result = _cli(config, user, *args)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    conversations: list[dict[str, Any]] = document["conversations"]
    return {str(c["client"]).split("@")[0]: c for c in conversations}


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def _clock(conversation: dict[str, Any], cycle: int, name: str) -> dict[str, Any]:
    """One clock of one cycle of the conversation's ledger."""
    [found] = [c for c in conversation["ledger"]["cycles"] if c["cycle"] == cycle]
    clocks: list[dict[str, Any]] = found["clocks"]
    [clock] = [c for c in clocks if c["clock"] == name]
    return clock


def _action_plan_breached(conversation: dict[str, Any]) -> bool:
    """Whether the current cycle's action-plan clock is breached, per the ledger."""
    return bool(_clock(conversation, conversation["cycle"], "action_plan")["breached"])


def _kinds(mails: list[ReceivedMail]) -> list[str]:
    return [
        "auto_ack" if m.message["Auto-Submitted"] == "auto-replied" else m.message["X-SLA-Daemon"]
        for m in mails
    ]


def _quiet_friday(now: datetime) -> datetime:
    """The latest Friday 17:30 Berlin time before ``now`` outside German holidays.

    Neither that Friday nor the Monday after it is a German public holiday.
    """
    german = holidays.country_holidays("DE", years=range(now.year - 1, now.year + 2))
    day: date = (now - timedelta(minutes=2)).astimezone(BERLIN).date()
    while True:
        if day.weekday() == 4:
            friday = datetime.combine(day, time(17, 30), tzinfo=BERLIN)
            monday = day + timedelta(days=3)
            if friday + timedelta(minutes=1) < now and day not in german and monday not in german:
                return friday
        day -= timedelta(days=1)


def test_business_calendar_friday_evening_mail_is_due_monday_morning(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A mail on Friday 17:30 with 4h on Mon-Fri 09:00-18:00 Berlin is due Monday 12:30.

    30 minutes count on Friday, the weekend counts nothing, 3h30 from Monday 09:00.
    """
    friday = _quiet_friday(_now())
    dovecot_server.append(
        imap_user.username,
        "INBOX",
        _mail(
            "friday@globex.example",
            "Dana <dana@globex.example>",
            SUPPORT,
            "Export broken",
            "The nightly export stopped working, please have a look.",
            friday,
        ),
        friday,
    )
    config = _write_config(
        tmp_path,
        imap_user,
        smtp_sink,
        {
            "calendar": "office",
            "acknowledge": {"within": "4h"},
            "action_plan": {"within": "48h"},
            "auto_ack": False,
        },
        extra={
            "calendars": {
                "office": {
                    "timezone": "Europe/Berlin",
                    "hours": {"mon-fri": ["09:00-18:00"]},
                    "holidays": {"country": "DE"},
                }
            }
        },
    )

    _run_once(config, imap_user)

    as_of = friday + timedelta(minutes=1)
    conversation = _status(config, imap_user, as_of=as_of)["dana"]
    monday = datetime.combine(friday.date() + timedelta(days=3), time(12, 30), tzinfo=BERLIN)
    assert _time(conversation["opened_at"]) == friday
    assert conversation["state"] == "awaiting_ack"
    assert conversation["cycle"] == 1
    assert _time(conversation["acknowledge_due"]) == monday
    acknowledge = _clock(conversation, 1, "acknowledge")
    assert acknowledge["calendar"] == "office"
    assert acknowledge["within_seconds"] == 4 * 3600
    assert acknowledge["counted_seconds"] == 60  # Friday 17:30 to 17:31 is working time
    assert _time(acknowledge["due_at"]) == monday
    assert acknowledge["breached"] is False
    # auto_ack is off: whatever else the run decided, the client got nothing.
    assert all("dana@globex.example" not in m.rcpt_tos for m in smtp_sink.messages)


def _answered_with_plan(
    server: DovecotServer, user: ImapUser, letter: str, opened: datetime, answer: str, at: datetime
) -> None:
    """A client request, an action plan from Bob an hour later, then the client's answer."""
    client = f"Client {letter.upper()} <{letter}@globex.example>"
    request = f"{letter}-1@globex.example"
    plan = f"plan-{letter}@acme.example"
    server.append_many(
        user.username,
        "INBOX",
        [
            (
                _mail(request, client, SUPPORT, f"Export {letter}", "The export fails.", opened),
                opened,
                (),
            ),
            (
                _mail(f"{letter}-2@globex.example", client, SUPPORT, f"Re: Export {letter}",
                      answer, at, parent=plan),
                at,
                (),
            ),
        ],
    )  # fmt: skip
    replied = opened + timedelta(hours=1)
    server.append(
        user.username,
        "Sent",
        _mail(
            plan,
            BOB,
            f"{letter}@globex.example",
            f"Re: Export {letter}",
            "Hello,\n\nAction plan: we rotate the keys today and re-run the export.\n",
            replied,
            parent=request,
        ),
        replied,
    )


def test_thanks_after_the_action_plan_opens_nothing_but_a_new_request_opens_cycle_two(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """After the action plan a courtesy opens nothing, a new request opens cycle 2.

    "Thanks, that works!" leaves the conversation in cycle 1, action_plan_sent, without an
    auto-ack; "Thanks — but the export still fails, can you check?" two minutes ago opens
    cycle 2 and is auto-acknowledged.
    """
    now = _now()
    opened = now - timedelta(hours=3)
    recent = now - timedelta(minutes=2)
    _answered_with_plan(dovecot_server, imap_user, "a", opened, "Thanks, that works!", recent)
    _answered_with_plan(
        dovecot_server,
        imap_user,
        "b",
        opened,
        "Thanks \N{EM DASH} but the export still fails, can you check?",
        recent,
    )
    config = _write_config(
        tmp_path,
        imap_user,
        smtp_sink,
        {"acknowledge": {"within": "1h"}, "action_plan": {"within": "48h"}},
    )

    _run_once(config, imap_user)

    conversations = _status(config, imap_user)
    assert sorted(conversations) == ["a", "b"]
    courteous, renewed = conversations["a"], conversations["b"]

    assert courteous["cycle"] == 1
    assert courteous["state"] == "action_plan_sent"
    assert _time(courteous["action_plan_at"]) == opened + timedelta(hours=1)
    assert "a-2@globex.example" in courteous["message_ids"]
    assert len(courteous["ledger"]["cycles"]) == 1
    courtesies = courteous["ledger"]["cycles"][0]["courtesies"]
    assert len(courtesies) == 1
    assert "a-2@globex.example" in json.dumps(courtesies)

    assert renewed["cycle"] == 2
    assert renewed["state"] == "awaiting_action_plan"  # acknowledged by the auto-ack
    assert renewed["acknowledged_by"] == "auto"
    assert _time(renewed["opened_at"]) == recent
    assert _time(renewed["action_plan_due"]) == recent + timedelta(hours=48)
    assert renewed["ledger"]["cycles"][-1]["opening_message_id"].strip("<>") == (
        "b-2@globex.example"
    )

    mails = smtp_sink.messages
    assert _kinds(mails) == ["auto_ack"], [m.message["Subject"] for m in mails]
    [ack] = mails
    assert ack.rcpt_tos == ("b@globex.example",)
    assert ack.message["In-Reply-To"] == "<b-2@globex.example>"

    _run_once(config, imap_user)
    assert len(smtp_sink.messages) == 1


def test_action_plan_keyword_set_a_day_later_stops_the_clock_at_the_reply_time(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A `$ActionPlan` keyword set a day after the reply stops the clock at the reply.

    The reply, sent 30h after the request, is marked from another IMAP session only now;
    the action-plan clock stops at the reply's INTERNALDATE, not when the keyword was set
    or seen.
    """
    now = _now()
    opened = now - timedelta(hours=54)
    replied = opened + timedelta(hours=30)  # a day before the keyword is set
    dovecot_server.append(
        imap_user.username,
        "INBOX",
        _mail("late@globex.example", "Dana <dana@globex.example>", SUPPORT, "Import stuck",
              "The import has been stuck since Monday.", opened),
        opened,
    )  # fmt: skip
    reply_uid = dovecot_server.append(
        imap_user.username,
        "Sent",
        _mail("findings@acme.example", BOB, "dana@globex.example", "Re: Import stuck",
              "Hello Dana,\n\nwe found the cause; the fix ships tomorrow.\n", replied,
              parent="late@globex.example"),
        replied,
    )  # fmt: skip
    config = _write_config(
        tmp_path,
        imap_user,
        smtp_sink,
        {"acknowledge": {"within": "1h"}, "action_plan": {"within": "72h"}},
    )

    _run_once(config, imap_user)
    before = _status(config, imap_user)["dana"]
    assert before["state"] == "awaiting_action_plan"
    assert before["action_plan_at"] is None
    assert _time(before["first_human_response_at"]) == replied

    team_member = dovecot_server.connect(imap_user.username)
    try:
        team_member.select_folder("Sent")
        team_member.add_flags([reply_uid], ["$ActionPlan"])
    finally:
        with contextlib.suppress(Exception):
            team_member.logout()
    assert "$ActionPlan" in dovecot_server.flags(imap_user.username, "Sent")[reply_uid]

    _run_once(config, imap_user)
    after = _status(config, imap_user)["dana"]
    assert after["state"] == "action_plan_sent"
    assert _time(after["action_plan_at"]) == replied
    # Acknowledged 30h late (shown, not escalated after the fact); the plan was in time.
    assert after["breaches"] == ["acknowledge"]
    assert _action_plan_breached(after) is False
    action_plan = _clock(after, 1, "action_plan")
    assert _time(action_plan["stopped_at"]) == replied
    [stopped] = [s for s in action_plan["segments"] if s["step"] == "stopped"]
    assert _time(stopped["at"]) == replied
    assert stopped["message_id"].strip("<>") == "findings@acme.example"
    assert smtp_sink.messages == []


def test_policy_change_recomputes_the_due_time_and_sends_nothing_twice(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A shorter action_plan.within recomputes the due time and sends nothing twice.

    Going from 48h to 24h moves the running clock's due time to opened + 24h on the next
    run, which escalates the breach once; a warning already sent is not repeated and a
    third run sends nothing.
    """
    now = _now()
    opened = now - timedelta(hours=30)
    replied = opened + timedelta(minutes=10)
    dovecot_server.append(
        imap_user.username,
        "INBOX",
        _mail("slow@globex.example", "Dana <dana@globex.example>", SUPPORT, "Reports empty",
              "The monthly reports are empty.", opened),
        opened,
    )  # fmt: skip
    dovecot_server.append(
        imap_user.username,
        "Sent",
        _mail("ack@acme.example", BOB, "dana@globex.example", "Re: Reports empty",
              "Thanks Dana, we are looking into it.", replied, parent="slow@globex.example"),
        replied,
    )  # fmt: skip

    def policy(within: str) -> dict[str, Any]:
        return {
            "acknowledge": {"within": "1h"},
            "action_plan": {"within": within, "warn_before": ["24h"]},
        }

    config = _write_config(tmp_path, imap_user, smtp_sink, policy("48h"))
    _run_once(config, imap_user)
    first = _status(config, imap_user)["dana"]
    assert _time(first["action_plan_due"]) == opened + timedelta(hours=48)
    assert first["breaches"] == []
    first_mails = smtp_sink.messages
    # 18h before the 48h deadline: the 24h warning has passed and goes to the owner.
    assert _kinds(first_mails) == ["warning"], [m.message["Subject"] for m in first_mails]
    assert first_mails[0].rcpt_tos == (OWNER,)

    _write_config(tmp_path, imap_user, smtp_sink, policy("24h"))
    _run_once(config, imap_user)
    second = _status(config, imap_user)["dana"]
    assert _time(second["action_plan_due"]) == opened + timedelta(hours=24)
    assert second["breaches"] == ["action_plan"]
    assert _clock(second, 1, "action_plan")["within_seconds"] == 24 * 3600
    new_mails = smtp_sink.messages[len(first_mails) :]
    assert _kinds(new_mails) == ["breach"], [m.message["Subject"] for m in new_mails]
    [breach] = new_mails
    assert sorted(breach.rcpt_tos) == sorted([OWNER, LEAD])
    assert "Reports empty" in breach.message["Subject"]

    _run_once(config, imap_user)
    assert len(smtp_sink.messages) == len(first_mails) + 1


def test_waiting_on_client_pause_moves_the_due_time_by_the_paused_time(
    dovecot_server: DovecotServer, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """A `$WaitingOnClient` pause of 20h moves the action-plan due time by exactly 20h.

    The team's reply carries the keyword; the client answers 20h later (24x7 calendar).
    """
    now = _now()
    opened = now - timedelta(hours=30)
    asked = opened + timedelta(minutes=10)
    answered = asked + timedelta(hours=20)
    dovecot_server.append_many(
        imap_user.username,
        "INBOX",
        [
            (
                _mail("q1@globex.example", "Dana <dana@globex.example>", SUPPORT,
                      "Checkout broken", "Checkout fails for every customer.", opened),
                opened,
                (),
            ),
            (
                _mail("q2@globex.example", "Dana <dana@globex.example>", SUPPORT,
                      "Re: Checkout broken",
                      "Here are the logs: the checkout failed at 09:00 with code 7.",
                      answered, parent="question@acme.example"),
                answered,
                (),
            ),
        ],
    )  # fmt: skip
    dovecot_server.append(
        imap_user.username,
        "Sent",
        _mail("question@acme.example", BOB, "dana@globex.example", "Re: Checkout broken",
              "Hello Dana,\n\nwhich payment provider does the shop use?\n", asked,
              parent="q1@globex.example"),
        asked,
        flags=("$WaitingOnClient",),
    )  # fmt: skip
    config = _write_config(
        tmp_path,
        imap_user,
        smtp_sink,
        {"acknowledge": {"within": "1h"}, "action_plan": {"within": "48h"}},
    )

    _run_once(config, imap_user)

    before_pause = _status(config, imap_user, as_of=asked - timedelta(minutes=1))["dana"]
    assert _time(before_pause["action_plan_due"]) == opened + timedelta(hours=48)

    during_pause = _status(config, imap_user, as_of=asked + timedelta(hours=10))["dana"]
    assert during_pause["state"] == "waiting_on_client"
    assert during_pause["breaches"] == []

    conversation = _status(config, imap_user)["dana"]
    assert conversation["state"] == "awaiting_action_plan"
    assert conversation["cycle"] == 1
    due_before = _time(before_pause["action_plan_due"])
    due_after = _time(conversation["action_plan_due"])
    assert due_before is not None and due_after is not None
    assert due_after == opened + timedelta(hours=48 + 20)
    assert due_after - due_before == timedelta(hours=20)
    action_plan = _clock(conversation, 1, "action_plan")
    assert action_plan["paused_seconds"] == 20 * 3600
    steps = [(s["step"], _time(s["at"])) for s in action_plan["segments"]]
    assert ("paused", asked) in steps
    assert ("resumed", answered) in steps
    assert smtp_sink.messages == []
