"""The fault suite's workload: 200 client conversations over three mailboxes, in waves.

Conversation ``n`` lands in mailbox ``MAILBOXES[n % 3]`` and belongs to account
``ACCOUNTS[n % 4]``: three quarters to Globex and Initech on the ``quick`` policy (the
action plan is due 30 seconds after the request, with a warning 20 seconds before), a
quarter to Umbrella on the ``standard`` one (due in hours: nothing but the auto-ack is
due during a run). Every fifth conversation has a second client message in the thread,
and every tenth mailbox also gets an automated report from the client's monitoring
(``Auto-Submitted: auto-generated``), which must be stored and answered by nothing.

What is due is worked out here from that definition, not from the daemon: every
conversation gets an auto-ack (each request comes from its own address, minutes old at
most); a quick one also gets its warning and its breach once 30 seconds have passed;
with ``late_breaches`` (the clock moved an hour on) an Umbrella one gets its breach too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from imapclient.exceptions import IMAPClientError

from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail

MAILBOXES = ("support", "billing", "ops")
ACCOUNTS = ("globex", "initech", "globex", "umbrella")
OWNERS = {
    "globex": "alice@acme.example",
    "initech": "bob@acme.example",
    "umbrella": "carol@acme.example",
}
QUICK_ACCOUNTS = frozenset({"globex", "initech"})
CONVERSATIONS = 200
WAVES = 10
DUE_SECONDS = 30  # the quick action plan; its warning comes 20 seconds before

CONFIG: dict[str, Any] = {
    "policies": {
        "quick": {
            "acknowledge": {"within": "1h", "warn_before": ["30m"]},
            "action_plan": {"within": f"{DUE_SECONDS}s", "warn_before": ["20s"]},
        },
    },
    "accounts": [
        {
            "name": name,
            "domains": [f"{name}.example"],
            "owner": owner,
            "policy": "quick" if name in QUICK_ACCOUNTS else "standard",
        }
        for name, owner in OWNERS.items()
    ],
    "ingest": {"auto_ack_max_age": "1d"},
    "notices": {"delivery": {"retry_first": "1s", "retry_max": "2s"}},
}


@dataclass(frozen=True)
class Conversation:
    """One client conversation of a run; see the module docstring for its shape."""

    run: str
    number: int

    @property
    def mailbox(self) -> str:
        """The mailbox it is delivered to."""
        return MAILBOXES[self.number % len(MAILBOXES)]

    @property
    def account(self) -> str:
        """The client account it belongs to."""
        return ACCOUNTS[self.number % len(ACCOUNTS)]

    @property
    def opening_id(self) -> str:
        """The Message-ID (without brackets) of the request that opens it."""
        return f"request-{self.number}.{self.run}@{self.account}.example"

    def mails(self, at: datetime) -> list[tuple[bytes, str, datetime]]:
        """Its messages with their Message-IDs and arrival times, the request at ``at``.

        The follow-up arrives a second after the request: it is the request that opens
        the cycle and names its notices.
        """
        sender = f"Client {self.number} <client{self.number}@{self.account}.example>"
        request = build_mail(
            self.opening_id,
            sender=sender,
            subject=f"Request {self.number}",
            body=f"Please look at problem {self.number}.",
            at=at,
        )
        mails = [(request.as_bytes(), self.opening_id, at)]
        if self.number % 5 == 0:
            follow_up_id = f"more-{self.number}.{self.run}@{self.account}.example"
            follow_up = build_mail(
                follow_up_id,
                sender=sender,
                subject=f"Re: Request {self.number}",
                body="One more detail: it happens every morning.",
                at=at + timedelta(seconds=1),
                parent=self.opening_id,
            )
            mails.append((follow_up.as_bytes(), follow_up_id, at + timedelta(seconds=1)))
        if self.number % 10 == 3:
            report_id = f"report-{self.number}.{self.run}@{self.account}.example"
            report = build_mail(
                report_id,
                sender=f"Monitoring <monitor@{self.account}.example>",
                subject=f"Disk usage report {self.number}",
                body="All volumes below 80%.",
                at=at,
                headers={"Auto-Submitted": "auto-generated"},
            )
            mails.append((report.as_bytes(), report_id, at))
        return mails

    def expected(self, *, late_breaches: bool = False) -> set[str]:
        """The keys (``kind|opening Message-ID``) of every notice due for it at the end."""
        kinds = {"auto_ack"}
        if self.account in QUICK_ACCOUNTS:
            kinds |= {"warning", "breach"}
        elif late_breaches:
            kinds.add("breach")
        return {f"{kind}|{self.opening_id}" for kind in kinds}


def conversations(run: str) -> list[Conversation]:
    """The run's 200 conversations, numbered from 0."""
    return [Conversation(run, number) for number in range(CONVERSATIONS)]


def waves(run: str) -> list[list[Conversation]]:
    """The conversations in ``WAVES`` equal waves, in order."""
    everything = conversations(run)
    size = len(everything) // WAVES
    return [everything[start : start + size] for start in range(0, len(everything), size)]


def expected_notices(run: str, *, late_breaches: bool = False) -> set[str]:
    """Every notice due at the end of a run (see the module docstring)."""
    return {
        key
        for conversation in conversations(run)
        for key in conversation.expected(late_breaches=late_breaches)
    }


def client_message_ids(run: str) -> set[str]:
    """The Message-ID of every message the run delivers to the mailboxes."""
    at = datetime.now(UTC)
    return {mid for conversation in conversations(run) for _, mid, _ in conversation.mails(at)}


def received_key(mail: ReceivedMail) -> str:
    """A received notice's ``kind|opening Message-ID`` (as in ``Conversation.expected``)."""
    opening = str(mail.message["X-SLA-Notice-Key"]).split("|")[0].strip().strip("<>")
    return f"{mail.message['X-SLA-Daemon']}|{opening}"


def deliver(
    server: DovecotServer,
    users: dict[str, str],
    wave: Sequence[Conversation],
    *,
    timeout: float = 120.0,
) -> None:
    """APPEND the wave's mail to each mailbox's INBOX, dated now; wait out an outage.

    A connection that fails (the server was killed or is down) is made again until
    ``timeout``; the message whose APPEND got no answer is appended again, so a mailbox
    may hold it twice, as after a client's retry (the daemon keeps one copy).
    """
    deadline = time.monotonic() + timeout
    for mailbox in MAILBOXES:
        at = datetime.now(UTC)
        mails = [(raw, when) for c in wave if c.mailbox == mailbox for raw, _, when in c.mails(at)]
        done = 0
        while done < len(mails):
            try:
                client = server.connect(users[mailbox])
                try:
                    for raw, when in mails[done:]:
                        client.append("INBOX", raw, msg_time=when)
                        done += 1
                finally:
                    with contextlib.suppress(Exception):
                        client.logout()
            except (OSError, IMAPClientError):
                assert time.monotonic() < deadline, f"{mailbox}: no APPEND for {timeout}s"
                time.sleep(0.2)
