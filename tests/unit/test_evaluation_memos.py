"""What the evaluation keeps between messages and conversations never outlives its source.

The automated-mail verdict is kept per message object, the verdict on an address per
configuration, and a bulk pass collects garbage less often: a changed message, a changed
configuration and the end of the pass each start afresh.
"""

from __future__ import annotations

import gc
from dataclasses import replace

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sla_daemon.collections_pause import fewer_collections
from sla_daemon.core import automated
from sla_daemon.core import classify as classify_module
from sla_daemon.core.automated import AutomatedKind, detect_automated
from sla_daemon.core.classify import classify
from sla_daemon.core.model import Account, Address, MessageFacts, Role
from tests.unit.builders import GLOBEX, client_mail, rules, team_reply

# Fragments that carry (or nearly carry) an automated-mail signal, mixed with plain text.
_SUBJECTS = st.sampled_from(
    [
        "Checkout broken",
        "Re: Checkout broken",
        "Automatic reply: Checkout broken",
        "Out of Office: back Monday",
        "I am out of the office",
        "AUTO: away",
        "auto: lower case",
        "Undelivered Mail Returned to Sender",
        "Mail Error",
        "Complaint about message from x",
        "Delivery of the parcel",
        "Abwesenheitsnotiz",
        # Letters that a case-blind pattern takes for "i" or "s" and str.lower() does not.
        "I AM OUT OF THE OFF\u0130CE",
        "I am on vacat\u0131on",
        "\u017ftatus of your parcel",
    ]
)
_BODIES = st.sampled_from(
    [
        "Please help, the checkout fails.",
        "I am out of the office until Monday.",
        "The message could not be delivered to: a@b.example",
        '{"notificationType": "Bounce"}',
        "Thanks!",
    ]
)
_HEADERS = st.lists(
    st.sampled_from(
        [
            ("auto-submitted", "auto-replied"),
            ("auto-submitted", "no"),
            ("precedence", "bulk"),
            ("precedence", "first-class"),
            ("list-id", "<x.example>"),
            ("return-path", "<>"),
            ("return-path", "<a@b.example>"),
            ("x-sla-daemon", "auto_ack"),
            ("x-cr-puzzleid", "1"),
            ("content-type", 'multipart/report; report-type="delivery-status"'),
            ("x-mailer", "Thunderbird"),
        ]
    ),
    max_size=3,
)
_SENDERS = st.sampled_from(
    [
        "dana@globex.example",
        "mailer-daemon@globex.example",
        "no-reply@globex.example",
        "autoreply@globex.example",
        "x@boxbe.com",
        "x@mail.boxbe.com",
        "x@notboxbe.com",
        None,
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    subject=_SUBJECTS,
    body=_BODIES,
    headers=_HEADERS,
    sender=_SENDERS,
    report=st.booleans(),
)
# Each signal alone, so that every net of the screen is tried without luck.
@example(
    "Delivery of the parcel",
    "The message could not be delivered to: a@b.example",
    [],
    "dana@globex.example",
    False,
)
@example("Re: Checkout broken", '{"notificationType": "Bounce"}', [], "dana@globex.example", False)
@example(
    "I am out of the office",
    "I am out of the office until Monday.",
    [],
    "dana@globex.example",
    False,
)
@example("Re: Checkout broken", "Thanks!", [("return-path", "<>")], "dana@globex.example", False)
@example("Re: Checkout broken", "Thanks!", [], "x@mail.boxbe.com", False)
@example("Re: Checkout broken", "Thanks!", [], "no-reply@globex.example", False)
@example("AUTO: away", "Thanks!", [], "dana@globex.example", False)
@example(
    "I AM OUT OF THE OFF\u0130CE",
    "I am out of the office until Monday.",
    [],
    "dana@globex.example",
    False,
)
@example(
    "\u017ftatus of your parcel",
    "The message could not be delivered to: a@b.example",
    [],
    "dana@globex.example",
    False,
)
@example("Re: Checkout broken", "Thanks!", [], "dana@globex.example", True)
@example("Re: Checkout broken", "Thanks!", [], None, False)
def test_the_quick_screen_never_changes_a_verdict(
    subject: str,
    body: str,
    headers: list[tuple[str, str]],
    sender: str | None,
    report: bool,
) -> None:
    """The verdict with the screen for plainly personal mail equals the full judgement."""
    facts = replace(
        client_mail("m", 0, subject=subject, body=body, headers=tuple(headers)),
        sender=Address(sender) if sender is not None else None,
        content_type="multipart/report" if report else "text/plain",
    )
    assert detect_automated(facts) == automated._judge(replace(facts))


def test_the_screens_subject_phrases_are_written_in_lower_case() -> None:
    """The phrase screen's patterns hold no capital letter.

    It searches the folded subject case-sensitively: a capital letter would never match,
    and the screen would let automated mail by unjudged.
    """
    pattern = automated._ANY_SUBJECT_PHRASE.pattern
    assert pattern == pattern.lower()


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Out Of Office", "out of office"),
        ("OFF\u0130CE", "office"),
        ("vacat\u0131on", "vacation"),
        ("\u017fTATUS", "status"),
        ("Z\u00dcSTELLUNG", "z\u00fcstellung"),
    ],
)
def test_folding_gives_the_letters_a_case_blind_pattern_matches(text: str, folded: str) -> None:
    """Folding turns each letter into the one ``re.IGNORECASE`` compares it as."""
    assert automated._folded(text) == folded


def test_a_changed_message_is_judged_again() -> None:
    """A message given a List-Id (a new message object) is judged anew, not remembered."""
    plain = client_mail("m", 0)
    assert detect_automated(plain).kind is None
    listed = replace(plain, headers=(("list-id", "<users.globex.example>"),))
    assert detect_automated(listed).kind is AutomatedKind.LIST
    assert classify(listed, rules()).role is Role.AUTOMATED
    assert detect_automated(plain).kind is None


def test_a_changed_configuration_classifies_afresh() -> None:
    """The same sender is a client under one configuration and team under the next."""
    mail = client_mail("m", 0, sender="dana@globex.example")
    before = rules()
    assert classify(mail, before).role is Role.CLIENT
    team = replace(before.team, domains=(*before.team.domains, "globex.example"))
    after = replace(before, team=team, accounts=())
    assert classify(mail, after).role is Role.TEAM
    assert classify(mail, before).role is Role.CLIENT


def test_a_team_reply_is_attributed_to_each_client_it_writes_to() -> None:
    """One team sender writing to two accounts' clients gets each reply's own account."""
    initech = Account(
        name="Initech", policy="standard", owner="o@acme.example", domains=("initech.example",)
    )
    both = replace(rules(), accounts=(GLOBEX, initech))
    to_globex = classify(team_reply("r1", 0, "m", to="dana@globex.example"), both)
    to_initech = classify(team_reply("r2", 0, "m", to="bill@initech.example"), both)
    assert to_globex.account is not None and to_globex.account.name == "Globex"
    assert to_initech.account is not None and to_initech.account.name == "Initech"


def test_the_address_memo_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MEMO_LIMIT entries the memo starts over, and verdicts stay right."""
    monkeypatch.setattr(classify_module, "MEMO_LIMIT", 4)
    current = rules()
    for number in range(10):
        mail = client_mail(f"m{number}", 0, sender=f"user{number}@globex.example")
        assert classify(mail, current).role is Role.CLIENT
        assert len(current.address_lookup.memo) <= 4
    assert classify(client_mail("x", 0, sender="x@elsewhere.example"), current).role is Role.OTHER


def test_first_headers_follow_the_message() -> None:
    """Header lookups of a copy with other headers see the copy's headers."""
    first = MessageFacts("m", client_mail("m", 0).arrived_at, headers=(("x-a", "1"),))
    assert first.header("X-A") == "1"
    second = replace(first, headers=(("x-a", "2"), ("x-a", "3")))
    assert second.header("x-a") == "2"
    assert first.header("x-a") == "1"


def test_fewer_collections_restores_the_thresholds() -> None:
    """Inside the block the youngest threshold is raised; after it (even on error) restored."""
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with fewer_collections(50_000):
            assert gc.get_threshold() == (50_000, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        try:
            with fewer_collections(50_000):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(200_000, 10, 10)
        with fewer_collections(50_000):
            assert gc.get_threshold() == (200_000, 10, 10)
    finally:
        gc.set_threshold(*saved)
