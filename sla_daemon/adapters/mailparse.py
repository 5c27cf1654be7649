"""Raw message bytes to ``MessageFacts``, with mail-parser (import name ``mailparser``).

This is a pure conversion: no I/O, no clock (``now`` comes in as an argument). Any input
either becomes facts or raises ``MalformedMessage`` with a short reason; mail from the
wild is broken in every conceivable way, and one bad message must never stop a sync.
"""

from __future__ import annotations

import email
import email.parser
import email.policy
import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from email.message import Message

from sla_daemon.adapters.mailheader import blank_line, scanned_header
from sla_daemon.adapters.mailtext import (
    decode_header,
    first_message_id,
    html_to_text,
    id_tokens,
    normalise_body,
    parse_addresses,
)
from sla_daemon.adapters.mailtree import (
    HeaderValues,
    ParsedTree,
    content_type_of,
    read_tree,
    utc,
)
from sla_daemon.adapters.mimeleaves import without_leaf_bodies
from sla_daemon.core.model import FolderKind, MessageFacts
from sla_daemon.errors import PermanentError

SELECTED_HEADERS = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "list-post",
    "list-subscribe",
    "list-help",
    "list-owner",
    "mailing-list",
    "x-mlserver",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
    "return-path",
    "x-sla-daemon",
    "x-sla-notice-key",
    "x-sla-action-plan",
    "x-loop",
    "x-mailer",
    "feedback-type",
    "x-failed-recipients",
    "x-autoreply-from",
    "x-mail-autoreply",
    "x-bluebottle-request",
    "x-cr-hashedpuzzle",
    "x-cr-puzzleid",
    # The raw value keeps what the parsed content type loses: the report-type parameter,
    # which tells a delivery report from a feedback report or a read receipt.
    "content-type",
)
"""Header fields kept in ``MessageFacts.headers`` (classification needs them later)."""

_SELECTED = frozenset(SELECTED_HEADERS)

HEADER_VALUE_LIMIT = 1000
"""Characters kept of each selected header value."""

SUBJECT_LIMIT = 2000
"""Characters kept of the subject: ample for any real one, and a megabyte-long subject
would otherwise be stored, indexed and cleaned for every notice."""

SYNTHETIC_ID_DOMAIN = "sla-daemon.invalid"
"""Domain of Message-IDs made up for messages that carry none (RFC 2606 ``.invalid``)."""

# The stdlib parser behind mail-parser holds several copies of a message (about eight
# times its size at peak, measured on a 28 MB attachment), so only a prefix is parsed.
# The body text is nearly always in the first part; attachments come later and are
# never needed, so the budget is a generous multiple of the body limit.
_MIN_BODY_BUDGET = 4 * 1024 * 1024
_BODY_BUDGET_FACTOR = 16
_HEADER_BUDGET = 1024 * 1024

_LINE_END = re.compile(rb"\r\n|\r|\n")
_OBSOLETE_FIELD_NAME = re.compile(rb"(\A|\n|\r)([!-9;-~]+)[ \t]+:")

# Fields that make a header block recognisably mail rather than random "a: b" lines.
_MAIL_FIELDS = frozenset(
    {
        "from",
        "to",
        "cc",
        "sender",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "received",
        "return-path",
        "mime-version",
        "content-type",
        "delivered-to",
    }
)


class MalformedMessage(PermanentError):
    """The bytes cannot be turned into a message; ``reason`` says why, in a short phrase."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_message(
    raw: bytes,
    *,
    mailbox: str,
    folder: str,
    folder_kind: FolderKind,
    internaldate: datetime | None,
    flags: Sequence[str] = (),
    max_body_bytes: int = 262144,
    now: datetime,
    extra_headers: Sequence[str] = (),
) -> MessageFacts:
    """Turn one raw message into ``MessageFacts``.

    ``internaldate`` (the server's arrival time) becomes ``arrived_at``; without it the
    Date header is used, clamped to ``now`` when it lies in the future, and ``now`` when
    there is no usable Date either. A message without a usable Message-ID gets a stable
    one made from a hash of its bytes (``synthetic_id=True``).

    Raises ``MalformedMessage`` when nothing usable can be extracted, and nothing else.
    """
    try:
        return _parse(
            raw,
            mailbox=mailbox,
            folder=folder,
            folder_kind=folder_kind,
            internaldate=internaldate,
            flags=flags,
            max_body_bytes=max_body_bytes,
            now=now,
            extra_headers=extra_headers,
        )
    except MalformedMessage:
        raise
    except Exception as exc:  # the promise to callers: one exception type, with a reason
        raise MalformedMessage(f"unexpected {_describe(exc)}") from exc


def _parse(
    raw: bytes,
    *,
    mailbox: str,
    folder: str,
    folder_kind: FolderKind,
    internaldate: datetime | None,
    flags: Sequence[str],
    max_body_bytes: int,
    now: datetime,
    extra_headers: Sequence[str],
) -> MessageFacts:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MalformedMessage(f"expected bytes, got {type(raw).__name__}")
    raw = bytes(raw)
    if not raw or raw.isspace():  # strip() would copy a 100 MB message to find out
        raise MalformedMessage("empty message")
    parsed = _parse_tree(_prepare(raw, max_body_bytes))
    message = parsed.message
    values = HeaderValues(message)
    names = values.names()
    if not names:
        raise MalformedMessage("no header block (the first line is not a header field)")
    if _MAIL_FIELDS.isdisjoint(names):
        raise MalformedMessage("no mail header fields (no From, To, Subject, Date, ...)")

    # The hint is only ever tried after UTF-8 failed, or for an encoded word whose own
    # charset failed: ASCII headers that cannot hold an encoded word never need it.
    hint = _charset_hint(message) if values.needs_hint else None
    message_id = first_message_id(values.first("message-id"))
    synthetic = message_id is None
    if message_id is None:
        message_id = f"{hashlib.sha256(raw).hexdigest()[:32]}@{SYNTHETIC_ID_DOMAIN}"
    senders = parse_addresses(values.all("from")[:1], hint)
    to = parse_addresses(values.all("to"), hint)
    cc = parse_addresses(values.all("cc"), hint)
    in_reply_to, earlier = _parent_and_earlier(id_tokens(values.first("in-reply-to")))
    references = tuple(
        dict.fromkeys(
            ref for ref in (*earlier, *id_tokens(values.first("references"))) if ref != message_id
        )
    )
    date = parsed.date
    body = parsed.plain if parsed.plain is not None else html_to_text(parsed.html or "")
    return MessageFacts(
        message_id=message_id,
        arrived_at=_arrived_at(internaldate, date, now),
        subject=decode_header((values.first("subject") or "")[: 4 * SUBJECT_LIMIT], hint)[
            :SUBJECT_LIMIT
        ],
        sender=senders[0] if senders else None,
        reply_to=parse_addresses(values.all("reply-to"), hint),
        to=to,
        cc=cc,
        in_reply_to=in_reply_to if in_reply_to != message_id else None,
        references=references,
        date=date,
        headers=_selected_headers(values, extra_headers, hint),
        keywords=tuple(flags),
        body_text=normalise_body(body or "", max_body_bytes),
        content_type=content_type_of(message, values.first("content-type")),
        mailbox=mailbox,
        folder=folder,
        folder_kind=folder_kind,
        synthetic_id=synthetic,
    )


# -- getting a parse tree ----------------------------------------------------------------


def _prepare(raw: bytes, max_body_bytes: int) -> bytes:
    """Return the part of ``raw`` worth parsing: NULs removed, the body cut to a budget.

    NULs carry no meaning in mail and make some codec lookups raise. Blank lines before
    the first header would make the parser read the whole message as a body, and so
    would the obsolete "Name : value" (RFC 5322 section 4.5 says to accept it; the stdlib
    does not), so that space is removed.
    """
    data = raw.replace(b"\0", b"") if b"\0" in raw else raw
    data = data.lstrip(b"\r\n")
    blank = blank_line(data)
    header_end = blank[0] if blank else len(data)
    if header_end > _HEADER_BUDGET:
        data, header_end = _cut_at_line(data, _HEADER_BUDGET) + b"\n\n", _HEADER_BUDGET
    else:
        budget = max(_MIN_BODY_BUDGET, _BODY_BUDGET_FACTOR * max_body_bytes)
        if len(data) - header_end > budget:
            data = _cut_at_line(data, header_end + budget)
    head = data[:header_end]
    if b" :" not in head and b"\t:" not in head:  # no obsolete field name: nothing to do
        return data
    return _OBSOLETE_FIELD_NAME.sub(rb"\1\2:", head) + data[header_end:]


def _cut_at_line(data: bytes, limit: int) -> bytes:
    """Cut ``data`` to at most ``limit`` bytes, after the last complete line if there is one."""
    head = data[:limit]
    ends = [match.end() for match in _LINE_END.finditer(head, max(0, limit - 65536))]
    return head[: ends[-1]] if ends else head


def _parse_tree(data: bytes) -> ParsedTree:
    """Parse with the stdlib, then read date and text parts (``mailtree.read_tree``)."""
    # One stdlib parse, exactly the one mail-parser's ``from_bytes`` makes, handed to it
    # ready-made: should mail-parser fail on the tree, the fallback reuses it.
    try:
        message = message_tree(data, keep_leaf_bodies=False)
    except RecursionError as exc:  # mail-parser's own name for it, as from_bytes gives
        raise MalformedMessage(
            "mail-parser failed: MailParserRecursionError: Message nesting too deep to "
            "parse (possible malicious multipart structure)"
        ) from exc
    except Exception as exc:
        raise MalformedMessage(f"mail-parser failed: {_describe(exc)}") from exc
    return read_tree(message)


def message_tree(data: bytes, *, keep_leaf_bodies: bool = True) -> Message:
    """The tree ``email.message_from_bytes`` builds of ``data`` (compat32), built faster.

    The stdlib's feed parser reads a body line by line, though for a message that is
    neither multipart nor ``message/*`` it only joins the lines again into the payload:
    such a message gets its header block parsed (by ``mailheader.scanned_header`` when
    it is clean) and the rest of the bytes as its payload, exactly as the full parse
    would give it. Any other message, and one whose header block ends before its first
    blank line (a line that is not a header field), is parsed whole; without
    ``keep_leaf_bodies``, a multipart's parts that are not text (attachments) get an
    empty payload instead of theirs (``mimeleaves.without_leaf_bodies``).
    """
    blank = blank_line(data)
    header_end = blank[1] if blank else len(data)
    message = scanned_header(data[: blank[0]]) if blank else None
    clean = message is not None
    if message is None:
        message = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            data[:header_end]
        )
    maintype = message.get_content_maintype()
    if message.get_payload() or maintype in ("multipart", "message"):
        if clean and maintype == "multipart" and not keep_leaf_bodies:
            data = without_leaf_bodies(data, message, header_end)
        return email.message_from_bytes(data, policy=email.policy.compat32)
    message.set_payload(data[header_end:].decode("ascii", "surrogateescape"))
    return message


# -- fields ------------------------------------------------------------------------------


def _selected_headers(
    values: HeaderValues, extra: Sequence[str], hint: str | None
) -> tuple[tuple[str, str], ...]:
    """The first occurrence of each wanted header, decoded and cut to a sane length.

    In the order the fields first appear in the message.
    """
    wanted = _SELECTED | {name.lower() for name in extra} if extra else _SELECTED
    return tuple(
        (name, decode_header(found[0], hint)[:HEADER_VALUE_LIMIT])
        for name, found in values.by_name()
        if name in wanted
    )


def _charset_hint(message: Message) -> str | None:
    """The first charset a text part declares: the best guess for 8-bit header bytes."""
    for index, part in enumerate(message.walk()):
        if index >= 8:  # the top parts say it if anything does; never walk a huge tree
            break
        try:
            charset = part.get_content_charset()
        except Exception:  # a broken Content-Type costs the hint only
            continue
        if charset and charset not in ("us-ascii", "ascii"):
            return charset
    return None


def _parent_and_earlier(tokens: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The parent named by In-Reply-To, and any other ids it names.

    Some clients (exmh, old MH) write ``Message from Name <address> of DATE <id>``: the
    id is the last token, and an earlier one may be a person's address. The last token is
    the parent; the earlier ones are kept as further references, as every threader reads
    them. Which of them is a person we know is the rules' business, not the parser's
    (``core.threads.without_known_people``).
    """
    if not tokens:
        return None, ()
    return tokens[-1], tuple(tokens[:-1])


def _arrived_at(internaldate: datetime | None, date: datetime | None, now: datetime) -> datetime:
    if internaldate is not None:
        return utc(internaldate)
    now = utc(now)
    if date is not None:
        return min(date, now)
    return now


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
