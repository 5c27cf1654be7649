"""Turning raw header values and body fragments of mail into clean text.

Mail in the wild carries undeclared 8-bit bytes, charsets Python does not know and
encoded words that break the rules. Everything here degrades instead of failing: a
charset that cannot be used falls back to UTF-8 and then to Latin-1, which maps every
byte, so each function returns text for any input.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import re
from collections.abc import Iterable
from email.message import Message
from functools import lru_cache
from html import unescape
from html.parser import HTMLParser

from sla_daemon.adapters.mailforms import common_addresses
from sla_daemon.core.model import Address

# The encoded text may be folded or hold spaces: against RFC 2047, but common enough
# (long subjects folded mid-word by broken encoders) to be worth decoding.
_ENCODED_WORD = re.compile(rb"=\?([^?\s]+)\?([QqBb])\?((?:[^?\r\n]|(?:\r\n|\r|\n)[ \t])*?)\?=")
_FOLD = re.compile(rb"(?:\r\n|\r|\n)[ \t]+")
_B64_IGNORED = re.compile(rb"\s+")

# Labels mapped to the superset their senders actually use (as browsers do), plus a
# few names Python does not know.
_CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "shift_jis": "cp932",
    "x-sjis": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}

# Lone surrogates cannot be stored or encoded as UTF-8; control characters other than
# tab and newline only garble logs and templates.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_UNSAFE_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F])
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ID_TOKEN = re.compile(r"<([^<>]*)>")
_MAX_ID_LENGTH = 998  # the RFC 5322 line limit; anything longer is garbage, not an id
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# An unquoted display name holding an "@" right before an angle-addr, as in
# "bob@x.example <bob@x.example>": the stdlib (before 3.13) reads two addresses there.
_BARE_ADDRESS_PHRASE = re.compile(r'(^|,)(\s*)([^,"<>()\\]*@[^,"<>()\\]*?)(\s*<)')


def decode_bytes(data: bytes, *charsets: str | None) -> str:
    """Decode ``data`` with the first of ``charsets`` that works, else UTF-8, else Latin-1.

    Latin-1 maps every byte, so this never fails; unknown or misspelt charset names are
    skipped rather than trusted.
    """
    for charset in (*charsets, "utf-8"):
        if not charset:
            continue
        name = charset.strip().strip('"').lower()
        try:
            return scrub(data.decode(_CHARSET_ALIASES.get(name, name)))
        # ValueError: a charset name with a NUL in it; LookupError also covers
        # codecs such as "base64" that are not text encodings.
        except (LookupError, UnicodeError, ValueError):
            continue
    return scrub(data.decode("latin-1"))


def scrub(text: str) -> str:
    """Replace lone surrogates and drop control characters other than tab and newline."""
    if text.isprintable():  # neither a surrogate nor any control character
        return text
    if text.isascii():  # no surrogates; bytes.translate finds the rest faster than a regex
        data = text.encode("ascii")
        kept = data.translate(None, _UNSAFE_BYTES)
        return text if len(kept) == len(data) else kept.decode("ascii")
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return _UNSAFE.sub("", text)


def collapse(text: str) -> str:
    """Fold every run of whitespace (line folding included) into one space."""
    return " ".join(text.split())


def raw_header_bytes(value: object) -> bytes:
    """Return a header value as the parser stored it, as the original bytes.

    The stdlib keeps undecodable 8-bit header bytes as surrogate escapes; turning them
    back into bytes lets ``decode_bytes`` pick the charset instead of dropping them.
    """
    text = value if isinstance(value, str) else str(value)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def decode_header(value: object, hint: str | None = None) -> str:
    """Decode a raw header value: RFC 2047 encoded words, 8-bit bytes, folding.

    Undeclared 8-bit bytes are read as UTF-8 (RFC 6532), else in the ``hint`` charset
    (the message's body charset: old clients used it for headers too), else Latin-1.
    """
    if isinstance(value, str) and value.isascii() and "=?" not in value:
        return collapse(scrub(value))  # what the general path gives such a value
    return collapse(decode_words(raw_header_bytes(value), hint))


def decode_words(data: bytes, hint: str | None = None) -> str:
    """Decode the RFC 2047 encoded words in ``data``; the rest as ``decode_bytes`` would.

    Works on bytes because senders put raw 8-bit text inside encoded words too, meaning
    the word's charset. Adjacent words in one charset are joined before decoding, since
    senders split multi-byte characters across them; whitespace between encoded words is
    dropped as RFC 2047 requires. A word that cannot be decoded is kept as it is.
    """
    if b"=?" not in data:
        return decode_bytes(data, "utf-8", hint)
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    position = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset, hint))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(data):
        between = data[position : match.start()]
        if between and not (pending_charset is not None and between.isspace()):
            flush()
            out.append(decode_bytes(between, "utf-8", hint))
        position = match.end()
        charset = decode_bytes(match.group(1)).split("*", 1)[0].lower()
        decoded = _word_bytes(match.group(2), match.group(3))
        if decoded is None:
            flush()
            out.append(decode_bytes(match.group(0), "utf-8", hint))
            continue
        if charset != pending_charset:
            flush()
            pending_charset = charset
        pending.extend(decoded)
    flush()
    out.append(decode_bytes(data[position:], "utf-8", hint))
    return "".join(out)


def _word_bytes(encoding: bytes, payload: bytes) -> bytes | None:
    payload = _FOLD.sub(b"", payload)
    try:
        if encoding in b"Bb":
            payload = _B64_IGNORED.sub(b"", payload)
            return base64.b64decode(payload + b"=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload, header=True)
    except binascii.Error:
        return None


def normalise_id(value: str) -> str | None:
    """Return a message id without brackets and whitespace, or None when it is unusable."""
    ident = "".join(value.split()).strip("<>")
    return ident if 0 < len(ident) <= _MAX_ID_LENGTH else None


def id_tokens(value: str | None) -> list[str]:
    """Every ``<...>`` token of a header value, normalised; text around them is ignored."""
    if not value:
        return []
    text = _header_text(value)
    return [ident for m in _ID_TOKEN.finditer(text) if (ident := normalise_id(m.group(1)))]


def _header_text(value: str) -> str:
    """A raw header value as text, undecoded words and all."""
    if value.isascii():
        return scrub(value)  # what decoding the value's bytes gives
    return scrub(decode_bytes(raw_header_bytes(value)))


def first_message_id(value: str | None) -> str | None:
    """The first ``<...>`` token, else the bare value when it is a single word."""
    tokens = id_tokens(value)
    if tokens:
        return tokens[0]
    if not value:
        return None
    text = _header_text(value).strip()
    if not text or any(c.isspace() for c in text):
        return None
    return normalise_id(text)


def parse_addresses(values: Iterable[str], hint: str | None) -> tuple[Address, ...]:
    """Parse address header values (every occurrence); entries without ``@`` are skipped.

    The stdlib splits the raw list (8-bit bytes still escaped) and the names are decoded
    afterwards, quoted or not, because clients quote encoded words although RFC 2047
    says not to. mail-parser's own address lists keep such names encoded and escape
    8-bit bytes: against imap_tools' expectations they match 440 of 452 address fields,
    this 450 (the other two are cases imap_tools itself gets wrong).
    """
    result: list[Address] = []
    for value in values:
        if len(value) <= _CACHED_FIELD_LENGTH:
            result.extend(_cached_address_field(value, hint))
        else:
            result.extend(_address_field(value, hint))
    return tuple(result)


def _address_field(value: str, hint: str | None) -> tuple[Address, ...]:
    """The addresses of one field value."""
    common = common_addresses(value)
    if common is not None:
        return tuple(Address(email=email, name=name) for email, name in common)
    # Unfold first: a line break inside a quoted name makes the stdlib give up.
    text = _BARE_ADDRESS_PHRASE.sub(r'\1\2"\3"\4', _LINE_BREAK.sub("", value))
    try:
        pairs = email.utils.getaddresses([text])
    except Exception:  # an address list the stdlib chokes on costs that field only
        return ()
    result: list[Address] = []
    for name, addr in pairs:
        text = collapse(decode_bytes(raw_header_bytes(addr))).lower()
        if "@" in text:
            result.append(Address(email=text, name=decode_header(name, hint)))
    return tuple(result)


# The same few addresses recur in nearly every message (the team's, the clients'), and
# the stdlib's address parser is slow; short values only, so the cache stays small.
_CACHED_FIELD_LENGTH = 512
_cached_address_field = lru_cache(maxsize=4096)(_address_field)


def first_text_part(message: Message, subtype: str) -> str | None:
    """Return the first ``text/<subtype>`` part that is not an attachment, decoded."""
    for part in message.walk():
        if part.is_multipart() or part.get_content_type() != f"text/{subtype}":
            continue
        if (part.get_content_disposition() or "") == "attachment":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            return decode_bytes(payload, part.get_content_charset())
    return None


def normalise_body(text: str, max_bytes: int) -> str:
    r"""Normalise line endings to ``\n`` and cut to at most ``max_bytes`` of UTF-8.

    The cut falls on a character boundary, so the result is always valid text.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            text = text.replace("\r", "\n")
    text = scrub(text)
    if len(text) * 4 <= max_bytes:  # cannot exceed the limit: skip the encode
        return text
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max(max_bytes, 0)].decode("utf-8", "ignore")


_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
        "ul",
    ]
)
_HIDDEN_TAGS = frozenset({"script", "style", "head", "title", "template"})
_WHITESPACE = re.compile(r"\s+")
_SPACES = re.compile(r"[ \t\f\v\r]+")
_BLANK_LINES = re.compile(r"\n(?:\s*\n)+")


class _TextExtractor(HTMLParser):
    """Collects the visible text of an HTML document, with block elements as lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self._pre += tag == "pre"
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            if tag == "pre":
                self._pre = max(0, self._pre - 1)
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            # Outside <pre>, a line break in the source is just a space in the page.
            self.parts.append(data if self._pre else _WHITESPACE.sub(" ", data))


def html_to_text(html: str) -> str:
    """Return the visible text of ``html``: tags dropped, block elements on own lines."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception:  # the stdlib parser is lenient, but never trust that on mail
        return unescape(re.sub(r"<[^>]*>", " ", html))
    text = "".join(extractor.parts).replace("\xa0", " ")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n", "\n".join(lines)).strip()
