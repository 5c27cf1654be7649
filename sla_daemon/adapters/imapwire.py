r"""Pure conversions between IMAP wire values and plain Python values.

Kept apart from the connection handling in ``imap.py`` so each can be tested on plain
bytes and numbers, without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from sla_daemon.ports import FetchedMessage

FETCH_ITEMS = ("BODY.PEEK[HEADER]", "RFC822.SIZE", "INTERNALDATE", "FLAGS")
r"""What is fetched per message besides the start of its text (see ``fetch_items``).

PEEK keeps the server from setting ``\Seen``. The whole header is fetched; of the body
only its first ``max_body_bytes``, so a 50 MB attachment never crosses the wire.
``RFC822.SIZE`` tells how much was left out.
"""

_HEADER = b"BODY[HEADER]"  # servers answer BODY.PEEK[HEADER] under this name
_TEXT = b"BODY[TEXT]<0>"  # ... and BODY.PEEK[TEXT]<0.n> under this one
_SIZE = b"RFC822.SIZE"
# Untagged responses in IDLE that mean the folder changed. FLAGS alone (a new keyword
# became known) is left out: the FETCH that set the keyword follows it.
_CHANGES = frozenset({b"EXISTS", b"EXPUNGE", b"RECENT", b"FETCH", b"VANISHED"})
_SESSION_FLAGS = frozenset({"\\recent"})
_BYTES_REPR = re.compile(r"""b(?P<quote>['"])(?P<text>.*)(?P=quote)""", re.DOTALL)


def decode_flags(flags: Iterable[bytes | str]) -> tuple[str, ...]:
    r"""Return IMAP flags as text, in server order, without session-only flags.

    ``\Recent`` is dropped: it tells which session saw a message first, so keeping it
    would make one message look different depending on who else is connected.
    """
    decoded = (
        flag.decode("utf-8", "replace") if isinstance(flag, bytes) else flag for flag in flags
    )
    return tuple(flag for flag in decoded if flag.lower() not in _SESSION_FLAGS)


def uids_after(uids: Iterable[int], last_uid: int) -> list[int]:
    """Return the UIDs above ``last_uid``, ascending and without duplicates.

    A search for ``UID n:*`` always matches the highest UID in the folder, even when it
    is below ``n`` (RFC 3501 reads ``*`` as the largest UID in use), so the answer must
    be filtered again on our side.
    """
    return sorted({uid for uid in uids if uid > last_uid})


def batched(uids: Sequence[int], size: int) -> list[list[int]]:
    """Split ``uids`` into consecutive lists of at most ``size`` items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    return [list(uids[start : start + size]) for start in range(0, len(uids), size)]


def internaldate_to_utc(value: object) -> datetime | None:
    """Return an INTERNALDATE as an aware UTC datetime (None when it is not a datetime).

    A naive value (which this adapter never asks imapclient for) is taken as UTC.
    """
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def since_search_date(backfill_since: datetime) -> date:
    """Return the date for ``SEARCH SINCE`` that finds every message from ``backfill_since``.

    SINCE compares calendar dates in the server's own time zone, which we do not know;
    starting a day earlier covers every zone, and the exact instant is applied to each
    fetched message's INTERNALDATE afterwards.
    """
    if backfill_since.tzinfo is None:
        raise ValueError("backfill_since must be timezone-aware")
    return (backfill_since.astimezone(UTC) - timedelta(days=1)).date()


def fetch_items(max_body_bytes: int) -> tuple[str, ...]:
    """The FETCH items: ``FETCH_ITEMS`` plus the first ``max_body_bytes`` of the body."""
    if max_body_bytes < 0:
        raise ValueError(f"max_body_bytes must not be negative, got {max_body_bytes}")
    return (*FETCH_ITEMS, f"BODY.PEEK[TEXT]<0.{max_body_bytes}>")


def fetched_message(uid: int, data: Mapping[bytes, object]) -> FetchedMessage | None:
    """Build a ``FetchedMessage`` from one FETCH answer, or None when it has no header.

    ``raw`` is the header (with the blank line that ends it) followed by the start of
    the body, so a message within the limit comes back byte for byte as stored. A cut
    body may end inside a MIME part; the parser copes with that.
    """
    header = data.get(_HEADER)
    if not isinstance(header, bytes):
        return None
    text = data.get(_TEXT)
    flags = data.get(b"FLAGS", ())
    return FetchedMessage(
        uid=uid,
        raw=header + text if isinstance(text, bytes) else header,
        internaldate=internaldate_to_utc(data.get(b"INTERNALDATE")),
        flags=decode_flags(flags if isinstance(flags, tuple | list) else ()),
    )


def flag_updates_in(
    answer: Mapping[int, Mapping[bytes, object]], uids: Iterable[int]
) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """The ``(uid, flags)`` of a ``FETCH (FLAGS)`` answer, for ``uids`` only, in UID order.

    Entries without FLAGS are left out, and so is every UID not asked for: imapclient
    files an unsolicited FETCH that carries no UID under its sequence number.
    """
    updates = []
    for uid in sorted(set(uids)):
        flags = answer.get(uid, {}).get(b"FLAGS")
        if isinstance(flags, tuple | list):
            updates.append((uid, decode_flags(flags)))
    return tuple(updates)


def refresh_window(last_uid: int, size: int) -> list[int]:
    """The ``size`` highest UIDs up to ``last_uid``: the messages whose flags are refreshed.

    UIDs that no longer exist are simply not answered, so the cost is at most ``size``
    messages, however large the folder.
    """
    if size < 0:
        raise ValueError(f"refresh window must not be negative, got {size}")
    return list(range(max(1, last_uid - size + 1), last_uid + 1))


def message_size(data: Mapping[bytes, object]) -> int | None:
    """The whole message's size from a FETCH answer (``RFC822.SIZE``), when given."""
    size = data.get(_SIZE)
    return size if isinstance(size, int) else None


def reports_change(responses: Iterable[tuple[object, ...]]) -> bool:
    """Whether untagged IDLE responses say the folder changed.

    imapclient parses ``* 3 EXISTS`` as ``(3, b'EXISTS')`` and ``* OK Still here`` as
    ``(b'OK', b'Still here')``; the keyword is the second item after a number.
    """
    for response in responses:
        if len(response) >= 2 and isinstance(response[0], int):
            keyword = response[1]
        else:
            keyword = response[0] if response else None
        if isinstance(keyword, bytes) and keyword.upper() in _CHANGES:
            return True
    return False


def reports_bye(responses: Iterable[tuple[object, ...]]) -> bool:
    """Whether the server said ``BYE`` (it is closing the connection)."""
    return any(
        response and isinstance(response[0], bytes) and response[0].upper() == b"BYE"
        for response in responses
    )


def sent_folders_in(listing: Iterable[tuple[Sequence[object], object, object]]) -> list[str]:
    r"""The folders a LIST answer marks ``\Sent`` (RFC 6154 SPECIAL-USE), in its order.

    imapclient answers LIST as ``(flags, delimiter, name)`` tuples.
    """
    found = []
    for flags, _delimiter, name in listing:
        marks = {
            (flag.decode("ascii", "replace") if isinstance(flag, bytes) else str(flag)).lower()
            for flag in flags
        }
        if "\\sent" in marks and isinstance(name, str):
            found.append(name)
    return found


def login_refusal_is_temporary(server_text: str) -> bool:
    """Whether a refused LOGIN is the server's own trouble rather than bad credentials.

    RFC 5530 response codes: ``[UNAVAILABLE]`` (the authentication backend is down),
    ``[INUSE]`` (a resource is busy), ``[LIMIT]`` (too many connections for the user, as
    Dovecot says after ``mail_max_userip_connections``) and ``[SERVERBUG]``. Gmail says
    "Too many simultaneous connections" without a code. Retrying later helps all of
    these, and the operator must not be told the password is wrong.
    """
    upper = server_text.upper()
    return any(code in upper for code in _TEMPORARY_LOGIN_REFUSALS)


_TEMPORARY_LOGIN_REFUSALS = (
    "[UNAVAILABLE]",
    "[INUSE]",
    "[LIMIT]",
    "[SERVERBUG]",
    "TOO MANY SIMULTANEOUS CONNECTIONS",
)


def server_reply(exc: BaseException) -> str:
    """The text of an IMAP error, without the ``b'...'`` that imaplib leaves around it."""
    text = str(exc).strip()
    match = _BYTES_REPR.fullmatch(text)
    return match.group("text") if match else text


def describe(exc: BaseException) -> str:
    """A one-line description of an exception that names its kind."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
