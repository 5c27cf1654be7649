"""The SLA engine with a frozen clock: states, due times, and the decisions it takes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sla_daemon.core.engine import auto_ack_key, evaluate
from sla_daemon.core.model import (
    AcknowledgedBy,
    Address,
    ClockName,
    ConversationState,
    MessageFacts,
    NoticeKind,
    SecondLevel,
    SentNotice,
)
from tests.unit.builders import NOW, client_mail, rules, team_reply

CID = "c-test"


def test_fresh_unanswered_mail_gets_an_auto_ack_to_the_client() -> None:
    """A client mail one minute old, unanswered, is awaiting ack and gets one auto-ack."""
    result = evaluate(CID, [client_mail("m1", 1 / 60)], rules(), {}, NOW)
    assert result.status.state is ConversationState.AWAITING_ACK
    assert result.status.account == "Globex"
    assert result.status.acknowledge_due == NOW - timedelta(minutes=1) + timedelta(hours=1)
    [decision] = result.decisions
    assert decision.kind is NoticeKind.AUTO_ACK
    assert decision.recipients == ("dana@globex.example",)
    assert decision.suppressed_reason is None
    assert decision.key == auto_ack_key("m1")


def test_auto_ack_goes_to_reply_to_when_given() -> None:
    """The auto-ack answers the Reply-To address, as a mail client would."""
    mail = replace(client_mail("m1", 0.01), reply_to=(Address("tickets@globex.example"),))
    [decision] = evaluate(CID, [mail], rules(), {}, NOW).decisions
    assert decision.recipients == ("tickets@globex.example",)


def test_old_mail_is_not_auto_acked_and_the_reason_is_given() -> None:
    """Mail older than auto_ack_max_age gets a suppressed auto-ack decision, not a mail."""
    result = evaluate(CID, [client_mail("m1", 1.5)], rules(), {}, NOW)
    [decision] = [d for d in result.decisions if d.kind is NoticeKind.AUTO_ACK]
    assert decision.suppressed_reason is not None
    assert "auto_ack_max_age" in decision.suppressed_reason


def test_sent_auto_ack_acknowledges_the_conversation() -> None:
    """Once the outbox has sent the auto-ack, the clock stops at that time, by 'auto'."""
    sent_at = NOW - timedelta(minutes=20)
    notices = {
        auto_ack_key("m1"): SentNotice(auto_ack_key("m1"), NoticeKind.AUTO_ACK, sent_at, sent_at)
    }
    result = evaluate(CID, [client_mail("m1", 0.5)], rules(), notices, NOW)
    assert result.status.state is ConversationState.AWAITING_ACTION_PLAN
    assert result.status.acknowledged_at == sent_at
    assert result.status.acknowledged_by is AcknowledgedBy.AUTO
    assert result.status.first_human_response_at is None
    assert result.decisions == ()


def test_auto_ack_does_not_count_when_policy_says_so() -> None:
    """With counts_auto_ack false, only a human reply acknowledges."""
    sent_at = NOW - timedelta(minutes=20)
    notices = {
        auto_ack_key("m1"): SentNotice(auto_ack_key("m1"), NoticeKind.AUTO_ACK, sent_at, sent_at)
    }
    result = evaluate(CID, [client_mail("m1", 0.5)], rules(counts_auto_ack=False), notices, NOW)
    assert result.status.state is ConversationState.AWAITING_ACK
    assert result.status.acknowledged_at is None


def test_human_reply_acknowledges_and_most_urgent_warning_only() -> None:
    """At 45h both warnings (24h, 4h) are due; only the 4h one is decided."""
    history = [client_mail("m1", 45), team_reply("r1", 45 - 1 / 6, "m1")]
    result = evaluate(CID, history, rules(), {}, NOW)
    status = result.status
    assert status.state is ConversationState.AWAITING_ACTION_PLAN
    assert status.acknowledged_by is AcknowledgedBy.HUMAN
    assert status.first_human_response_at == NOW - timedelta(hours=45 - 1 / 6)
    assert status.action_plan_due == NOW + timedelta(hours=3)
    warnings = [d for d in result.decisions if d.kind is NoticeKind.WARNING]
    assert len(warnings) == 1
    assert warnings[0].level == "warn-14400s"
    assert warnings[0].recipients == ("alice@acme.example",)
    assert warnings[0].clock is ClockName.ACTION_PLAN


def test_breach_goes_to_owner_and_escalation_list() -> None:
    """At 49h without a plan, the action-plan clock is breached and escalated."""
    history = [client_mail("m1", 49), team_reply("r1", 49 - 1 / 6, "m1")]
    result = evaluate(CID, history, rules(), {}, NOW)
    assert result.status.breaches == (ClockName.ACTION_PLAN,)
    breaches = [d for d in result.decisions if d.kind is NoticeKind.BREACH]
    assert [(b.clock, b.recipients, b.repetition) for b in breaches] == [
        (ClockName.ACTION_PLAN, ("alice@acme.example", "lead@acme.example"), 0)
    ]
    assert not [d for d in result.decisions if d.kind is NoticeKind.WARNING]


def test_re_escalation_repeats_with_a_new_key() -> None:
    """With re_escalate_every 24h, a breach 25h old is repetition 1 with its own key."""
    history = [client_mail("m1", 73), team_reply("r1", 72.9, "m1")]
    first = evaluate(CID, history, rules(re_escalate_every=timedelta(hours=24)), {}, NOW)
    [breach] = [d for d in first.decisions if d.kind is NoticeKind.BREACH]
    assert breach.repetition == 1
    earlier = evaluate(
        CID,
        history,
        rules(re_escalate_every=timedelta(hours=24)),
        {},
        NOW - timedelta(hours=2),
    )
    [before] = [d for d in earlier.decisions if d.kind is NoticeKind.BREACH]
    assert before.repetition == 0
    assert before.key != breach.key


def test_action_plan_by_body_pattern_stops_the_clock() -> None:
    """A team reply with a line 'Action plan: ...' sends the conversation to plan-sent."""
    history = [
        client_mail("m1", 30),
        team_reply("r1", 29.8, "m1", body="Hi,\n\nAction plan: restart the sync.\n"),
    ]
    result = evaluate(CID, history, rules(), {}, NOW)
    assert result.status.state is ConversationState.ACTION_PLAN_SENT
    assert result.status.action_plan_at == NOW - timedelta(hours=29.8)
    assert result.status.breaches == ()
    assert [d for d in result.decisions if d.suppressed_reason is None] == []


def test_action_plan_in_quoted_client_text_does_not_count() -> None:
    """'Action plan:' inside the quoted client text is not the team's plan."""
    body = "Thanks!\n\nOn Mon, Dana wrote:\n> Action plan: please send one\n"
    history = [client_mail("m1", 30), team_reply("r1", 29.8, "m1", body=body)]
    result = evaluate(CID, history, rules(), {}, NOW)
    assert result.status.state is ConversationState.AWAITING_ACTION_PLAN


def test_action_plan_by_subject_tag_and_keyword() -> None:
    """The subject tag and the IMAP keyword each mark an action plan."""
    by_tag = [
        client_mail("m1", 30),
        team_reply("r1", 29, "m1", subject="Re: Checkout broken [Action Plan]"),
    ]
    by_keyword = [client_mail("m1", 30), team_reply("r1", 29, "m1", keywords=("$ActionPlan",))]
    for history in (by_tag, by_keyword):
        status = evaluate(CID, history, rules(), {}, NOW).status
        assert status.state is ConversationState.ACTION_PLAN_SENT


def test_automated_mail_opens_nothing() -> None:
    """An out-of-office reply from a client domain opens no cycle and gets no auto-ack."""
    auto = client_mail("m1", 0.01, headers=(("auto-submitted", "auto-replied"),))
    result = evaluate(CID, [auto], rules(), {}, NOW)
    assert result.status.state is ConversationState.CLOSED
    assert result.status.cycle == 0
    assert result.decisions == ()


def test_unknown_sender_opens_nothing() -> None:
    """Mail from a sender of no account opens no cycle."""
    stranger = client_mail("m1", 0.01, sender="someone@elsewhere.example")
    assert evaluate(CID, [stranger], rules(), {}, NOW).status.cycle == 0


def test_team_internal_mail_does_not_acknowledge() -> None:
    """A team message addressed only to the team is not a response to the client."""
    history = [
        client_mail("m1", 0.5),
        team_reply("r1", 0.4, "m1", to="carol@acme.example"),
    ]
    assert evaluate(CID, history, rules(), {}, NOW).status.acknowledged_at is None


def test_client_mail_after_the_plan_opens_a_new_cycle() -> None:
    """A new client request after the action plan starts cycle 2 with fresh clocks."""
    history = [
        client_mail("m1", 30),
        team_reply("r1", 29, "m1", body="Action plan: do it."),
        client_mail("m2", 0.01, in_reply_to="r1", body="It is broken again."),
    ]
    result = evaluate(CID, history, rules(), {}, NOW)
    assert result.status.cycle == 2
    assert result.status.state is ConversationState.AWAITING_ACK
    assert result.status.opened_at == NOW - timedelta(hours=0.01)
    [decision] = result.decisions
    assert decision.key == auto_ack_key("m2")


def test_client_mail_while_cycle_open_joins_it() -> None:
    """A second client message before the plan does not restart the clocks."""
    history = [
        client_mail("m1", 10),
        team_reply("r1", 9.9, "m1"),
        client_mail("m2", 1, in_reply_to="r1"),
    ]
    status = evaluate(CID, history, rules(), {}, NOW).status
    assert status.cycle == 1
    assert status.opened_at == NOW - timedelta(hours=10)


def test_waiting_on_client_pauses_the_action_plan_clock() -> None:
    """Time waiting on the client (keyword on the team reply) is not counted."""
    history = [
        client_mail("m1", 50),
        team_reply("r0", 49.9, "m1"),
        team_reply("r1", 40, "m1", keywords=("$WaitingOnClient",)),
        client_mail("m2", 20, in_reply_to="r1"),
    ]
    status = evaluate(CID, history, rules(), {}, NOW).status
    # 10h ran before the pause, 20h were paused: due 48h + 20h after opening.
    assert status.action_plan_due == NOW - timedelta(hours=50) + timedelta(hours=68)
    assert status.breaches == ()


def test_while_waiting_on_client_nothing_escalates() -> None:
    """A paused clock is not breached and decides no warning or breach."""
    history = [
        client_mail("m1", 60),
        team_reply("r1", 59, "m1", keywords=("$WaitingOnClient",)),
    ]
    result = evaluate(CID, history, rules(), {}, NOW)
    assert result.status.state is ConversationState.WAITING_ON_CLIENT
    assert [d for d in result.decisions if d.kind is not NoticeKind.AUTO_ACK] == []


def test_as_of_ignores_mail_that_arrived_later() -> None:
    """Evaluating in the past sees only the mail that had arrived by then."""
    history = [client_mail("m1", 30), team_reply("r1", 5, "m1", body="Action plan: x")]
    status = evaluate(CID, history, rules(), {}, NOW - timedelta(hours=10)).status
    assert status.state is ConversationState.AWAITING_ACK
    assert status.action_plan_at is None
    assert status.message_ids == ("m1",)


def test_acknowledge_breach_when_nobody_answers_old_mail() -> None:
    """Old unanswered mail breaches the acknowledge clock and is escalated."""
    result = evaluate(CID, [client_mail("m1", 3)], rules(), {}, NOW)
    assert ClockName.ACKNOWLEDGE in result.status.breaches
    kinds = {(d.kind, d.clock) for d in result.decisions}
    assert (NoticeKind.BREACH, ClockName.ACKNOWLEDGE) in kinds


def test_next_check_is_the_next_warning_then_the_due_time() -> None:
    """The evaluation names the next instant a notice becomes due, for the runner."""
    history = [client_mail("m1", 10), team_reply("r1", 9.9, "m1")]
    result = evaluate(CID, history, rules(), {}, NOW)
    # Opened 10h ago: the 24h warning is due 14h from now.
    assert result.next_check_at == NOW + timedelta(hours=14)
    later = evaluate(CID, history, rules(), {}, NOW + timedelta(hours=36))
    assert later.next_check_at == NOW + timedelta(hours=38)  # the due time itself


def test_next_check_after_a_breach_is_the_next_re_escalation() -> None:
    """A breached clock with re_escalate_every wakes for the next repetition only."""
    history = [client_mail("m1", 50), team_reply("r1", 49.9, "m1")]
    result = evaluate(CID, history, rules(re_escalate_every=timedelta(hours=24)), {}, NOW)
    assert result.next_check_at == NOW - timedelta(hours=2) + timedelta(hours=24)
    plain = evaluate(CID, history, rules(), {}, NOW)
    assert plain.next_check_at is None


def test_breach_past_due_when_first_seen_is_pre_existing() -> None:
    """A breach that was already late when the daemon stored the mail is marked so."""
    seen = replace(client_mail("m1", 50), seen_at=NOW - timedelta(minutes=1))
    history = [seen, team_reply("r1", 49.9, "m1")]
    [breach] = [
        d for d in evaluate(CID, history, rules(), {}, NOW).decisions if d.kind is NoticeKind.BREACH
    ]
    assert breach.pre_existing
    watched = replace(client_mail("m1", 50), seen_at=NOW - timedelta(hours=50))
    [live] = [
        d
        for d in evaluate(CID, [watched, history[1]], rules(), {}, NOW).decisions
        if d.kind is NoticeKind.BREACH
    ]
    assert not live.pre_existing


def test_our_auto_ack_found_in_sent_acknowledges_as_auto_never_human() -> None:
    """A copy of our own auto-ack in Sent counts as the auto acknowledgement, not a reply."""
    ack = replace(
        team_reply("ack1", 0.9, "m1", body="We have received your message."),
        headers=(("x-sla-daemon", "auto_ack"), ("auto-submitted", "auto-replied")),
        sender=Address("support@acme.example", "Acme Support"),
    )
    result = evaluate(CID, [client_mail("m1", 1), ack], rules(), {}, NOW)
    assert result.status.acknowledged_by is AcknowledgedBy.AUTO
    assert result.status.acknowledged_at == NOW - timedelta(hours=0.9)
    assert result.status.first_human_response_at is None
    assert [d for d in result.decisions if d.kind is NoticeKind.AUTO_ACK] == []


def test_our_escalation_in_the_thread_triggers_nothing() -> None:
    """A breach notice of ours that lands in the conversation is neither client nor team."""
    notice = replace(
        team_reply("n1", 0.5, "m1", to="alice@acme.example"),
        headers=(("x-sla-daemon", "breach"), ("auto-submitted", "auto-generated")),
    )
    base = evaluate(CID, [client_mail("m1", 3)], rules(), {}, NOW)
    with_notice = evaluate(CID, [client_mail("m1", 3), notice], rules(), {}, NOW)
    assert with_notice.status == replace(base.status, message_ids=("m1", "n1"))


def _after_plan(*later: MessageFacts) -> list[MessageFacts]:
    """A request answered with an action plan, then ``later`` messages."""
    return [
        client_mail("m1", 30),
        team_reply("r1", 29, "m1", body="Action plan: rotate the keys."),
        *later,
    ]


def test_thanks_that_works_opens_nothing() -> None:
    """'Thanks, that works!' after the plan is a courtesy: no new cycle, no auto-ack."""
    thanks = client_mail("m2", 0.01, in_reply_to="r1", body="Thanks, that works!\n\nDana")
    result = evaluate(CID, _after_plan(thanks), rules(), {}, NOW)
    assert result.status.cycle == 1
    assert result.status.state is ConversationState.ACTION_PLAN_SENT
    assert [d for d in result.decisions if d.suppressed_reason is None] == []


def test_thanks_but_still_failing_opens_a_new_cycle() -> None:
    """'Thanks, but the export still fails, can you check?' is a new request."""
    body = "Thanks \u2014 but the export still fails, can you check?"
    again = client_mail("m2", 0.01, in_reply_to="r1", body=body)
    result = evaluate(CID, _after_plan(again), rules(), {}, NOW)
    assert result.status.cycle == 2
    assert result.status.state is ConversationState.AWAITING_ACK
    assert [d.kind for d in result.decisions] == [NoticeKind.AUTO_ACK]


def test_quoted_text_and_signature_do_not_count_against_a_courtesy() -> None:
    """The quoted plan and a signature are not the client's words."""
    body = (
        "Great, thank you!\n\n-- \nDana Lee\nHead of Operations, Globex\n+1 555 0100\n"
        "\nOn Mon, Bob wrote:\n> Action plan: rotate the keys. Is there anything else?\n"
    )
    thanks = client_mail("m2", 0.01, in_reply_to="r1", body=body)
    assert evaluate(CID, _after_plan(thanks), rules(), {}, NOW).status.cycle == 1


def test_a_long_thank_you_with_a_new_topic_is_a_request() -> None:
    """More than a dozen words is never a mere courtesy."""
    body = "Thanks a lot. We would also like to move the nightly export to 02:00 from next week on."
    again = client_mail("m2", 0.01, in_reply_to="r1", body=body)
    assert evaluate(CID, _after_plan(again), rules(), {}, NOW).status.cycle == 2


def test_a_courtesy_does_not_resume_a_paused_clock() -> None:
    """'Thanks!' while the team waits on the client is not the answer it waits for."""
    history = [
        client_mail("m1", 50),
        team_reply("r0", 49.9, "m1"),
        team_reply("r1", 40, "m1", keywords=("$WaitingOnClient",)),
        client_mail("m2", 39, in_reply_to="r1", body="Thanks!"),
    ]
    status = evaluate(CID, history, rules(), {}, NOW).status
    assert status.state is ConversationState.WAITING_ON_CLIENT


def test_second_escalation_level_after_a_lasting_breach() -> None:
    """24h after the deadline the breach goes one level up, to the director too, once."""
    second = SecondLevel(after=timedelta(hours=24), to=("director@acme.example",))
    history = [client_mail("m1", 75), team_reply("r1", 74.9, "m1")]  # plan 27h late
    result = evaluate(CID, history, rules(second_level=second), {}, NOW)
    [breach] = [d for d in result.decisions if d.kind is NoticeKind.BREACH]
    assert breach.level == "breach-2"
    assert breach.recipients == ("alice@acme.example", "lead@acme.example", "director@acme.example")
    early = evaluate(CID, history, rules(second_level=second), {}, NOW - timedelta(hours=5))
    [first] = [d for d in early.decisions if d.kind is NoticeKind.BREACH]
    assert first.level == "breach-1" and "director@acme.example" not in first.recipients
    assert early.next_check_at == NOW - timedelta(hours=3)  # when level 2 begins
