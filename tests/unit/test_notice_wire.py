"""Every notice is valid RFC 5322 whatever the client wrote, and carries the right headers."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import strict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sla_daemon.adapters.render import sanitize_header_text
from sla_daemon.adapters.renderers import NoticeMailRenderer
from sla_daemon.core.model import Address, MessageFacts, NoticeKind
from sla_daemon.preview import SAMPLES, VARIANTS, SampleWorld, sample_world
from tests.unit.builders import NOW, rules

TEAM_HEADERS = {
    "From",
    "To",
    "Date",
    "Message-ID",
    "Subject",
    "Auto-Submitted",
    "X-Auto-Response-Suppress",
    "X-SLA-Daemon",
    "X-SLA-Notice-Key",
    "MIME-Version",
    "Content-Type",
}
"""The headers of a team notice: exactly these, nothing a client can add to."""
AUTO_ACK_HEADERS = TEAM_HEADERS | {"In-Reply-To", "References"}

HOSTILE = [
    "Refund\r\nBcc: victim@evil.example",
    "Bcc: x@evil.example",
    "=?utf-8?b?QmNjOiB4QGV2aWwuZXhhbXBsZQ==?=",
    "Überweisung fehlgeschlagen \u2013 払い戻し 🙂",
    '<script>alert(1)</script> & "quotes"',
    "x" * 2000,
    "line\u2028separator\x00nul\x1b[31mred",
]


def _world(subject: str, name: str = "Dana Lee", body: str | None = None) -> SampleWorld:
    """The preview's sample conversation with the client's subject, name and words swapped."""
    rules_ = rules()
    world = sample_world(rules_, NoticeMailRenderer(None, rules_.team, "UTC", rules=rules_), NOW)
    client = replace(world.client, name=name)

    def hostile(facts: MessageFacts) -> MessageFacts:
        if facts.sender is None or facts.sender.email != client.email:
            return facts
        text = body if body is not None else facts.body_text
        return replace(facts, subject=subject, sender=client, body_text=text)

    history = tuple(hostile(facts) for facts in world.history)
    return replace(world, client=client, history=history)


def _strict(message: EmailMessage) -> EmailMessage:
    """Parse the wire bytes with the strict policy: any defect raises."""
    parsed = BytesParser(policy=strict).parsebytes(message.as_bytes())
    assert isinstance(parsed, EmailMessage)
    for part in parsed.walk():
        assert part.defects == [], part.defects
    return parsed


ALL_SAMPLES = [*SAMPLES.items(), *VARIANTS.items()]


@pytest.mark.parametrize("subject", HOSTILE)
@pytest.mark.parametrize(("name", "sample"), ALL_SAMPLES, ids=[str(n) for n, _ in ALL_SAMPLES])
def test_hostile_client_text_never_adds_or_breaks_a_header(
    name: str, sample: object, subject: str
) -> None:
    """Each kind parses strictly, with exactly our headers, whatever the subject and name."""
    assert callable(sample)
    message = _strict(sample(_world(subject, name=subject)))
    expected = AUTO_ACK_HEADERS if name == NoticeKind.AUTO_ACK else TEAM_HEADERS
    assert set(message.keys()) == expected
    assert len(message.keys()) == len(expected)
    decoded = str(message["Subject"])
    assert "\r" not in decoded and "\n" not in decoded
    # Summaries name several conversations; their subject counts them instead.
    summaries = (
        NoticeKind.CHECK_IN,
        NoticeKind.DIGEST,
        NoticeKind.BRIEFING,
        NoticeKind.BATCH,
        NoticeKind.WEEKLY_REPORT,
    )
    if name not in summaries:
        assert sanitize_header_text(subject)[:60] in decoded


@pytest.mark.parametrize(("name", "sample"), ALL_SAMPLES, ids=[str(n) for n, _ in ALL_SAMPLES])
def test_client_text_is_escaped_in_the_html_part(name: str, sample: object) -> None:
    """A script in the subject, the client's name or words arrives as text, never as markup."""
    assert callable(sample)
    script = "<script>alert(1)</script>"
    message = _strict(sample(_world(script, name=script, body=f"{script}\nmore")))
    html = message.get_body(("html",))
    assert isinstance(html, EmailMessage)
    content = str(html.get_content())
    assert "<script>" not in content
    if name not in (NoticeKind.AUTO_ACK, NoticeKind.CHECK_IN):
        assert "&lt;script&gt;" in content


@pytest.mark.parametrize(("name", "sample"), ALL_SAMPLES, ids=[str(n) for n, _ in ALL_SAMPLES])
def test_outbound_headers_follow_rfc_3834(name: str, sample: object) -> None:
    """Auto-Submitted per kind, X-Auto-Response-Suppress, no Precedence, our Message-ID."""
    assert callable(sample)
    message = _strict(sample(_world("Checkout broken")))
    expected = "auto-replied" if name == NoticeKind.AUTO_ACK else "auto-generated"
    assert message["Auto-Submitted"] == expected
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Precedence"] is None
    assert str(message["Message-ID"]).endswith("@acme.example>")
    kind = "breach" if name == "re_escalation" else name
    assert message["X-SLA-Daemon"] == kind


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(max_size=300),
    name=st.text(max_size=300),
    kind=st.sampled_from([NoticeKind.AUTO_ACK, NoticeKind.BREACH]),
)
def test_any_client_text_yields_a_strictly_valid_notice(
    subject: str, name: str, kind: NoticeKind
) -> None:
    """Any subject and display name yield a notice that parses without defects.

    It has exactly our headers and a one-line decoded Subject that holds the cleaned
    client subject, whatever controls, encoded words or non-ASCII the client sent.
    """
    world = _world(subject, name=name)
    message = _strict(SAMPLES[kind](world))
    expected = AUTO_ACK_HEADERS if kind is NoticeKind.AUTO_ACK else TEAM_HEADERS
    assert set(message.keys()) == expected
    decoded = str(message["Subject"])
    assert "\n" not in decoded and "\r" not in decoded
    cleaned = sanitize_header_text(subject)
    if kind is NoticeKind.AUTO_ACK and cleaned:
        assert decoded.endswith(cleaned) or decoded.endswith(cleaned.rstrip("…") + "…")
    assert message["To"] is not None and message["From"] is not None


def test_the_auto_ack_goes_to_the_client_address_only() -> None:
    """A display name full of addresses does not add recipients to the auto-ack."""
    world = _world("Help", name="a@evil.example, b@evil.example")
    message = _strict(SAMPLES[NoticeKind.AUTO_ACK](world))
    assert str(message["To"]) == world.client.email
    assert world.client == Address(world.client.email, "a@evil.example, b@evil.example")
