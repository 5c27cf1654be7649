"""Rendering notices: the templates, the headers, and what a hostile subject cannot do."""

from __future__ import annotations

import email
import email.policy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import jinja2
import pytest

from sla_daemon.adapters.render import (
    NoticeRenderer,
    notice_message_id,
    readable_duration,
    reply_subject,
    sanitize_header_text,
    shipped_templates_dir,
)
from sla_daemon.core.model import (
    Account,
    Address,
    ClockName,
    ConversationState,
    ConversationStatus,
    Decision,
    MessageFacts,
    NoticeKind,
    Team,
)
from sla_daemon.errors import ConfigError

OPENED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # 10:00 CET in Berlin
PLAN_DUE = OPENED + timedelta(hours=48)
QUIET_SINCE = OPENED + timedelta(hours=30)  # the action plan, or the last team message

TEAM = Team(
    name="Acme Services",
    from_address=Address("support@acme.example", "Acme Support"),
    domains=("acme.example",),
)
GLOBEX = Account(
    name="Globex",
    policy="standard",
    owner="alice@acme.example",
    domains=("globex.example",),
    escalate_to=("lead@acme.example",),
)


PER_DECISION_KINDS = [
    k
    for k in NoticeKind
    if k not in (NoticeKind.DIGEST, NoticeKind.BRIEFING, NoticeKind.BATCH, NoticeKind.WEEKLY_REPORT)
]
"""Kinds rendered from one decision (the digest, the briefing, the batch and the weekly
report gather several; each is tested on its own)."""


def trigger(subject: str = "Checkout page fails", **changes: object) -> MessageFacts:
    """The client's message that opened the cycle."""
    values: dict[str, object] = {
        "message_id": "<m1@globex.example>",
        "arrived_at": OPENED,
        "subject": subject,
        "sender": Address("jane@globex.example", "Jane Roe"),
        "references": ("<r0@globex.example>",),
    }
    values.update(changes)
    return MessageFacts(**values)  # type: ignore[arg-type]


def status(subject: str = "Checkout page fails") -> ConversationStatus:
    """The conversation as the engine sees it, an action plan still outstanding."""
    return ConversationStatus(
        id="conv-42",
        account="Globex",
        subject=subject,
        client="jane@globex.example",
        state=ConversationState.AWAITING_ACTION_PLAN,
        opened_at=OPENED,
        cycle=1,
        acknowledged_at=OPENED + timedelta(minutes=1),
        acknowledged_by=None,
        first_human_response_at=None,
        action_plan_at=None,
        acknowledge_due=OPENED + timedelta(hours=1),
        action_plan_due=PLAN_DUE,
        breaches=(),
        message_ids=("<m1@globex.example>",),
    )


def decision(kind: NoticeKind, repetition: int = 0, key: str | None = None) -> Decision:
    """A decision of ``kind`` for the conversation above."""
    if kind is NoticeKind.AUTO_ACK:
        return Decision(
            key=key or "conv-42/1/auto_ack",
            kind=kind,
            conversation_id="conv-42",
            cycle=1,
            recipients=("jane@globex.example",),
            clock=ClockName.ACKNOWLEDGE,
            level="auto_ack",
            trigger_message_id="<m1@globex.example>",
        )
    if kind in (NoticeKind.FOLLOW_UP, NoticeKind.CHECK_IN):
        follow_up = kind is NoticeKind.FOLLOW_UP
        return Decision(
            key=key or ("<m1@globex.example>|follow_up" if follow_up else "check_in|Globex|x"),
            kind=kind,
            conversation_id="conv-42" if follow_up else "",
            cycle=1 if follow_up else 0,
            recipients=("alice@acme.example",),
            level=str(kind),
            due_at=QUIET_SINCE + (timedelta(days=5) if follow_up else timedelta(days=7)),
            trigger_message_id="<m1@globex.example>",
            quiet_since=QUIET_SINCE,
        )
    recipients: tuple[str, ...] = ("alice@acme.example",)
    if kind is NoticeKind.BREACH:
        recipients = ("alice@acme.example", "lead@acme.example")
    return Decision(
        key=key or f"conv-42/1/action_plan/{kind}/{repetition}",
        kind=kind,
        conversation_id="conv-42",
        cycle=1,
        recipients=recipients,
        clock=ClockName.ACTION_PLAN,
        level="breach-1" if kind is NoticeKind.BREACH else "warn-14400s",
        repetition=repetition,
        reminder=repetition,
        due_at=PLAN_DUE,
        trigger_message_id="<m1@globex.example>",
    )


NOW_FOR = {
    NoticeKind.AUTO_ACK: OPENED + timedelta(minutes=1),
    NoticeKind.WARNING: PLAN_DUE - timedelta(hours=4),
    NoticeKind.BREACH: PLAN_DUE + timedelta(hours=1, minutes=10),
    NoticeKind.FOLLOW_UP: QUIET_SINCE + timedelta(days=5, minutes=1),
    NoticeKind.CHECK_IN: QUIET_SINCE + timedelta(days=7, minutes=1),
}


def render(
    kind: NoticeKind,
    subject: str = "Checkout page fails",
    repetition: int = 0,
    templates_dir: Path | None = None,
    key: str | None = None,
) -> EmailMessage:
    """Render ``kind`` as the daemon would, with Berlin time."""
    renderer = NoticeRenderer(templates_dir, TEAM, "Europe/Berlin")
    return renderer.render(
        decision(kind, repetition, key),
        status(subject),
        trigger(subject),
        GLOBEX,
        NOW_FOR[kind],
    )


def reparse(message: EmailMessage) -> EmailMessage:
    """The message as a recipient's mail client reads it: from its wire bytes."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and the HTML body."""
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    return str(text_part.get_content()), str(html_part.get_content())


@pytest.mark.parametrize("kind", PER_DECISION_KINDS)
def test_every_kind_renders_as_text_then_html_alternative(kind: NoticeKind) -> None:
    """Each notice kind is a multipart/alternative with a text part first, then HTML."""
    message = reparse(render(kind))
    assert message.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in message.iter_parts()]
    assert types == ["text/plain", "text/html"]
    text, html = parts(message)
    assert "Checkout page fails" in text
    assert "Checkout page fails" in html


@pytest.mark.parametrize("kind", PER_DECISION_KINDS)
def test_every_notice_carries_the_safety_and_bookkeeping_headers(kind: NoticeKind) -> None:
    """From, To, Date, X-Auto-Response-Suppress, X-SLA-Daemon and the notice key are set."""
    message = reparse(render(kind))
    assert message["From"] == "Acme Support <support@acme.example>"
    assert message["Date"] == email.utils.format_datetime(NOW_FOR[kind])
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-SLA-Daemon"] == str(kind)
    assert message["X-SLA-Notice-Key"] == decision(kind).key
    expected_to = ", ".join(decision(kind).recipients)
    assert message["To"] == expected_to


def test_auto_ack_replies_in_the_clients_thread() -> None:
    """The auto-ack answers the client's subject and threads under their message."""
    message = reparse(render(NoticeKind.AUTO_ACK))
    assert message["Subject"] == "Re: Checkout page fails"
    assert message["In-Reply-To"] == "<m1@globex.example>"
    assert message["References"] == "<r0@globex.example> <m1@globex.example>"
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["To"] == "jane@globex.example"


def test_auto_ack_wraps_bare_message_ids_in_angle_brackets() -> None:
    """Ids stored without brackets still produce valid In-Reply-To/References."""
    renderer = NoticeRenderer(None, TEAM, "UTC")
    facts = trigger(message_id="m1@globex.example", references=("r0@globex.example",))
    message = renderer.render(decision(NoticeKind.AUTO_ACK), status(), facts, GLOBEX, OPENED)
    assert message["In-Reply-To"] == "<m1@globex.example>"
    assert message["References"] == "<r0@globex.example> <m1@globex.example>"


def test_auto_ack_text_is_polite_and_signed_by_the_team() -> None:
    """The client reads that the mail arrived, that findings and a plan follow, and who wrote."""
    text, _ = parts(reparse(render(NoticeKind.AUTO_ACK)))
    assert text.startswith("Hello Jane Roe,")
    assert '"Checkout page fails"' in text
    assert "received" in text
    assert "findings and an action plan" in text
    assert "Acme Services" in text


@pytest.mark.parametrize("subject", ["Re: Invoice", "RE: Invoice", "Aw: Invoice", "SV: Invoice"])
def test_reply_subject_does_not_stack_a_second_re(subject: str) -> None:
    """A subject that is already a reply keeps its single prefix."""
    assert reply_subject(subject) == subject
    assert reply_subject("Invoice") == "Re: Invoice"
    message = reparse(render(NoticeKind.AUTO_ACK, subject=subject))
    assert message["Subject"] == subject


@pytest.mark.parametrize("kind", [NoticeKind.WARNING, NoticeKind.BREACH])
def test_team_notices_are_auto_generated_and_not_threaded(kind: NoticeKind) -> None:
    """Warnings and breaches are Auto-Submitted: auto-generated and reply to nothing."""
    message = reparse(render(kind))
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["In-Reply-To"] is None


def test_follow_up_asks_the_owner_to_check_the_plan_worked() -> None:
    """The follow-up names the account, the client's subject and since when all is quiet."""
    message = reparse(render(NoticeKind.FOLLOW_UP))
    assert message["Subject"] == (
        '[SLA follow-up] Globex: ask whether the plan worked — "Checkout page fails"'
    )
    assert message["Auto-Submitted"] == "auto-generated"
    text, html = parts(message)
    assert "ask the client whether the plan worked" in text
    assert "Jane Roe <jane@globex.example>" in text
    assert "Wed 11 Mar 2026 16:00 CET (UTC+01:00)" in text  # quiet since, Berlin time
    assert "(5d)" in text
    assert "Jane Roe &lt;jane@globex.example&gt;" in html


def test_check_in_says_how_long_the_client_has_heard_nothing() -> None:
    """The check-in tells the owner to check in, with the client and the quiet time."""
    message = reparse(render(NoticeKind.CHECK_IN))
    assert message["Subject"] == "[SLA check-in] Globex: no message to the client for 7d"
    text, _ = parts(message)
    assert "Please check in with the client" in text
    assert "Wed 11 Mar 2026 16:00 CET (UTC+01:00)" in text
    assert "Latest conversation:  Checkout page fails" in text


def test_warning_subject_says_what_is_due_and_when() -> None:
    """The warning subject names the account, the deadline, the time left and the subject."""
    message = reparse(render(NoticeKind.WARNING))
    assert (
        message["Subject"] == '[SLA warning] Globex: action plan due in 4h — "Checkout page fails"'
    )


def test_breach_subject_says_how_late_and_counts_reminders() -> None:
    """A breach subject says how late it is; re-escalations carry their reminder number."""
    first = reparse(render(NoticeKind.BREACH))
    assert (
        first["Subject"] == '[SLA breach] Globex: action plan 1h 10m late — "Checkout page fails"'
    )
    again = reparse(render(NoticeKind.BREACH, repetition=2))
    assert str(again["Subject"]).startswith("[SLA breach, reminder 2] Globex: action plan")


def test_breach_text_gives_every_figure_the_lead_needs() -> None:
    """Account, client, subject, arrival, deadline in words, due time and lateness are shown."""
    text, html = parts(reparse(render(NoticeKind.BREACH, repetition=2)))
    first_line = text.splitlines()[0]
    assert "Globex" in first_line and "late" in first_line
    for expected in (
        "Globex",
        "Jane Roe <jane@globex.example>",
        "Checkout page fails",
        "Tue 10 Mar 2026 10:00 CET (UTC+01:00)",  # arrival, shown in Berlin time
        "send findings and an action plan",
        "Thu 12 Mar 2026 10:00 CET (UTC+01:00)",  # due
        "1h 10m",
        "this is reminder 2",
        "conv-42",
        "lead@acme.example",
    ):
        assert expected in text, expected
    assert "Jane Roe &lt;jane@globex.example&gt;" in html


def test_warning_text_gives_the_time_left() -> None:
    """A warning names the deadline in words, when it is due and how long is left."""
    text, _ = parts(reparse(render(NoticeKind.WARNING)))
    assert "send findings and an action plan" in text.splitlines()[0]
    assert "Time left:      4h" in text
    assert "Due:            Thu 12 Mar 2026 10:00 CET (UTC+01:00)" in text


def test_summer_time_is_shown_with_its_own_abbreviation() -> None:
    """Times after the DST switch are shown as CEST, UTC+02:00."""
    renderer = NoticeRenderer(None, TEAM, "Europe/Berlin")
    summer = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
    late = Decision(
        key="k",
        kind=NoticeKind.BREACH,
        conversation_id="conv-42",
        cycle=1,
        recipients=("alice@acme.example",),
        clock=ClockName.ACKNOWLEDGE,
        due_at=summer,
    )
    message = renderer.render(late, status(), trigger(), GLOBEX, summer + timedelta(days=1))
    text, _ = parts(message)
    assert "Wed 01 Jul 2026 10:00 CEST (UTC+02:00)" in text
    assert "acknowledge the client's email" in text
    assert "acknowledgement 1d late" in str(message["Subject"])


def test_message_id_is_deterministic_per_notice_key() -> None:
    """Equal keys give equal Message-IDs (a resend after a crash); other keys differ."""
    first = render(NoticeKind.WARNING, key="conv-42/1/a")
    again = render(NoticeKind.WARNING, key="conv-42/1/a")
    other = render(NoticeKind.WARNING, key="conv-42/1/b")
    assert first["Message-ID"] == again["Message-ID"]
    assert first["Message-ID"] != other["Message-ID"]
    assert first["Message-ID"] == notice_message_id("conv-42/1/a", "acme.example")
    assert str(first["Message-ID"]).endswith(".sla@acme.example>")


def test_html_escapes_a_script_in_the_subject() -> None:
    """A subject with markup is shown as text in the HTML part, never as markup."""
    _, html = parts(reparse(render(NoticeKind.BREACH, subject="<script>alert(1)</script>")))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("kind", PER_DECISION_KINDS)
def test_header_injection_in_the_subject_is_neutralised(kind: NoticeKind) -> None:
    """CR/LF in a client's subject cannot add a Bcc header or a recipient."""
    message = render(kind, subject="Hello\r\nBcc: evil@x.example\r\n")
    wire = message.as_bytes()
    assert not any(line.lower().startswith(b"bcc:") for line in wire.split(b"\r\n"))
    received = reparse(message)
    assert received["Bcc"] is None
    assert "evil@x.example" not in str(received["To"])
    assert "\n" not in str(received["Subject"]) and "\r" not in str(received["Subject"])


def test_sanitize_header_text_removes_controls_collapses_and_caps() -> None:
    """Control characters become spaces, whitespace collapses, long text is cut."""
    assert sanitize_header_text("a\r\nb\t\x00c\u2028d") == "a b c d"
    assert sanitize_header_text("  spaced   out  ") == "spaced out"
    capped = sanitize_header_text("x" * 500)
    assert len(capped) == 200 and capped.endswith("…")
    assert sanitize_header_text("bad \udcff byte") == "bad byte"


@pytest.mark.parametrize("kind", PER_DECISION_KINDS)
def test_non_ascii_subject_survives_the_wire(kind: NoticeKind) -> None:
    """A non-ASCII subject is encoded for the wire and decodes to the same words."""
    subject = "Überweisung fehlgeschlagen — 支付失败 😀"
    message = render(kind, subject=subject)
    wire = message.as_bytes()
    assert wire.isascii()
    received = reparse(message)
    # A check-in is about the account, not one conversation: its subject names none.
    assert subject in str(received["Subject"]) or kind is NoticeKind.CHECK_IN
    text, _ = parts(received)
    assert subject in text


def test_readable_duration_keeps_the_two_largest_units() -> None:
    """Durations read like 1d 2h or 45m, rounded down to the minute."""
    assert readable_duration(timedelta(days=1, hours=2, minutes=5)) == "1d 2h"
    assert readable_duration(timedelta(minutes=45, seconds=59)) == "45m"
    assert readable_duration(timedelta(seconds=30)) == "under 1m"
    assert readable_duration(timedelta(hours=-1)) == "under 1m"


def test_operator_templates_dir_wins_over_the_shipped_templates(tmp_path: Path) -> None:
    """A template in templates_dir replaces the shipped one; the others still come shipped."""
    (tmp_path / "warning.txt.j2").write_text("Custom: {{ account_name }} in {{ due_in }}\n")
    text, html = parts(reparse(render(NoticeKind.WARNING, templates_dir=tmp_path)))
    assert text.splitlines() == ["Custom: Globex in 4h"]
    assert "<table" in html


def test_an_override_using_an_unknown_variable_fails_loudly(tmp_path: Path) -> None:
    """A typo in an operator's template is an error, not a silently empty field."""
    (tmp_path / "breach.txt.j2").write_text("{{ acount_name }}\n")
    with pytest.raises(jinja2.UndefinedError):
        render(NoticeKind.BREACH, templates_dir=tmp_path)


def test_check_templates_names_a_broken_override(tmp_path: Path) -> None:
    """check_templates reports the template that does not compile."""
    (tmp_path / "auto_ack.html.j2").write_text("{% if %}\n")
    renderer = NoticeRenderer(tmp_path, TEAM, "UTC")
    with pytest.raises(ConfigError, match=r"auto_ack\.html\.j2"):
        renderer.check_templates()
    NoticeRenderer(None, TEAM, "UTC").check_templates()


def test_shipped_templates_cover_every_kind() -> None:
    """The repository ships a text and an HTML template for every notice kind."""
    shipped = shipped_templates_dir()
    for kind in NoticeKind:
        assert (shipped / f"{kind}.txt.j2").is_file()
        assert (shipped / f"{kind}.html.j2").is_file()


def test_unknown_time_zone_is_refused() -> None:
    """A misspelt zone name is reported when the renderer is built."""
    with pytest.raises(ValueError, match="Mars/Olympus"):
        NoticeRenderer(None, TEAM, "Mars/Olympus")


@pytest.mark.parametrize("kind", PER_DECISION_KINDS)
def test_missing_facts_render_as_words_not_errors(kind: NoticeKind) -> None:
    """Without account, trigger message, clock or due time every kind still renders."""
    bare = Decision(
        key="bare",
        kind=kind,
        conversation_id="conv-7",
        cycle=1,
        recipients=("alice@acme.example",),
    )
    unknown = ConversationStatus(
        id="conv-7",
        account=None,
        subject="",
        client="someone@elsewhere.example",
        state=ConversationState.AWAITING_ACK,
        opened_at=None,
        cycle=1,
        acknowledged_at=None,
        acknowledged_by=None,
        first_human_response_at=None,
        action_plan_at=None,
        acknowledge_due=None,
        action_plan_due=None,
        breaches=(),
        message_ids=(),
    )
    renderer = NoticeRenderer(None, TEAM, "UTC")
    message = reparse(renderer.render(bare, unknown, None, None, OPENED))
    text, _ = parts(message)
    assert "(no subject)" in str(message["Subject"]) or kind is NoticeKind.CHECK_IN
    assert "someone@elsewhere.example" in text or kind is NoticeKind.AUTO_ACK
    assert message["In-Reply-To"] is None


def test_digest_lists_every_pre_existing_breach_once_to_the_owner() -> None:
    """The first-start summary goes to the owner alone and names each missed deadline."""
    renderer = NoticeRenderer(None, TEAM, "Europe/Berlin")
    breach = decision(NoticeKind.BREACH)
    other = replace(breach, key="other-key", conversation_id="conv-43")
    message = renderer.render_digest(
        "digest|alice@acme.example|x",
        "alice@acme.example",
        [(breach, status("Checkout broken"), GLOBEX), (other, status("Sync stalled"), GLOBEX)],
        NOW_FOR[NoticeKind.BREACH],
    )
    assert message["To"] == "alice@acme.example"
    assert message["X-SLA-Daemon"] == "digest"
    assert message["Auto-Submitted"] == "auto-generated"
    assert "2 deadlines already missed" in message["Subject"]
    text = message.get_body(("plain",))
    assert text is not None
    content = text.get_content()  # type: ignore[attr-defined]
    for expected in ("Checkout broken", "Sync stalled", "conv-42", "conv-43", "Globex"):
        assert expected in content
    assert (
        message["Message-ID"]
        == renderer.render_digest(
            "digest|alice@acme.example|x", "alice@acme.example", [], NOW_FOR[NoticeKind.BREACH]
        )["Message-ID"]
    )
