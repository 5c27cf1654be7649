"""The messages of one fetched batch, read from the server's FETCH answer.

The polling source (``imap.ImapSource``) asks for a batch of UIDs and hands the answer
here. Each UID becomes a ``FetchedMessage`` (see ``imapwire.fetched_message``), and the
three ways a UID can fail to do so are logged rather than raised: a message missing from
the answer or without a header (usually expunged by another client between SEARCH and
FETCH) is skipped, one whose INTERNALDATE lies before the backfill instant is dropped
(SEARCH SINCE works on whole days, so it finds a day too much), and one whose body was
cut to ``max_body_bytes`` is kept and noted. ``fetch_answer`` sends the batch's FETCH
and reads the answer with ``fetchwire.read_fetch_answer`` instead of imapclient's
general parser, which cost more than the socket reads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, ProtocolError

from sla_daemon.adapters.fetchframes import read_tagged_answer
from sla_daemon.adapters.fetchwire import FetchAnswerError, read_fetch_answer
from sla_daemon.adapters.imapwire import fetched_message, message_size
from sla_daemon.ports import FetchedMessage

_log = structlog.get_logger()

Answer = dict[int, dict[bytes, object]]
"""A FETCH answer: each UID's items by name."""

AHEAD_LIMIT = 32 * 1024 * 1024
"""The next batch is fetched ahead only while the current answer holds less than this
many bytes of mail, so at most about this much more is held at once."""


def fetch_answer(
    client: IMAPClient, uids: Sequence[int], items: Sequence[str]
) -> dict[int, dict[bytes, object]]:
    """``UID FETCH`` of ``items`` for ``uids``: what ``client.fetch`` answers, read faster.

    Like imapclient, the answer holds only the UIDs asked for (unsolicited FETCH
    responses for other messages are dropped). A refused command raises
    ``IMAPClientError``, an answer that breaks the grammar ``ProtocolError``.
    """
    if not uids:
        return {}
    imap = client._imap  # the imaplib connection; imapclient sends FETCH through it too
    uid_set = ",".join(str(uid) for uid in uids)
    imap._check_bye()
    tag = imap._command("UID", "FETCH", uid_set, "(" + " ".join(items).upper() + ")")
    try:
        status, text, lines = read_tagged_answer(imap, tag)
    except OSError as exc:
        raise imap.abort(f"command: FETCH => socket error: {exc}") from exc
    finally:
        imap.tagged_commands.pop(tag, None)
    if status != "OK":
        raise IMAPClientError(f"fetch failed: {status} {text!r}")
    try:
        answer = read_fetch_answer(lines)
    except FetchAnswerError as exc:
        raise ProtocolError(f"unreadable FETCH answer: {exc}") from exc
    return {uid: answer[uid] for uid in uids if uid in answer}


def answers_ahead(
    fetch: Callable[[list[int]], Answer],
    batches: Sequence[list[int]],
    *,
    abandoned: Callable[[BaseException], None],
) -> Iterator[tuple[list[int], Answer]]:
    """Each batch with its answer, in order; the next one is fetched while this one is used.

    While the caller parses and stores a batch, a thread sends the next FETCH and reads
    its answer: the socket reads and the server's work overlap with the caller's. The
    connection is used by that thread alone until its answer is taken. A failed fetch
    raises where its answer is taken. When the caller stops early, the fetch still
    running is waited for; if it failed, the connection may hold half an answer, and
    ``abandoned`` is called with the error so that it is not used again.
    """
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap-fetch") as pool:
        pending: Future[Answer] | None = pool.submit(fetch, batches[0])
        try:
            for index, batch in enumerate(batches):
                current, pending = pending, None
                answer = current.result() if current is not None else fetch(batch)
                following = index + 1 < len(batches)
                if following and _mail_bytes(answer) < AHEAD_LIMIT:
                    pending = pool.submit(fetch, batches[index + 1])
                yield batch, answer
        finally:
            if pending is not None and pending.exception() is not None:
                abandoned(pending.exception() or RuntimeError("fetch failed"))


def _mail_bytes(answer: Answer) -> int:
    """The bytes of mail an answer holds (its header and body literals)."""
    return sum(
        len(value)
        for data in answer.values()
        for value in data.values()
        if isinstance(value, bytes)
    )


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
