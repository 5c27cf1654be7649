"""What an escalation says: enough for someone new to the team to act on it alone."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import jinja2.exceptions
import pytest

from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.render_context import QUOTE_MAX_CHARS, QUOTE_MAX_LINES
from sla_daemon.core.calendar import BusinessCalendar
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import (
    AcknowledgedBy,
    ClockName,
    ConversationStatus,
    Decision,
    MessageFacts,
    NoticeKind,
    Rules,
)
from tests.unit.builders import (
    GLOBEX,
    NOW,
    TEAM,
    client_mail,
    rules,
    rules_on_calendar,
    team_reply,
)

OPENING = client_mail("<m1@globex.example>", 50, body="Checkout fails for every customer.")
REPLY = team_reply("<r1@acme.example>", 49.5, "<m1@globex.example>")
LATEST = client_mail(
    "<m2@globex.example>",
    3,
    in_reply_to="<r1@acme.example>",
    body="Any news? It is worse now.\n\nOn Tue, Bob wrote:\n> Thanks, we are on it.",
)
HISTORY = (OPENING, REPLY, LATEST)


def _status(history: tuple[MessageFacts, ...], rules_: Rules) -> ConversationStatus:
    return evaluate("conv-1", history, rules_, {}, NOW).status


def _breach(status: ConversationStatus, reminder: int = 0, level: str = "breach-1") -> Decision:
    assert status.action_plan_due is not None
    return Decision(
        key=f"k|{reminder}",
        kind=NoticeKind.BREACH,
        conversation_id="conv-1",
        cycle=1,
        recipients=("alice@acme.example", "lead@acme.example"),
        clock=ClockName.ACTION_PLAN,
        level=level,
        repetition=reminder,
        reminder=reminder,
        due_at=status.action_plan_due,
        trigger_message_id=OPENING.message_id,
    )


def _texts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return str(text.get_content()), str(html.get_content())


def _render(
    decision: Decision | None = None,
    history: tuple[MessageFacts, ...] = HISTORY,
    rules_: Rules | None = None,
    templates_dir: Path | None = None,
    timezone: str = "UTC",
) -> tuple[str, str]:
    rules_ = rules_ or rules()
    status = _status(history, rules_)
    renderer = NoticeRenderer(templates_dir, TEAM, timezone, rules=rules_)
    message = renderer.render(
        decision or _breach(status), status, OPENING, GLOBEX, NOW, history=history
    )
    return _texts(message)


def test_breach_quotes_the_latest_client_message_of_the_cycle_without_its_quotes() -> None:
    """The client's newest words are quoted; the text they quoted from us is left out."""
    text, html = _render()
    assert "  > Any news? It is worse now." in text
    assert "we are on it" not in text.split("What the client wrote")[1].split("Timeline")[0]
    assert "Any news? It is worse now." in html


def test_a_courtesy_reply_is_not_taken_as_the_clients_words() -> None:
    """A later "thanks!" is passed over for the message that says what the client needs."""
    thanks = client_mail(
        "<m3@globex.example>", 1, in_reply_to="<m2@globex.example>", body="Thanks!"
    )
    text, _ = _render(history=(*HISTORY, thanks))
    assert "> Any news?" in text
    assert "> Thanks!" not in text


def test_without_history_the_opening_message_is_quoted() -> None:
    """When only the opening message is known, its first lines are quoted."""
    text, _ = _render(history=(OPENING,))
    assert "  > Checkout fails for every customer." in text


def test_a_long_message_is_cut_to_the_first_lines_and_marked() -> None:
    """At most QUOTE_MAX_LINES lines and QUOTE_MAX_CHARS characters are quoted, then [...]."""
    many = "\n".join(f"line {n}" for n in range(1, 30))
    long_latest = replace(LATEST, body_text=many)
    text, _ = _render(history=(OPENING, REPLY, long_latest))
    quoted = [line for line in text.splitlines() if line.startswith("  > ")]
    assert quoted[:QUOTE_MAX_LINES] == [f"  > line {n}" for n in range(1, QUOTE_MAX_LINES + 1)]
    assert quoted[-1] == "  > [...]"
    endless = replace(LATEST, body_text="x" * 5000)
    text, _ = _render(history=(OPENING, REPLY, endless))
    assert f"  > {'x' * QUOTE_MAX_CHARS}\n" in text
    assert "x" * (QUOTE_MAX_CHARS + 1) not in text


def test_the_timeline_names_who_acknowledged_and_when() -> None:
    """A human acknowledgement names the team member; the times are all there."""
    text, html = _render()
    assert "Acknowledged:   Sun 22 Nov 2026 10:30 UTC (UTC+00:00), Bob <bob@acme.example>" in text
    assert "Arrived:        Sun 22 Nov 2026 10:00 UTC" in text
    assert "Due:            Tue 24 Nov 2026 10:00 UTC" in text
    assert "Late by:        2h" in text
    assert "Bob &lt;bob@acme.example&gt;" in html


def test_the_timeline_says_auto_ack_or_not_yet() -> None:
    """An auto-ack reads as automatic; a clock nobody stopped reads as not yet."""
    base = _status(HISTORY, rules())
    renderer = NoticeRenderer(None, TEAM, "UTC", rules=rules())
    auto = replace(base, acknowledged_by=AcknowledgedBy.AUTO)
    text, _ = _texts(renderer.render(_breach(base), auto, OPENING, GLOBEX, NOW))
    assert "automatically (auto-ack)" in text
    nobody = replace(base, acknowledged_at=None, acknowledged_by=None)
    text, _ = _texts(renderer.render(_breach(base), nobody, OPENING, GLOBEX, NOW))
    assert "Acknowledged:   not yet" in text


def test_escalation_says_who_owns_it_and_what_to_do_next() -> None:
    """Owner, the configured action-plan and waiting markers, and the explain command."""
    for decision_kind in (NoticeKind.WARNING, NoticeKind.BREACH):
        status = _status(HISTORY, rules())
        decision = replace(_breach(status), kind=decision_kind, level="warn-14400s")
        text, html = _render(decision)
        for expected in (
            "Owner:     alice@acme.example",
            "findings and an action plan",
            'put "[Action Plan]" in the subject',
            "set the IMAP keyword $ActionPlan on the sent message",
            'start a line of the reply with "Action plan:"',
            "set the IMAP keyword $WaitingOnClient on the sent message",
            "sla-daemon explain conv-1",
        ):
            assert expected in text, (decision_kind, expected)
        assert "sla-daemon explain conv-1" in html


def test_breach_carries_a_draft_for_the_client_with_a_marked_placeholder() -> None:
    """The draft admits the lateness, apologises, and leaves the new date to the owner."""
    text, html = _render()
    draft = text.split("----- Draft reply to the client")[1].split("----- end of draft")[0]
    assert "Subject: Re: Checkout broken" in draft
    assert "Hello Dana," in draft
    assert "and it is late" in draft
    assert "We are sorry" in draft
    assert "move forward with" in draft
    assert "by [[FILL IN: day and time]]" in draft
    assert "<mark>[[FILL IN: day and time]]</mark>" in html


def test_warning_has_no_client_draft() -> None:
    """A warning is sent before anything is late: there is nothing to apologise for."""
    status = _status(HISTORY, rules())
    text, _ = _render(replace(_breach(status), kind=NoticeKind.WARNING, level="warn-14400s"))
    assert "Draft reply" not in text


def test_a_re_escalation_reads_as_a_reminder() -> None:
    """Repetition above 0: still late, by how much now, and since when it was escalated."""
    status = _status(HISTORY, rules())
    text, html = _render(_breach(status, reminder=2))
    first = text.splitlines()[0]
    assert first.startswith("Still late: Globex is still waiting")
    assert "now 2h late" in first
    assert "First escalated at Tue 24 Nov 2026 10:00 UTC" in first
    assert "reminder 2" in first
    assert "Still late:" in html


def test_times_are_shown_in_the_zone_of_the_accounts_business_calendar() -> None:
    """A policy on a New York calendar shows New York time, whatever the top-level zone."""
    calendar = BusinessCalendar("ny", "America/New_York", [((0, 24 * 60),)] * 7)
    rules_ = rules_on_calendar(calendar)
    text, _ = _render(rules_=rules_, timezone="Europe/Berlin")
    assert "Arrived:        Sun 22 Nov 2026 05:00 EST (UTC-05:00)" in text
    assert "Timeline (times in America/New_York)" in text
    text, _ = _render(timezone="Europe/Berlin")  # 24x7: the top-level zone
    assert "Arrived:        Sun 22 Nov 2026 11:00 CET (UTC+01:00)" in text


def test_one_overridden_file_replaces_only_that_file(tmp_path: Path) -> None:
    """templates_dir with breach.txt.j2 alone: that text changes, its HTML and others do not."""
    (tmp_path / "breach.txt.j2").write_text("Late for {{ account_name }} by {{ late_by }}.\n")
    text, html = _render(templates_dir=tmp_path)
    assert text == "Late for Globex by 2h.\n"
    assert "Draft reply to the client" in html
    status = _status(HISTORY, rules())
    warning = replace(_breach(status), kind=NoticeKind.WARNING, level="warn-14400s")
    text, _ = _render(warning, templates_dir=tmp_path)
    assert "What to do now:" in text


def test_an_override_cannot_reach_into_python_objects(tmp_path: Path) -> None:
    """Templates run sandboxed: attribute tricks on the variables raise a SecurityError."""
    (tmp_path / "breach.txt.j2").write_text(
        "{{ account_name.__class__.__mro__[1].__subclasses__() }}\n"
    )
    with pytest.raises(jinja2.exceptions.SecurityError):
        _render(templates_dir=tmp_path)


def test_second_level_escalation_counts_from_when_it_went_up() -> None:
    """A level-2 reminder's first escalation is the due time plus the policy's `after`."""
    from sla_daemon.core.model import SecondLevel

    rules_ = rules(second_level=SecondLevel(timedelta(hours=1), ("director@acme.example",)))
    status = _status(HISTORY, rules_)
    text, _ = _render(_breach(status, reminder=1, level="breach-2"), rules_=rules_)
    assert "First escalated at Tue 24 Nov 2026 11:00 UTC" in text
    assert "one level up" in text


def test_check_templates_names_a_broken_shared_part(tmp_path: Path) -> None:
    """A broken override of a part that notices include is found before a deadline."""
    from sla_daemon.errors import ConfigError

    (tmp_path / "_escalation.txt.j2").write_text("{% for %}\n")
    with pytest.raises(ConfigError, match=r"_escalation\.txt\.j2"):
        NoticeRenderer(tmp_path, TEAM, "UTC").check_templates()


def test_a_missed_acknowledgement_asks_for_a_reply_now() -> None:
    """On the acknowledge clock the first step is any reply, and the draft apologises for it."""
    history = (OPENING,)
    status = replace(_status(history, rules()), acknowledged_at=None, acknowledged_by=None)
    assert status.acknowledge_due is not None
    decision = replace(
        _breach(_status(history, rules())),
        clock=ClockName.ACKNOWLEDGE,
        due_at=status.acknowledge_due,
    )
    renderer = NoticeRenderer(None, TEAM, "UTC")
    text, _ = _texts(renderer.render(decision, status, OPENING, GLOBEX, NOW, history=history))
    assert "1. Reply to the client now; any reply from the team stops this clock." in text
    assert "We promised to reply to your email by Sun 22 Nov 2026 11:00 UTC" in text
    assert "waiting-on-client marker your team's configuration names" in text
