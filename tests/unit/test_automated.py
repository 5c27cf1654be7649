"""The automated-mail detector: which kind of software wrote a message, and why."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sla_daemon.core.automated import AutomatedKind, AutomatedVerdict, detect_automated
from sla_daemon.core.classify import automation_reason, classify
from sla_daemon.core.model import Address, MessageFacts, Role
from tests.unit.builders import client_mail, rules

Headers = tuple[tuple[str, str], ...]


def mail(
    *,
    headers: Headers = (),
    sender: str | None = "dana@globex.example",
    subject: str = "Re: Checkout broken",
    body: str = "Thanks, that fixed it.",
    content_type: str = "text/plain",
) -> MessageFacts:
    """A received message with only the given signals."""
    base = client_mail("m", 0, subject=subject, headers=headers, body=body)
    return replace(
        base,
        sender=Address(sender) if sender is not None else None,
        content_type=content_type,
    )


def test_human_reply_is_not_automated() -> None:
    """A person's reply with no signal at all gets no kind and no reasons."""
    verdict = detect_automated(mail())
    assert verdict == AutomatedVerdict(None, ())
    assert not verdict.is_automated


def test_auto_submitted_no_is_human() -> None:
    """``Auto-Submitted: no`` is what a person's mail may carry (RFC 3834): not automated."""
    assert detect_automated(mail(headers=(("auto-submitted", "no"),))).kind is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ((("auto-submitted", "auto-replied"),), "Auto-Submitted: auto-replied"),
        ((("auto-submitted", "auto-generated"),), "Auto-Submitted: auto-generated"),
        ((("precedence", "auto_reply"),), "Precedence: auto_reply"),
        ((("x-autoreply", "yes"),), "X-Autoreply"),
        ((("x-autorespond", "yes"),), "X-Autorespond"),
        ((("x-auto-response-suppress", "All"),), "X-Auto-Response-Suppress"),
        ((("x-autoreply-from", "dana@globex.example"),), "X-Autoreply-From"),
        ((("x-mail-autoreply", "yes"),), "X-Mail-Autoreply"),
    ],
)
def test_auto_reply_headers(headers: Headers, reason: str) -> None:
    """Each RFC 3834 or vendor auto-reply header makes an AUTO_REPLY naming the header."""
    verdict = detect_automated(mail(headers=headers))
    assert verdict.kind is AutomatedKind.AUTO_REPLY
    assert any(reason in r for r in verdict.reasons)


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Checkout broken",
        "Out of Office: Checkout broken",
        "Abwesenheitsnotiz: Checkout broken",
        "Réponse automatique : Checkout broken",
        "Respuesta automática: Checkout broken",
        "Automatisch antwoord: Checkout broken",
        "[Automatyczna odpowiedź] Checkout broken",
        "AUTO: Dana Smith is out of the office (returning 12/01/2026)",
    ],
)
def test_auto_reply_subject_prefixes(subject: str) -> None:
    """Subject prefixes that auto-responders add count on their own (several languages)."""
    verdict = detect_automated(mail(subject=subject))
    assert verdict.kind is AutomatedKind.AUTO_REPLY


@pytest.mark.parametrize(
    "subject",
    ["Out of office next week, checkout still broken", "Auto insurance claim", "Autoreply"],
)
def test_subject_phrases_without_a_prefix_do_not_count(subject: str) -> None:
    """A client mentioning being away, or a subject merely starting with 'Auto', is human."""
    assert detect_automated(mail(subject=subject)).kind is None


def test_away_phrase_counts_only_in_subject_and_body() -> None:
    """'is out of the office' in the subject needs a matching body phrase to count."""
    subject = "Dana is out of the office"
    assert detect_automated(mail(subject=subject)).kind is None
    away = mail(subject=subject, body="I am out of the office until Monday.")
    assert detect_automated(away).kind is AutomatedKind.AUTO_REPLY


def test_away_phrase_in_the_body_alone_is_human() -> None:
    """A client writing that they will be out of the office is still a client."""
    body = "I am out of the office tomorrow, but the checkout is still broken."
    assert detect_automated(mail(subject="Checkout broken", body=body)).kind is None


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (mail(headers=(("x-failed-recipients", "x@globex.example"),)), "X-Failed-Recipients"),
        (
            mail(
                content_type="multipart/report",
                headers=(("content-type", 'multipart/report; report-type="delivery-status"'),),
            ),
            "multipart/report (delivery status)",
        ),
        (mail(content_type="multipart/report"), "multipart/report"),
        (mail(sender="MAILER-DAEMON@mx.globex.example"), "automated sender"),
        (mail(sender="postmaster@globex.example"), "automated sender"),
        (mail(subject="Undelivered Mail Returned to Sender"), "delivery report subject"),
        (mail(subject="Delivery Status Notification (Failure)"), "delivery report subject"),
        (mail(subject="Mail delivery failed: returning message"), "delivery report subject"),
        (mail(headers=(("return-path", "<>"),)), "null return path"),
    ],
)
def test_bounce_signals(facts: MessageFacts, reason: str) -> None:
    """DSNs, X-Failed-Recipients, mail-system senders and DSN subjects are BOUNCE."""
    verdict = detect_automated(facts)
    assert verdict.kind is AutomatedKind.BOUNCE
    assert any(reason in r for r in verdict.reasons)


def test_delivery_failure_text_needs_a_second_witness() -> None:
    """Failure text in the body counts only with a delivery subject or another signal."""
    body = "Your message could not be delivered to the following recipients."
    assert detect_automated(mail(subject="Checkout broken", body=body)).kind is None
    assert detect_automated(mail(subject="Mail Error", body=body)).kind is AutomatedKind.BOUNCE


def test_a_parcel_that_could_not_be_delivered_is_human() -> None:
    """A client's 'Delivery failure for order 1234' about a parcel is not a bounce."""
    facts = mail(
        subject="Delivery failure for order 1234",
        body="The parcel could not be delivered, the courier says.",
    )
    assert detect_automated(facts).kind is None


def test_missing_sender_is_only_a_supporting_reason() -> None:
    """No sender address alone decides nothing; with a bounce subject it is listed too."""
    assert detect_automated(mail(sender=None)).kind is None
    verdict = detect_automated(mail(sender=None, subject="Undelivered Mail Returned to Sender"))
    assert verdict.kind is AutomatedKind.BOUNCE
    assert "no sender address" in verdict.reasons


@pytest.mark.parametrize(
    "facts",
    [
        mail(
            content_type="multipart/report",
            headers=(("content-type", "multipart/report; report-type=feedback-report"),),
        ),
        mail(headers=(("feedback-type", "abuse"),)),
    ],
)
def test_feedback_reports(facts: MessageFacts) -> None:
    """ARF reports (report-type=feedback-report, or a Feedback-Type field) are FEEDBACK_REPORT."""
    assert detect_automated(facts).kind is AutomatedKind.FEEDBACK_REPORT


@pytest.mark.parametrize(
    "facts",
    [
        mail(sender="noreply@boxbe.com", subject="Re: Checkout broken"),
        mail(headers=(("x-bluebottle-request", "<1234>"),), subject="RE: Checkout broken"),
    ],
)
def test_challenge_response(facts: MessageFacts) -> None:
    """Boxbe and Bluebottle sender-verification challenges are CHALLENGE_RESPONSE."""
    assert detect_automated(facts).kind is AutomatedKind.CHALLENGE_RESPONSE


@pytest.mark.parametrize(
    "facts",
    [
        mail(headers=(("precedence", "bulk"),)),
        mail(headers=(("precedence", "junk"),)),
        mail(sender="noreply@globex.example"),
        mail(sender="do-not-reply@globex.example"),
    ],
)
def test_bulk(facts: MessageFacts) -> None:
    """Precedence bulk/junk and no-reply senders are BULK."""
    assert detect_automated(facts).kind is AutomatedKind.BULK


@pytest.mark.parametrize(
    "headers",
    [
        (("list-id", "<dev.lists.example>"),),
        (("list-unsubscribe", "<mailto:leave@lists.example>"),),
        (("list-post", "<mailto:dev@lists.example>"),),
        (("precedence", "list"),),
        (("list-id", "<dev.lists.example>"), ("precedence", "bulk")),
    ],
)
def test_list_traffic_is_list_not_auto_reply(headers: Headers) -> None:
    """A person's post through a list is LIST (never auto-acked), not an auto-reply."""
    verdict = detect_automated(mail(headers=headers))
    assert verdict.kind is AutomatedKind.LIST
    assert verdict.is_automated


def test_own_notice_wins_over_everything() -> None:
    """Our own notice (X-SLA-Daemon) is OWN_NOTICE even with auto-reply headers."""
    facts = mail(
        headers=(
            ("x-sla-daemon", "auto_ack"),
            ("auto-submitted", "auto-replied"),
            ("precedence", "bulk"),
        )
    )
    verdict = detect_automated(facts)
    assert verdict.kind is AutomatedKind.OWN_NOTICE
    assert len(verdict.reasons) == 3


def test_bounce_through_a_list_is_a_bounce() -> None:
    """A bounce that came back through a list keeps all reasons but is a BOUNCE."""
    facts = mail(
        headers=(("list-id", "<dev.lists.example>"), ("precedence", "bulk")),
        sender="MAILER-DAEMON@mx.example",
        subject="Undelivered Mail Returned to Sender",
    )
    verdict = detect_automated(facts)
    assert verdict.kind is AutomatedKind.BOUNCE
    assert "mailing list (List-Id)" in verdict.reasons
    assert "Precedence: bulk" in verdict.reasons


def test_feedback_report_beats_bounce() -> None:
    """An ARF report from a postmaster address is a feedback report, not a bounce."""
    facts = mail(
        sender="postmaster@mx.example",
        content_type="multipart/report",
        headers=(("content-type", "multipart/report; report-type=feedback-report"),),
    )
    assert detect_automated(facts).kind is AutomatedKind.FEEDBACK_REPORT


def test_challenge_beats_bounce() -> None:
    """A challenge wrapped in a delivery report is a challenge-response."""
    facts = mail(sender="noreply@boxbe.com", content_type="multipart/report")
    assert detect_automated(facts).kind is AutomatedKind.CHALLENGE_RESPONSE


def test_auto_reply_beats_list_and_bulk() -> None:
    """An out-of-office sent to a list with Precedence: bulk is an AUTO_REPLY."""
    facts = mail(
        headers=(
            ("auto-submitted", "auto-replied"),
            ("list-id", "<dev.lists.example>"),
            ("precedence", "bulk"),
        )
    )
    assert detect_automated(facts).kind is AutomatedKind.AUTO_REPLY


def test_null_return_path_does_not_override_an_auto_reply() -> None:
    """RFC 3834 auto-replies use the null sender too: Return-Path <> is only supporting."""
    facts = mail(headers=(("return-path", "<>"), ("precedence", "bulk")))
    verdict = detect_automated(facts)
    assert verdict.kind is AutomatedKind.BULK
    assert "null return path (Return-Path: <>)" in verdict.reasons


def test_list_beats_bulk() -> None:
    """List-Id with Precedence: bulk is LIST: the list is the more specific signal."""
    facts = mail(headers=(("precedence", "bulk"), ("list-id", "<dev.lists.example>")))
    assert detect_automated(facts).kind is AutomatedKind.LIST


def test_classification_reason_carries_kind_and_reasons() -> None:
    """classify() and automation_reason() name the kind, then the reasons."""
    facts = mail(headers=(("auto-submitted", "auto-replied"),))
    expected = "auto_reply: Auto-Submitted: auto-replied"
    assert automation_reason(facts) == expected
    verdict = classify(facts, rules())
    assert verdict.role is Role.AUTOMATED
    assert verdict.reason == expected


def test_human_mail_has_no_automation_reason() -> None:
    """automation_reason() is None for a person's mail, and classify() finds the client."""
    assert automation_reason(mail()) is None
    assert classify(mail(), rules()).role is Role.CLIENT


@pytest.mark.parametrize(
    "header",
    ["list-subscribe", "list-help", "list-owner", "mailing-list", "x-mlserver"],
)
def test_list_manager_headers_are_list_traffic(header: str) -> None:
    """A list manager's own notice, known only by an RFC 2369 or manager header, is LIST."""
    verdict = detect_automated(mail(headers=((header, "fml [fml 4.0.3 release]"),)))
    assert verdict.kind is AutomatedKind.LIST
