"""Header values of the notices: what a client wrote, made safe for one header line.

A subject or a name from a client can hold CR/LF, control characters or text that looks
like an encoded word; everything that enters a header of ours passes through here.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from email.header import Header
from email.message import EmailMessage

HEADER_TEXT_LIMIT = 200
"""Longest client-supplied text (in characters) that goes into one header."""

# Reply prefixes of the common mail clients and languages, optionally numbered ("Re[2]:")
# and with a full-width colon as East Asian clients write it.
_REPLY_PREFIX = re.compile(
    r"^\s*(?:re|aw|sv|vs|antw|antwort|odp|ref|réf|rif|ynt|απ|回复|答复|回覆)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:\uff1a]",
    re.IGNORECASE,
)


def sanitize_header_text(text: str, limit: int = HEADER_TEXT_LIMIT) -> str:
    """Make client-supplied text safe for one header value.

    Control characters (CR and LF included) and Unicode line/paragraph separators become
    spaces, lone surrogates left over from undecodable bytes are dropped, runs of
    whitespace collapse to one space, and the result is cut to ``limit`` characters
    (ending in an ellipsis when cut).
    """
    # Only a bounded prefix is looked at: a megabyte-long subject costs no more than a
    # long one (it is cut either way).
    cut = len(text) > 8 * limit
    cleaned = []
    for char in text[: 8 * limit] if cut else text:
        category = unicodedata.category(char)
        if category == "Cs":
            continue
        cleaned.append(" " if category in ("Cc", "Zl", "Zp") else char)
    collapsed = " ".join("".join(cleaned).split())
    if len(collapsed) > limit or cut:
        return collapsed[: limit - 1].rstrip() + "…"
    return collapsed


def notice_message_id(key: str, domain: str) -> str:
    """Return the Message-ID of the notice with outbox key ``key``.

    It depends only on the key, so a notice sent again after a crash carries the same id
    and the recipient's mail client shows it once.
    """
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}.sla@{domain}>"


def reply_subject(subject: str) -> str:
    """Return the subject of a reply: ``Re: <subject>`` unless it already is a reply."""
    clean = sanitize_header_text(subject) or "(no subject)"
    if _REPLY_PREFIX.match(clean):
        return clean
    return f"Re: {clean}"


def message_id_token(raw: str) -> str:
    """A Message-ID from a client, wrapped in angle brackets, with nothing that could fold."""
    inner = "".join(c for c in raw if not c.isspace() and unicodedata.category(c)[0] != "C")
    return f"<{inner.strip('<>')}>"


def set_text_header(message: EmailMessage, name: str, value: str) -> None:
    """Add a free-text header so that it survives the trip through any mail client.

    The email package's own folder of non-ASCII headers sometimes adds or drops spaces
    (and can write empty encoded words); the older ``Header`` encoder round-trips exactly,
    and its ASCII output, already folded, is sent unchanged. Text that merely looks like
    an encoded word (``=?``) is encoded too, so that no client decodes what the client
    wrote.
    """
    if value.isascii() and "=?" not in value:
        message[name] = value
        return
    encoded = Header(value, "utf-8", header_name=name, maxlinelen=78).encode(linesep="\r\n")
    message.set_raw(name, encoded)
