"""A small mail relay for tests: what an SMTP sink received is delivered into Dovecot.

It plays the part of the mail servers between two teams: each mail the sink accepted is
APPENDed to the INBOX of every recipient's mailbox and to the Sent folder of the
sender's, chosen by domain, so that one daemon sees the other's mail as incoming.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import getaddresses

from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail, SmtpSink


@dataclass
class MailRelay:
    """Delivers the sink's mail into the Dovecot user that owns each address's domain.

    ``mailboxes`` maps a mail domain to a Dovecot user. ``strip_headers`` are removed from
    the copies delivered to INBOX, as a careless forwarder might (the Sent copy is kept
    as sent). Mail to a domain no mailbox owns is counted in ``undeliverable``.
    """

    server: DovecotServer
    sink: SmtpSink
    mailboxes: dict[str, str]
    strip_headers: Sequence[str] = ()
    relayed: int = 0
    undeliverable: list[str] = field(default_factory=list)

    def deliver(self) -> int:
        """Deliver everything the sink received since the last call; return how many."""
        fresh = self.sink.messages[self.relayed :]
        for mail in fresh:
            self._deliver(mail)
        self.relayed += len(fresh)
        return len(fresh)

    def _deliver(self, mail: ReceivedMail) -> None:
        now = datetime.now(UTC).replace(microsecond=0)
        sender_domain = _domain(getaddresses([str(mail.message["From"] or mail.mail_from)])[0][1])
        if sender_domain in self.mailboxes:
            self.server.append(self.mailboxes[sender_domain], "Sent", mail.raw, now)
        inbox_copy = mail.raw
        if self.strip_headers:
            message = email.message_from_bytes(mail.raw, policy=email.policy.default)
            for name in self.strip_headers:
                del message[name]
            inbox_copy = message.as_bytes()
        for recipient in mail.rcpt_tos:
            user = self.mailboxes.get(_domain(recipient))
            if user is None:
                self.undeliverable.append(recipient)
                continue
            self.server.append(user, "INBOX", inbox_copy, now)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].lower()
