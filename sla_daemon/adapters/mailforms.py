"""Quick readings of the common forms of Date and address fields, or None.

Nearly every Date is ``Tue, 24 Nov 2026 15:00:00 +0000`` and nearly every address
field is ``Name <a@b>``, ``a@b`` or a comma list of them; the general parsers
(mail-parser's ``parse_mail_date``, the stdlib's ``getaddresses``) spend most of their
time on the forms that are not. Each function here reads only its strict common form
and answers None for anything else, which then goes to the general parser; the unit
tests check against the general parsers that a reading here is always theirs.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBERS = {name: number for number, name in enumerate(_MONTHS, 1)}
_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?([0-9]{1,2}) (" + "|".join(_MONTHS) + r") "
    r"([0-9]{4}) ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))? (?:([+-])([0-9]{2})([0-9]{2})|GMT|UTC?)"
    r"(?: \([A-Za-z]+\))?"
)
# Zones further than this from UTC are mail-parser's to read: the daemon's reading
# of them (``mailtree._mailparser_date``) shifts them back.
_MAX_OFFSET_MINUTES = 14 * 60

_ATOM = r"[A-Za-z0-9'_-]+\.?"
_NAME = rf"{_ATOM}(?:[ \t]+{_ATOM})*"
_WORD = r"[A-Za-z0-9_+-]+"
_ADDRESS = rf"{_WORD}(?:\.{_WORD})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_ENTRY = re.compile(rf"[ \t]*(?:({_NAME})[ \t]*<({_ADDRESS})>|<({_ADDRESS})>|({_ADDRESS}))[ \t]*")


def common_date(value: str) -> datetime | None:
    """The UTC time of an RFC 5322 date in its usual form, or None for any other form.

    The usual form: an optional English weekday and comma, day, English month, a
    four-digit year from 1900, time with or without seconds, a numeric zone of at most
    14 hours or GMT/UT/UTC, and an optional comment of letters such as ``(UTC)``, each
    separated by one space. A weekday that does not match the date is ignored, as
    mail-parser ignores it.
    """
    match = _DATE.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    offset = 0
    if sign is not None:
        if int(zone_minutes) > 59:
            return None
        offset = int(zone_hours) * 60 + int(zone_minutes)
        offset = -offset if sign == "-" else offset
        if abs(offset) > _MAX_OFFSET_MINUTES:
            return None
    if int(year) < 1900 or int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        return None
    try:
        local = datetime(
            int(year),
            _MONTH_NUMBERS[month],
            int(day),
            int(hour),
            int(minute),
            int(second or 0),
            tzinfo=UTC,
        )
    except ValueError:  # a day the month does not have
        return None
    return local - timedelta(minutes=offset)


def common_addresses(value: str) -> list[tuple[str, str]] | None:
    """``(email, name)`` of each entry of a simple address list, or None for any other.

    Simple: ASCII only, entries separated by commas, each ``Name <local@domain>``,
    ``<local@domain>`` or ``local@domain``, where the name is words of letters, digits,
    ``'``, ``_`` and ``-`` (each maybe ending in a dot) and the address has no quotes,
    comments or other specials. The email comes lower-cased and the name with single
    spaces, as ``mailtext.parse_addresses`` gives them.
    """
    if not value.isascii():
        return None
    result: list[tuple[str, str]] = []
    for entry in value.split(","):
        match = _ENTRY.fullmatch(entry)
        if match is None:
            return None
        name, named, angled, bare = match.groups()
        if name is not None:
            result.append((named.lower(), " ".join(name.split())))
        else:
            result.append(((angled or bare).lower(), ""))
    return result
