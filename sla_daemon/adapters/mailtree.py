"""What a parsed message tree says: its date, its first text parts and its raw headers.

``mailparse`` parses the bytes into a stdlib ``Message`` and hands the tree here.
``read_tree`` runs mail-parser on it, in a lighter form that skips the work whose results
the daemon never reads (``LeanMailParser``), for the date and the first plain and HTML
parts; when mail-parser fails on a tree the stdlib reads fine, both come from the stdlib
instead, so a library bug never costs a message. Most mail is one plain text part: for
it, ``read_single_text_part`` gives mail-parser's reading without running mail-parser,
and the corpus tests pin that both agree. Dates come out as aware UTC datetimes, an
impossible zone offset is ignored, and the Date header is read leniently when
mail-parser refuses it. ``HeaderValues`` gives the raw header values by name, the way
``mailparse`` reads every other field. Pure: no I/O and no clock.
"""

from __future__ import annotations

import email.utils
import unicodedata
from collections.abc import Iterable, KeysView
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message

import mailparser
from mailparser.dates import parse_mail_date

from sla_daemon.adapters.mailforms import common_date
from sla_daemon.adapters.mailtext import (
    collapse,
    decode_bytes,
    first_text_part,
    raw_header_bytes,
)

_MAX_ZONE_HOURS = 14


@dataclass(frozen=True)
class ParsedTree:
    """What the parser produced: the header tree plus its own readings of date and body."""

    message: Message
    date: datetime | None
    plain: str | None
    html: str | None


def read_tree(message: Message) -> ParsedTree:
    """Read date and text parts with mail-parser; with the stdlib alone when it fails.

    mail-parser raises on some real mail that the stdlib reads fine (for instance an
    AttributeError on multiparts whose closing boundary is missing, as in SendGrid
    bounces); losing such a message to a library bug would be worse than the fallback.
    """
    return read_single_text_part(message) or read_tree_fully(message)


def read_tree_fully(message: Message) -> ParsedTree:
    """``read_tree`` without the shortcut for one text part: mail-parser always runs."""
    try:
        parsed = LeanMailParser(message)
    except Exception:
        return ParsedTree(
            message=message,
            date=_stdlib_date(message),
            plain=first_text_part(message, "plain"),
            html=first_text_part(message, "html"),
        )
    date = _mailparser_date(parsed.date, parsed.timezone)
    plain, html = parsed.text_plain, parsed.text_html
    return ParsedTree(
        message=message,
        date=date if date else _stdlib_date(message),
        plain=str(plain[0]) if plain else None,
        html=str(html[0]) if html else None,
    )


_MIME_FIELDS = frozenset(
    {"content-type", "content-disposition", "content-id", "content-transfer-encoding"}
)
_PART_NAMING = frozenset({"content-disposition", "content-id"})
_UNENCODED = ("", "7bit", "8bit")


def read_single_text_part(message: Message) -> ParsedTree | None:
    """mail-parser's date and text of a message that is one unnamed text part, or None.

    Walking the parts, building its MIME header views and parsing the Received chain
    cost more than the rest of a message's parse, and for a message that is a single
    ``text/plain`` or ``text/html`` part without defects, disposition, Content-ID or
    name, with ASCII MIME fields, mail-parser's reading comes down to the steps below
    (its ``_decode_body_payload`` and the first Date's ``parse_mail_date``). Any other
    message gives None and goes to mail-parser.
    """
    if message.defects or message.is_multipart():
        return None
    date_value: str | None = None
    mime: dict[str, str] = {}  # the first value of each MIME field
    for name, value in message.raw_items():
        field = name.lower()
        if field in _MIME_FIELDS:
            if field in _PART_NAMING or not str(value).isascii():
                return None  # mail-parser reads MIME fields through a UTF-8 view
            mime.setdefault(field, str(value))
        elif field == "date" and date_value is None:
            date_value = value
    subtype = content_type_of(message, mime.get("content-type"))
    if subtype not in ("text/plain", "text/html"):
        return None
    # Parameters are only parsed where one could be a name (an attachment).
    if "name" in mime.get("content-type", "").lower() and message.get_param("name") is not None:
        return None
    text = _single_part_text(message, mime.get("content-transfer-encoding", ""))
    date = None
    if date_value is not None:
        date = common_date(date_value)
        if date is None:
            result = parse_mail_date(date_value)
            date = _mailparser_date(result.value, result.timezone)
    return ParsedTree(
        message=message,
        date=date if date else _stdlib_date(message),
        plain=text if text and subtype == "text/plain" else None,
        html=text if text and subtype == "text/html" else None,
    )


def content_type_of(message: Message, value: str | None) -> str:
    """``message.get_content_type()``, given the first raw Content-Type value if any."""
    if value is None:
        return message.get_default_type()
    if not value.isascii():  # the stdlib reads 8-bit bytes as a Header object
        return message.get_content_type()
    content_type = value.partition(";")[0].strip().lower()
    return content_type if content_type.count("/") == 1 else "text/plain"


def _single_part_text(message: Message, encoding: str) -> str:
    """The text mail-parser decodes from a single part without transfer-encoding quirks.

    ``encoding`` is the first Content-Transfer-Encoding value, or "" when there is none.
    """
    encoding = encoding.strip().lower()
    if encoding in _UNENCODED:
        # Unencoded and valid text (no byte the parser kept as a surrogate): kept as is.
        # The stored payload, as mail-parser reads it: get_payload() would already have
        # decoded 8-bit bytes with a guessed charset.
        raw_text = getattr(message, "_payload", None)
        if isinstance(raw_text, str) and not _has_surrogates(raw_text):
            return raw_text
    payload = message.get_payload(decode=True)
    if not isinstance(payload, bytes) or not payload:
        return ""
    charset = message.get_content_charset("utf-8")
    try:
        text = payload.decode(charset)
        text.encode("utf-8")  # some codecs give lone surrogates, which are not text
    except (LookupError, UnicodeError):
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:
            text = payload.decode("utf-8", "replace")
    return unicodedata.normalize("NFC", text)  # as mail-parser's ported_string does


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class LeanMailParser(mailparser.MailParser):  # type: ignore[misc]
    """mail-parser without the parts of its work the daemon never reads.

    The daemon uses the tree, the date and the text parts. Two steps of mail-parser's
    ``parse`` produce nothing of those and cost about half of it: the mail dicts
    (``mail``, ``mail_partial``; built twice, every header decoded again each time) and
    the header index with the address lists parsed from it (``from``, ``to``, ...),
    which ``mailtext.parse_addresses`` reads its own way. Both only feed attributes the
    daemon does not touch (header attributes such as ``parsed.to`` read as empty here);
    the corpus tests pin that dates and text parts come out as before.
    """

    def _build_header_index(self) -> dict[str, list[str]]:
        # Empty, so that ``_reset`` parses no address list.
        return {}

    def _make_mail(self, complete: bool = True) -> dict[str, object]:
        return {}


def _mailparser_date(value: object, zone: object) -> datetime | None:
    """mail-parser's UTC date, with an impossible zone offset ignored.

    It accepts any two-digit hour offset, so "-3000" shifts a date by 30 hours; no
    real zone is further than 14 hours from UTC, and such a time is read as UTC instead.
    """
    if not isinstance(value, datetime):
        return None
    try:
        hours = float(str(zone))
    except ValueError:
        hours = 0.0
    if abs(hours) > _MAX_ZONE_HOURS:
        value += timedelta(hours=hours)
    return utc(value)


def _stdlib_date(message: Message) -> datetime | None:
    """Read the Date header with the stdlib's more lenient parser.

    mail-parser rejects dates RFC 5322 forbids but clients still write (no zone, no
    space before the zone); a date that is off by a zone beats none for ordering.
    """
    value = HeaderValues(message).first("date")
    if value is None:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(collapse(decode_bytes(raw_header_bytes(value))))
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.year < 1900:  # a year like 0500 is a typo, not a date (mail-parser agrees)
        return None
    return utc(parsed)


class HeaderValues:
    """Raw header values by lower-cased name, in message order."""

    def __init__(self, message: Message) -> None:
        self._values: dict[str, list[str]] = {}
        self.needs_hint = False
        """Whether a value holds 8-bit text or may hold an encoded word once unquoted."""
        for name, value in message.raw_items():
            text = str(value)
            self._values.setdefault(name.lower(), []).append(text)
            if not self.needs_hint and (not text.isascii() or ("=" in text and "?" in text)):
                self.needs_hint = True

    def names(self) -> KeysView[str]:
        """The lower-cased names, in the order they first appear."""
        return self._values.keys()

    def by_name(self) -> Iterable[tuple[str, list[str]]]:
        """Each lower-cased name with its values, in the order names first appear."""
        return self._values.items()

    def first(self, name: str) -> str | None:
        """The first value of ``name`` (lower-cased), or None when there is none."""
        values = self._values.get(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` (lower-cased), in message order."""
        return self._values.get(name, [])


def utc(value: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
