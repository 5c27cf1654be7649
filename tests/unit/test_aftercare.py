"""After the action plan, with a frozen clock: follow-ups, closing and account check-ins."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sla_daemon.core.aftercare import (
    account_contacts,
    check_in,
    check_in_evaluations,
    check_in_key,
    follow_up_key,
)
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import (
    ConversationState,
    Decision,
    Evaluation,
    MessageFacts,
    NoticeKind,
    Rules,
)
from tests.unit.builders import GLOBEX, NOW, client_mail, rules, team_reply

CID = "c-after"
DAY = 24.0  # hours


def plan_history(plan_days_ago: float) -> list[MessageFacts]:
    """A request two hours before an action plan sent ``plan_days_ago`` days before NOW."""
    plan_hours = plan_days_ago * DAY
    return [
        client_mail("m1", plan_hours + 2),
        team_reply("r1", plan_hours + 1.9, "m1"),
        team_reply("plan", plan_hours, "m1", subject="[Action Plan] Re: Checkout broken"),
    ]


def to_send(result: Evaluation) -> list[Decision]:
    """The decisions that would send a mail (a suppressed auto-ack is only recorded)."""
    return [d for d in result.decisions if d.suppressed_reason is None]


def with_check_ins(days: float = 7) -> Rules:
    """``rules()`` with Globex checked in on every ``days`` days."""
    return replace(rules(), accounts=(replace(GLOBEX, check_in_every=timedelta(days=days)),))


# -- follow-up -----------------------------------------------------------------------------


def test_follow_up_is_due_exactly_after_the_quiet_period() -> None:
    """Plan sent 5 days ago, nothing since: one follow-up to the owner, not a second earlier."""
    history = plan_history(5)
    policy = rules(follow_up_after=timedelta(days=5))
    before = evaluate(CID, history, policy, {}, NOW - timedelta(seconds=1))
    assert to_send(before) == []
    assert before.next_check_at == NOW
    [decision] = to_send(evaluate(CID, history, policy, {}, NOW))
    assert decision.kind is NoticeKind.FOLLOW_UP
    assert decision.key == follow_up_key("m1")
    assert decision.recipients == ("alice@acme.example",)
    assert decision.quiet_since == NOW - timedelta(days=5)
    assert decision.due_at == NOW
    assert decision.trigger_message_id == "m1"


def test_a_message_after_the_plan_restarts_the_quiet_period() -> None:
    """A client's thanks two days after the plan moves the follow-up to five days after it."""
    thanks = client_mail("t1", 3 * DAY, in_reply_to="plan", body="Thanks, that works!")
    history = [*plan_history(5), thanks]
    policy = rules(follow_up_after=timedelta(days=5))
    now = evaluate(CID, history, policy, {}, NOW)
    assert now.status.state is ConversationState.ACTION_PLAN_SENT
    assert to_send(now) == []
    assert now.next_check_at == thanks.arrived_at + timedelta(days=5)
    [later] = to_send(evaluate(CID, history, policy, {}, now.next_check_at))
    assert later.key == follow_up_key("m1")  # still one per cycle
    assert later.quiet_since == thanks.arrived_at


def test_no_follow_up_without_the_setting_or_before_the_plan() -> None:
    """Without follow_up_after nothing is sent; a cycle without a plan gets no follow-up."""
    assert to_send(evaluate(CID, plan_history(30), rules(), {}, NOW)) == []
    no_plan = [client_mail("m1", 30 * DAY), team_reply("r1", 30 * DAY - 0.1, "m1")]
    result = evaluate(CID, no_plan, rules(follow_up_after=timedelta(days=5)), {}, NOW)
    assert all(d.kind is not NoticeKind.FOLLOW_UP for d in result.decisions)


# -- close ---------------------------------------------------------------------------------


def test_a_quiet_conversation_closes_and_sends_nothing() -> None:
    """After close_after of quiet the state is closed: no follow-up, no other notice."""
    policy = rules(follow_up_after=timedelta(days=5), close_after=timedelta(days=10))
    open_ = evaluate(CID, plan_history(10), policy, {}, NOW - timedelta(seconds=1))
    assert open_.status.state is ConversationState.ACTION_PLAN_SENT
    assert open_.next_check_at == NOW
    closed = evaluate(CID, plan_history(10), policy, {}, NOW)
    assert closed.status.state is ConversationState.CLOSED
    assert closed.status.cycle == 1
    assert closed.decisions == ()
    assert closed.next_check_at is None


def test_a_closed_conversation_stays_closed_after_a_courtesy() -> None:
    """A "thanks" after the close opens nothing, so the conversation stays closed."""
    policy = rules(follow_up_after=timedelta(days=5), close_after=timedelta(days=10))
    thanks = client_mail("t1", 1, in_reply_to="plan", body="Thanks, that works!")
    result = evaluate(CID, [*plan_history(12), thanks], policy, {}, NOW)
    assert result.status.state is ConversationState.CLOSED
    assert result.decisions == ()


def test_a_new_client_request_reopens_a_closed_conversation_as_a_new_cycle() -> None:
    """A real request after the close opens cycle 2 with its own clocks and auto-ack."""
    policy = rules(close_after=timedelta(days=10))
    request = client_mail(
        "m2", 1 / 60, in_reply_to="plan", body="The export fails again, can you check?"
    )
    result = evaluate(CID, [*plan_history(12), request], policy, {}, NOW)
    assert result.status.state is ConversationState.AWAITING_ACK
    assert result.status.cycle == 2
    assert result.status.opening_message_id == "m2"
    assert [d.kind for d in result.decisions] == [NoticeKind.AUTO_ACK]


# -- check-in ------------------------------------------------------------------------------


def test_check_in_once_per_period_without_team_mail() -> None:
    """Seven days without a team message: one check-in; the same key all period long."""
    history = plan_history(7)
    contact = account_contacts([history], with_check_ins(), NOW)["Globex"]
    assert contact.last_team_at == NOW - timedelta(days=7)
    account = with_check_ins().accounts[0]
    calendar = with_check_ins().calendar_for(with_check_ins().policy_for(account))

    early, next_at = check_in(account, contact, calendar, NOW - timedelta(seconds=1))
    assert early is None and next_at == NOW
    decision, next_at = check_in(account, contact, calendar, NOW)
    assert decision is not None
    assert decision.kind is NoticeKind.CHECK_IN
    assert decision.key == check_in_key("Globex", NOW)
    assert decision.conversation_id == ""
    assert decision.recipients == ("alice@acme.example",)
    assert decision.quiet_since == NOW - timedelta(days=7)
    assert next_at == NOW + timedelta(days=7)
    same, _ = check_in(account, contact, calendar, NOW + timedelta(days=3))
    assert same is not None and same.key == decision.key
    second, _ = check_in(account, contact, calendar, NOW + timedelta(days=7))
    assert second is not None and second.key == check_in_key("Globex", NOW + timedelta(days=7))


def test_no_check_in_when_the_team_wrote_recently() -> None:
    """A team message two days ago, in any conversation of the account, means no check-in."""
    old = plan_history(20)
    recent = [
        client_mail("n1", 2 * DAY + 1, subject="Invoice"),
        team_reply("n2", 2 * DAY, "n1", subject="Re: Invoice"),
    ]
    policy = with_check_ins()
    contact = account_contacts([old, recent], policy, NOW)["Globex"]
    assert contact.first_client_at == old[0].arrived_at
    assert contact.last_team_at == NOW - timedelta(days=2)
    evaluations = [evaluate("a", old, policy, {}, NOW), evaluate("b", recent, policy, {}, NOW)]
    [result] = check_in_evaluations(evaluations, {"Globex": contact}, policy, NOW)
    assert result.decisions == ()
    assert result.next_check_at == NOW + timedelta(days=5)
    assert result.status.id == "b"  # the account's latest conversation


def test_check_in_goes_with_the_latest_conversation_and_only_for_clients_who_wrote() -> None:
    """A due check-in names the latest conversation's opening; silent accounts get none."""
    history = plan_history(8)
    policy = with_check_ins()
    evaluations = [evaluate(CID, history, policy, {}, NOW)]
    contacts = account_contacts([history], policy, NOW)
    [result] = check_in_evaluations(evaluations, contacts, policy, NOW)
    [decision] = result.decisions
    assert decision.trigger_message_id == "m1"
    assert decision.key == check_in_key("Globex", NOW - timedelta(days=1))
    assert check_in_evaluations([], {}, policy, NOW) == []
    assert check_in_evaluations(evaluations, contacts, rules(), NOW) == []  # not configured
