r"""Pure conversions between IMAP wire values and plain Python values.

Kept apart from the connection handling in ``imap.py`` so each can be tested on plain
bytes and numbers, without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta

from sla_daemon.ports import FetchedMessage

FETCH_ITEMS = ("BODY.PEEK[]", "INTERNALDATE", "FLAGS")
r"""What is fetched per message; PEEK keeps the server from setting ``\Seen``."""

_BODY = b"BODY[]"  # servers answer BODY.PEEK[] under this name
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


def fetched_message(uid: int, data: Mapping[bytes, object]) -> FetchedMessage | None:
    """Build a ``FetchedMessage`` from one FETCH answer, or None when it has no body."""
    raw = data.get(_BODY)
    if not isinstance(raw, bytes):
        return None
    flags = data.get(b"FLAGS", ())
    return FetchedMessage(
        uid=uid,
        raw=raw,
        internaldate=internaldate_to_utc(data.get(b"INTERNALDATE")),
        flags=decode_flags(flags if isinstance(flags, tuple | list) else ()),
    )


def login_refusal_is_temporary(server_text: str) -> bool:
    """Whether a refused LOGIN is the server's own trouble rather than bad credentials.

    RFC 5530's ``[UNAVAILABLE]`` means the authentication backend is down: retrying
    later helps, and the operator must not be told the password is wrong.
    """
    return "[UNAVAILABLE]" in server_text.upper()


def server_reply(exc: BaseException) -> str:
    """The text of an IMAP error, without the ``b'...'`` that imaplib leaves around it."""
    text = str(exc).strip()
    match = _BYTES_REPR.fullmatch(text)
    return match.group("text") if match else text


def describe(exc: BaseException) -> str:
    """A one-line description of an exception that names its kind."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- the source ------------------------------------------------------------------------
