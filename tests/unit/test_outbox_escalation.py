"""The outbox gives an escalation the conversation's mail, read from the real store."""

from __future__ import annotations

from collections.abc import Sequence
from email.message import EmailMessage
from pathlib import Path

from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.store import Store
from sla_daemon.clock import FixedClock
from sla_daemon.core.engine import evaluate
from sla_daemon.core.model import NoticeKind
from sla_daemon.outbox import Outbox, OutboxReport
from tests.unit.builders import NOW, client_mail, rules, team_reply


class RecordingSender:
    """Keeps what it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Record ``message``; every recipient is accepted."""
        self.sent.append(message)
        return {}


def test_breach_from_the_outbox_quotes_the_client_and_names_the_acknowledger(
    tmp_path: Path,
) -> None:
    """The stored history reaches the renderer: latest client words and who replied first."""
    rules_ = rules()
    history = [
        client_mail("<m1@globex.example>", 50, body="Checkout fails."),
        team_reply("<r1@acme.example>", 49.5, "<m1@globex.example>"),
        client_mail(
            "<m2@globex.example>", 2, in_reply_to="<r1@acme.example>", body="Any news, please?"
        ),
    ]
    store = Store(tmp_path / "state.sqlite3")
    with store.transaction():
        for facts in history:
            store.add_message(facts, "conv-1", facts.arrived_at)  # seen as it arrived
    evaluation = evaluate("conv-1", store.conversation_messages("conv-1"), rules_, {}, NOW)
    kinds = [(d.kind, d.suppressed_reason is None) for d in evaluation.decisions]
    assert kinds == [(NoticeKind.AUTO_ACK, False), (NoticeKind.BREACH, True)]
    sender = RecordingSender()
    outbox = Outbox(
        store=store,
        renderer=NoticeRenderer(None, rules_.team, "UTC", rules=rules_),
        sender=sender,
        rules=rules_,
        clock=FixedClock(NOW),
    )
    report = OutboxReport()
    outbox.decide([evaluation], NOW, report)
    outbox.flush(report)
    store.close()
    assert report.sent == 1
    body = sender.sent[0].get_body(("plain",))
    assert isinstance(body, EmailMessage)
    text = str(body.get_content())
    assert "  > Any news, please?" in text
    assert "Bob <bob@acme.example>" in text
