"""Build test mail the way a mail client writes it, for every test that seeds a mailbox."""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime


def build_mail(
    message_id: str,
    *,
    sender: str,
    subject: str,
    at: datetime,
    to: str = "support@acme.example",
    body: str = "Hello",
    parent: str | None = None,
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """A plain-text message; a reply names ``parent`` in In-Reply-To and References."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = f"<{message_id}>"
    if parent:
        message["In-Reply-To"] = f"<{parent}>"
        message["References"] = f"<{parent}>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    return message
