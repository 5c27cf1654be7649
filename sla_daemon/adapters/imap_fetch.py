"""The messages of one fetched batch, read from the server's FETCH answer.

The polling source (``imap.ImapSource``) asks for a batch of UIDs and hands the answer
here. Each UID becomes a ``FetchedMessage`` (see ``imapwire.fetched_message``), and the
three ways a UID can fail to do so are logged rather than raised: a message missing from
the answer or without a header (usually expunged by another client between SEARCH and
FETCH) is skipped, one whose INTERNALDATE lies before the backfill instant is dropped
(SEARCH SINCE works on whole days, so it finds a day too much), and one whose body was
cut to ``max_body_bytes`` is kept and noted. No server command is sent from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import structlog

from sla_daemon.adapters.imapwire import fetched_message, message_size
from sla_daemon.ports import FetchedMessage

_log = structlog.get_logger()


def messages_in(
    answer: Mapping[int, Mapping[bytes, object]],
    batch: Sequence[int],
    *,
    mailbox: str,
    folder: str,
    since: datetime | None,
) -> list[FetchedMessage]:
    """The messages of ``batch`` in ``answer``, in UID order, less those before ``since``."""
    messages = []
    older = 0
    for uid in batch:
        data = answer.get(uid)
        message = fetched_message(uid, data) if data is not None else None
        size = message_size(data) if data is not None else None
        if message is not None and size is not None and size > len(message.raw):
            _log.info(
                "imap message body cut",
                mailbox=mailbox,
                folder=folder,
                uid=uid,
                size=size,
                kept=len(message.raw),
            )
        if message is None:
            # Usually expunged by another client between SEARCH and FETCH.
            reason = "no header in the FETCH answer" if data else "not in the FETCH answer"
            _log.info(
                "imap message skipped", mailbox=mailbox, folder=folder, uid=uid, reason=reason
            )
        elif since and message.internaldate and message.internaldate < since:
            older += 1  # SINCE searched from the day before; see since_search_date
        else:
            messages.append(message)
    if older:
        _log.debug(
            "imap messages before backfill skipped",
            mailbox=mailbox,
            folder=folder,
            count=older,
        )
    return messages
