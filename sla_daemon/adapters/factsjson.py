"""``MessageFacts`` to JSON and back, for the state database.

Kept beside the store (not in the core) because the encoding is a storage decision.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson

from sla_daemon.core.model import Address, FolderKind, MessageFacts

# For what orjson refuses. Made once: ``json.dumps`` with options builds a new encoder
# on every call. ASCII with escapes, so a lone surrogate is stored as ``\udc80``.
_ESCAPING_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _address(value: Address | None) -> list[str] | None:
    return None if value is None else [value.email, value.name]


def _addresses(values: tuple[Address, ...]) -> list[list[str]]:
    return [[a.email, a.name] for a in values]


def _from_addresses(values: list[list[str]]) -> tuple[Address, ...]:
    return tuple(Address(email, name) for email, name in values)


def facts_to_json(facts: MessageFacts) -> str:
    """Encode ``facts`` as a compact JSON object."""
    data: dict[str, Any] = {
        "message_id": facts.message_id,
        "arrived_at": facts.arrived_at.isoformat(),
        "subject": facts.subject,
        "sender": _address(facts.sender),
        "reply_to": _addresses(facts.reply_to),
        "to": _addresses(facts.to),
        "cc": _addresses(facts.cc),
        "in_reply_to": facts.in_reply_to,
        "references": list(facts.references),
        "date": facts.date.isoformat() if facts.date else None,
        "headers": [list(pair) for pair in facts.headers],
        "keywords": list(facts.keywords),
        "body_text": facts.body_text,
        "content_type": facts.content_type,
        "mailbox": facts.mailbox,
        "folder": facts.folder,
        "folder_kind": facts.folder_kind.value,
        "synthetic_id": facts.synthetic_id,
    }
    try:
        return orjson.dumps(data).decode()
    except orjson.JSONEncodeError:
        # Text orjson refuses (a lone surrogate, from a broken charset): the standard
        # library writes it as an escape, which ``facts_from_json`` reads back.
        return _ESCAPING_ENCODER.encode(data)


def facts_from_json(text: str) -> MessageFacts:
    """Decode what ``facts_to_json`` wrote."""
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        data = json.loads(text)  # an escaped lone surrogate, which orjson refuses
    sender = data["sender"]
    return MessageFacts(
        message_id=data["message_id"],
        arrived_at=datetime.fromisoformat(data["arrived_at"]),
        subject=data["subject"],
        sender=Address(sender[0], sender[1]) if sender else None,
        reply_to=_from_addresses(data["reply_to"]),
        to=_from_addresses(data["to"]),
        cc=_from_addresses(data["cc"]),
        in_reply_to=data["in_reply_to"],
        references=tuple(data["references"]),
        date=datetime.fromisoformat(data["date"]) if data["date"] else None,
        headers=tuple((k, v) for k, v in data["headers"]),
        keywords=tuple(data["keywords"]),
        body_text=data["body_text"],
        content_type=data["content_type"],
        mailbox=data["mailbox"],
        folder=data["folder"],
        folder_kind=FolderKind(data["folder_kind"]),
        synthetic_id=data["synthetic_id"],
    )
