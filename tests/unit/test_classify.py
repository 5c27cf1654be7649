"""Who wrote a message: client, team, machine or other."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sla_daemon.core.classify import automation_reason, classify, marker_reason, new_text
from sla_daemon.core.model import Address, MarkerSet, Role
from tests.unit.builders import client_mail, rules, team_reply


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ((("auto-submitted", "auto-replied"),), "Auto-Submitted"),
        ((("precedence", "bulk"),), "Precedence"),
        ((("precedence", "auto_reply"),), "Precedence"),
        ((("list-id", "<dev.lists.example>"),), "mailing list"),
        ((("x-autoreply", "yes"),), "auto-reply header"),
        ((("return-path", "<>"),), "null return path"),
        ((("x-sla-daemon", "auto_ack"),), "our own notice"),
    ],
)
def test_automated_headers(headers: tuple[tuple[str, str], ...], reason: str) -> None:
    """Each RFC 3834 / list / bounce signal marks the mail automated, with a reason."""
    verdict = classify(client_mail("m", 0, headers=headers), rules())
    assert verdict.role is Role.AUTOMATED
    assert reason in verdict.reason


def test_auto_submitted_no_is_human() -> None:
    """Auto-Submitted: no is what a person's mail may carry; it is not automated."""
    mail = client_mail("m", 0, headers=(("auto-submitted", "no"),))
    assert automation_reason(mail) is None


@pytest.mark.parametrize(
    "sender",
    [
        "mailer-daemon@globex.example",
        "noreply@globex.example",
        "no-reply@globex.example",
        "postmaster@globex.example",
    ],
)
def test_automated_senders(sender: str) -> None:
    """Bounce and no-reply senders are automated even without headers."""
    assert classify(client_mail("m", 0, sender=sender), rules()).role is Role.AUTOMATED


def test_delivery_reports_are_automated() -> None:
    """multipart/report (DSNs, feedback reports) is automated."""
    mail = replace(client_mail("m", 0), content_type="multipart/report")
    assert classify(mail, rules()).role is Role.AUTOMATED


def test_client_by_domain_and_subdomain() -> None:
    """A sender at the account's domain or a subdomain is that account's client."""
    for sender in ("dana@globex.example", "ops@eu.globex.example"):
        verdict = classify(client_mail("m", 0, sender=sender), rules())
        assert verdict.role is Role.CLIENT
        assert verdict.account is not None and verdict.account.name == "Globex"


def test_lookalike_domain_is_not_the_client() -> None:
    """notglobex.example is not a subdomain of globex.example."""
    verdict = classify(client_mail("m", 0, sender="x@notglobex.example"), rules())
    assert verdict.role is Role.OTHER


def test_team_member_is_team_with_the_client_account() -> None:
    """A team reply to a client is team mail, attributed to the client's account."""
    verdict = classify(team_reply("r", 0, "m"), rules())
    assert verdict.role is Role.TEAM
    assert verdict.account is not None and verdict.account.name == "Globex"


def test_default_account_takes_other_external_senders() -> None:
    """With default_account set, an unknown external human is that account's client."""
    verdict = classify(
        client_mail("m", 0, sender="x@elsewhere.example"),
        replace(rules(), default_account="Globex"),
    )
    assert verdict.role is Role.CLIENT


def test_new_text_drops_quotes_and_quoted_tail() -> None:
    """Quoted lines and everything from 'On ... wrote:' on are not the author's text."""
    body = "My answer.\n> quoted\nMore.\nOn Tue, 1 Dec 2026, Dana <d@x> wrote:\nold text\n"
    assert new_text(body) == "My answer.\nMore."


def test_marker_header_needs_a_true_value() -> None:
    """X-SLA-Action-Plan: yes marks a plan; 'no' does not."""
    markers = MarkerSet(headers=("x-sla-action-plan",))
    yes = replace(team_reply("r", 0, "m"), headers=(("x-sla-action-plan", "yes"),))
    no = replace(team_reply("r", 0, "m"), headers=(("x-sla-action-plan", "no"),))
    assert marker_reason(yes, markers) is not None
    assert marker_reason(no, markers) is None


def test_missing_sender_is_automated() -> None:
    """A message without any From address cannot be answered and opens nothing."""
    mail = replace(client_mail("m", 0), sender=None)
    assert classify(mail, rules()).role is Role.AUTOMATED


def test_team_address_outside_team_domains() -> None:
    """An extra team address (a partner) is team, not client."""
    base = rules()
    partner = replace(base, team=replace(base.team, addresses=("ops@globex.example",)))
    mail = replace(client_mail("m", 0), sender=Address("ops@globex.example"))
    assert classify(mail, partner).role is Role.TEAM
