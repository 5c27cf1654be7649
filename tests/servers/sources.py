"""An ``ImapSource`` pointed at a test Dovecot, for the tests that drive one directly."""

from __future__ import annotations

from typing import Any

from sla_daemon.adapters.imap import ImapSource


def plain_imap_source(
    host: str, port: int, username: str, password: str, **settings: Any
) -> ImapSource:
    """A plaintext source for ``username`` reading INBOX and Sent; keywords override."""
    arguments: dict[str, Any] = {
        "name": "support",
        "host": host,
        "port": port,
        "security": "none",
        "username": username,
        "password": password,
        "inbox_folders": ["INBOX"],
        "sent_folders": ["Sent"],
        "timeout": 10.0,
    }
    arguments.update(settings)
    return ImapSource(**arguments)
