from __future__ import annotations

import hashlib
import tracemalloc
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla_daemon.adapters.mailparse import (
    HEADER_VALUE_LIMIT,
    SYNTHETIC_ID_DOMAIN,
    MalformedMessage,
    parse_message,
)
from sla_daemon.core.model import Address, FolderKind, MessageFacts
from sla_daemon.errors import PermanentError

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def parse(raw: bytes, **overrides: Any) -> MessageFacts:
    """``parse_message`` with the arguments of an inbox message fetched at ``NOW``."""
    arguments: dict[str, Any] = {
        "mailbox": "support",
        "folder": "INBOX",
        "folder_kind": FolderKind.INBOX,
        "internaldate": None,
        "now": NOW,
    }
    arguments.update(overrides)
    return parse_message(raw, **arguments)


def mail(*headers: str | bytes, body: bytes = b"Hello\r\n", eol: bytes = b"\r\n") -> bytes:
    """A raw message from header lines and a body, with ``eol`` line endings."""
    lines = [h.encode() if isinstance(h, str) else h for h in headers]
    return eol.join(lines) + eol + eol + body


BASIC = (
    "From: Client <client@globex.example>",
    "To: support@acme.example",
    "Subject: Printer on fire",
    "Date: Tue, 24 Nov 2026 09:30:00 +0100",
)


# -- message ids -------------------------------------------------------------------------


def test_message_id_loses_brackets_and_surrounding_whitespace_but_keeps_case() -> None:
    """``Message-ID:   <Abc.1@Host.Example>  `` becomes ``Abc.1@Host.Example``."""
    facts = parse(mail(*BASIC, "Message-ID:   <Abc.1@Host.Example>  "))
    assert facts.message_id == "Abc.1@Host.Example"
    assert facts.synthetic_id is False


def test_message_id_is_the_first_bracketed_token_when_garbage_surrounds_it() -> None:
    """Comments and trailing text around the id are ignored; the first ``<...>`` wins."""
    facts = parse(mail(*BASIC, "Message-ID: (from the web form) <form-7@globex.example> <x@y>"))
    assert facts.message_id == "form-7@globex.example"


def test_message_id_without_brackets_is_used_when_it_is_one_word() -> None:
    """A bare ``Message-ID: 1234@host`` is accepted as the id."""
    assert parse(mail(*BASIC, "Message-ID:  1234@host.example ")).message_id == "1234@host.example"


def test_folded_message_id_is_joined_without_whitespace() -> None:
    """A Message-ID folded inside its brackets is read as one id, without the fold."""
    facts = parse(mail(*BASIC, "Message-ID: <very-long-id\r\n .part2@host.example>"))
    assert facts.message_id == "very-long-id.part2@host.example"


def test_missing_message_id_gets_a_stable_synthetic_one_from_the_bytes() -> None:
    """Without a Message-ID the id is a hash of the raw bytes at ``sla-daemon.invalid``.

    Parsing the same bytes twice gives the same id; other bytes give another one.
    """
    raw = mail(*BASIC)
    first, again = parse(raw), parse(raw, now=NOW + timedelta(days=3))
    other = parse(mail(*BASIC, body=b"Another body\r\n"))
    expected = f"{hashlib.sha256(raw).hexdigest()[:32]}@{SYNTHETIC_ID_DOMAIN}"
    assert first.message_id == again.message_id == expected
    assert first.synthetic_id is True
    assert other.message_id != first.message_id


@pytest.mark.parametrize("value", ["<>", "two words", "", "<   >"])
def test_unusable_message_id_counts_as_missing(value: str) -> None:
    """Empty brackets, several words or an empty value give a synthetic id."""
    facts = parse(mail(*BASIC, f"Message-ID: {value}"))
    assert facts.synthetic_id is True
    assert facts.message_id.endswith("@" + SYNTHETIC_ID_DOMAIN)


def test_overlong_message_id_counts_as_missing() -> None:
    """An id longer than a mail line may be (998) is garbage, not an identity."""
    facts = parse(mail(*BASIC, "Message-ID: <" + "x" * 1200 + "@host>"))
    assert facts.synthetic_id is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a@b.example> (Bob's message of Tue, 24 Nov 2026)", "a@b.example"),
        ("Your message of December 31 1999 <bar@baz.com>", "bar@baz.com"),
        ("  <ref-1>  ", "ref-1"),
        ("<first@x> <second@x>", "second@x"),
        (
            "Message from Bob <bob@example.net> of Tue, 24 Nov 2026 <id-1@example.net>",
            "id-1@example.net",
        ),
        ("<200704070053.46646.other.person@example", None),
        ("mumble", None),
        ("", None),
    ],
)
def test_in_reply_to_is_the_last_bracketed_token(value: str, expected: str | None) -> None:
    """In-Reply-To tolerates text around the id (the last ``<...>``); none gives None."""
    facts = parse(mail(*BASIC, "Message-ID: <me@acme.example>", f"In-Reply-To: {value}"))
    assert facts.in_reply_to == expected


def test_earlier_in_reply_to_tokens_become_references() -> None:
    """Other ids in In-Reply-To are kept as references, an address among them too.

    Whether such an address is a person the SLA cares about is for the rules to say
    (``core.threads.without_known_people``); the parser reports what the header names.
    """
    value = "<older@x> Message from Bob <bob@example.net> of Tue <parent@x>"
    facts = parse(
        mail(
            *BASIC, "Cc: bob@example.net", "Message-ID: <me@acme.example>", f"In-Reply-To: {value}"
        )
    )
    assert facts.in_reply_to == "parent@x"
    assert facts.references[:2] == ("older@x", "bob@example.net")


def test_in_reply_to_naming_the_message_itself_is_dropped() -> None:
    """A message cannot answer itself: an In-Reply-To equal to its own id is None."""
    facts = parse(mail(*BASIC, "Message-ID: <me@x>", "In-Reply-To: <me@x>"))
    assert facts.in_reply_to is None


def test_references_keep_order_drop_duplicates_garbage_and_the_own_id() -> None:
    """Every ``<...>`` token of References, in order, once each, without the own id."""
    facts = parse(
        mail(
            *BASIC,
            "Message-ID: <own@acme.example>",
            "References: <root@x.example> (garbage)\r\n <b@x.example>\r\n\t<root@x.example>"
            " <own@acme.example><c@x.example> trailing",
        )
    )
    assert facts.references == ("root@x.example", "b@x.example", "c@x.example")


def test_missing_references_and_in_reply_to_are_empty() -> None:
    """A first message has no In-Reply-To and an empty References tuple."""
    facts = parse(mail(*BASIC))
    assert facts.in_reply_to is None
    assert facts.references == ()


# -- subject and addresses ----------------------------------------------------------------


def test_rfc2047_subject_is_decoded_and_folding_collapsed() -> None:
    """B and Q encoded words are decoded; folds and runs of spaces become one space."""
    facts = parse(
        mail(
            "From: a@b.example",
            "Subject: Re:  =?utf-8?B?SMOpbGxv?=\r\n =?ISO-8859-1?Q?_w=F6rld?=\r\n\t  again",
        )
    )
    assert facts.subject == "Re: Héllo wörld again"


def test_multibyte_character_split_across_encoded_words_is_rejoined() -> None:
    """Adjacent encoded words in one charset are joined before decoding (é split in two)."""
    facts = parse(mail("From: a@b.example", "Subject: =?utf-8?Q?caf=C3?= =?utf-8?Q?=A9?="))
    assert facts.subject == "café"


def test_space_between_text_and_encoded_word_is_kept() -> None:
    """Only whitespace between two encoded words is dropped (RFC 2047 section 6.2)."""
    facts = parse(mail("From: a@b.example", "Subject: Re: TEST =?utf-8?Q?t=C3=A9st?= done"))
    assert facts.subject == "Re: TEST tést done"


def test_undecodable_encoded_word_is_kept_literally() -> None:
    """An encoded word whose base64 is broken stays as written instead of failing."""
    facts = parse(mail("From: a@b.example", "Subject: =?utf-8?B?a?= ok"))
    assert facts.subject == "=?utf-8?B?a?= ok"


def test_addresses_are_lower_cased_with_decoded_names() -> None:
    """From, To, Cc and Reply-To become Addresses: email lower-cased, names decoded."""
    facts = parse(
        mail(
            "From: =?iso-8859-1?q?J=F6rg_M=FCller?= <Joerg@Example.COM>",
            'To: "Bob, Jr" <Bob@X.example>, carol@y.example',
            'Cc: "=?utf-8?B?SsO2cmc=?=" <j@z.example>',
            "Reply-To: Help Desk <HELP@acme.example>",
            "Subject: x",
        )
    )
    assert facts.sender == Address("joerg@example.com", "Jörg Müller")
    assert facts.to == (Address("bob@x.example", "Bob, Jr"), Address("carol@y.example", ""))
    assert facts.cc == (Address("j@z.example", "Jörg"),)
    assert facts.reply_to == (Address("help@acme.example", "Help Desk"),)
    assert facts.recipients == facts.to + facts.cc


def test_address_entries_without_at_sign_are_skipped() -> None:
    """Groups, bare words and ``MAILER-DAEMON`` without a domain are not addresses."""
    facts = parse(
        mail(
            "From: Mail Delivery Subsystem <MAILER-DAEMON>",
            "To: undisclosed-recipients:;, nobody, real@x.example",
            "Subject: x",
        )
    )
    assert facts.sender is None
    assert facts.to == (Address("real@x.example", ""),)


def test_repeated_to_headers_are_merged() -> None:
    """Recipients of a second To field are not lost."""
    facts = parse(mail("From: a@b.example", "To: one@x.example", "To: two@x.example"))
    assert [a.email for a in facts.to] == ["one@x.example", "two@x.example"]


def test_garbage_address_headers_do_not_fail_the_message() -> None:
    """Unbalanced quotes and brackets cost the address, never the message."""
    facts = parse(mail('From: "unterminated <a@b', "To: <<<>>>,,,@,", "Subject: still here"))
    assert facts.subject == "still here"


def test_eight_bit_header_bytes_are_read_as_utf8_then_latin1() -> None:
    """Raw 8-bit headers: UTF-8 when valid (RFC 6532), else Latin-1 rather than dropped."""
    utf8 = parse(mail(b"From: Ren\xc3\xa9 <rene@x.example>", b"Subject: Caf\xc3\xa9"))
    latin = parse(mail(b"From: Ren\xe9 <rene@x.example>", b"Subject: Caf\xe9"))
    assert utf8.subject == latin.subject == "Café"
    assert utf8.sender == latin.sender == Address("rene@x.example", "René")


def test_eight_bit_header_bytes_use_the_body_charset_as_a_hint() -> None:
    """Old clients wrote headers in the body's charset: GB2312 bytes decode as Chinese."""
    subject = "邮件传输失败".encode("gb2312")
    facts = parse(
        mail(
            b"From: a@b.example",
            b"Subject: " + subject,
            b"Content-Type: text/plain; charset=gb2312",
        )
    )
    assert facts.subject == "邮件传输失败"


@pytest.mark.parametrize("word", ["=?x-unknown?Q?Gr=C3=BC=C3=9Fe?=", "=?x-unknown?Q?Gr=FC=DFe?="])
def test_encoded_word_with_unknown_charset_falls_back_to_utf8_then_latin1(word: str) -> None:
    """``=?x-unknown?...`` is decoded as UTF-8, else Latin-1, instead of left encoded."""
    facts = parse(mail("From: a@b.example", f"Subject: {word}"))
    assert facts.subject == "Grüße"


# -- dates and arrival -------------------------------------------------------------------


def test_date_header_becomes_aware_utc() -> None:
    """``Tue, 24 Nov 2026 09:30:00 +0100`` is 08:30 UTC, and arrival falls back to it."""
    facts = parse(mail(*BASIC))
    assert facts.date == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)
    assert facts.date.utcoffset() == timedelta(0)
    assert facts.arrived_at == facts.date


@pytest.mark.parametrize("value", [None, "not a date", "Tue, 99 Foo 2026 99:99:99 +0100"])
def test_missing_or_unparseable_date_is_none_and_arrival_is_now(value: str | None) -> None:
    """No usable Date: ``date`` is None and ``arrived_at`` is ``now``."""
    headers = ["From: a@b.example", "Subject: x"]
    if value is not None:
        headers.append(f"Date: {value}")
    facts = parse(mail(*headers))
    assert facts.date is None
    assert facts.arrived_at == NOW


def test_future_date_is_clamped_to_now_for_arrival_but_kept_as_date() -> None:
    """A Date in the future cannot be the arrival time; ``date`` still says what it said."""
    facts = parse(mail("From: a@b.example", "Date: Fri, 01 Jan 2077 00:00:00 +0000"))
    assert facts.date == datetime(2077, 1, 1, tzinfo=UTC)
    assert facts.arrived_at == NOW


def test_internaldate_is_preferred_and_converted_to_utc() -> None:
    """The server's arrival time beats the Date header, and comes out in UTC."""
    internal = datetime(2026, 11, 24, 10, 0, tzinfo=timezone(timedelta(hours=-5)))
    facts = parse(mail(*BASIC), internaldate=internal)
    assert facts.arrived_at == datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
    assert facts.arrived_at.tzinfo == UTC
    assert facts.date == datetime(2026, 11, 24, 8, 30, tzinfo=UTC)


def test_date_with_an_impossible_zone_is_read_as_utc() -> None:
    """``-3000`` is no zone on Earth: the wall-clock time is kept instead of 30 hours off."""
    facts = parse(mail("From: a@b.example", "Date: Tue, 30 Nov 1999 23:56:33 -3000 (CST)"))
    assert facts.date == datetime(1999, 11, 30, 23, 56, 33, tzinfo=UTC)


def test_date_without_zone_is_read_as_utc() -> None:
    """A Date with no zone (common from old clients) is taken as UTC rather than dropped."""
    facts = parse(mail("From: a@b.example", "Date: Wed, 3 May 2006 00:09:22"))
    assert facts.date == datetime(2006, 5, 3, 0, 9, 22, tzinfo=UTC)


# -- selected headers, flags, content type ------------------------------------------------


def test_only_selected_headers_are_kept_lower_cased_first_occurrence() -> None:
    """Classification headers are kept, decoded and unfolded; Received and co. are not."""
    facts = parse(
        mail(
            *BASIC,
            "Received: from mx.example by mx2.example",
            "Auto-Submitted: auto-replied",
            "Precedence: bulk",
            "PRECEDENCE: junk",
            "List-Id: Globex users\r\n <users.globex.example>",
            "X-Mailer: =?utf-8?Q?Caf=C3=A9_Mail?=",
            "Return-Path: <>",
            "X-Unrelated: 1",
        )
    )
    assert facts.headers == (
        ("auto-submitted", "auto-replied"),
        ("precedence", "bulk"),
        ("list-id", "Globex users <users.globex.example>"),
        ("x-mailer", "Café Mail"),
        ("return-path", "<>"),
    )
    assert facts.header("Precedence") == "bulk"


def test_extra_headers_are_kept_too() -> None:
    """Headers named in ``extra_headers`` (any case) join the selection."""
    facts = parse(mail(*BASIC, "X-Ticket: 42", "X-Other: no"), extra_headers=["X-TICKET"])
    assert facts.headers == (("x-ticket", "42"),)


def test_selected_header_values_are_truncated() -> None:
    """A selected header value is cut to ``HEADER_VALUE_LIMIT`` characters."""
    facts = parse(mail(*BASIC, "X-Mailer: " + "m" * 5000))
    assert facts.header("x-mailer") == "m" * HEADER_VALUE_LIMIT


def test_flags_source_and_folder_are_copied() -> None:
    """Keywords are the flags as given; mailbox, folder and folder kind are copied."""
    facts = parse(
        mail(*BASIC),
        flags=["\\Seen", "$ActionPlan"],
        mailbox="team",
        folder="Sent",
        folder_kind=FolderKind.SENT,
    )
    assert facts.keywords == ("\\Seen", "$ActionPlan")
    assert (facts.mailbox, facts.folder, facts.folder_kind) == ("team", "Sent", FolderKind.SENT)


def test_content_type_is_the_lower_cased_top_level_type() -> None:
    """A DSN's ``Multipart/Report; report-type=...`` is ``multipart/report``."""
    raw = mail(
        *BASIC,
        'Content-Type: Multipart/Report; report-type=delivery-status; boundary="b"',
        body=b"--b\r\nContent-Type: text/plain\r\n\r\nUndeliverable\r\n--b--\r\n",
    )
    facts = parse(raw)
    assert facts.content_type == "multipart/report"
    assert facts.body_text.startswith("Undeliverable")


def test_message_without_content_type_is_text_plain() -> None:
    """The MIME default applies when Content-Type is missing."""
    assert parse(mail(*BASIC)).content_type == "text/plain"


# -- body ---------------------------------------------------------------------------------

ALTERNATIVE = b"""--alt\r
Content-Type: text/html; charset=utf-8\r
\r
<p>HTML version</p>\r
--alt\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: quoted-printable\r
\r
Plain version =C3=A9\r
Action plan: restart\r
--alt--\r
"""


def test_multipart_alternative_uses_the_text_plain_part() -> None:
    """Even when the HTML part comes first, body_text is the decoded text/plain part."""
    raw = mail(*BASIC, 'Content-Type: multipart/alternative; boundary="alt"', body=ALTERNATIVE)
    assert parse(raw).body_text == "Plain version é\nAction plan: restart"


def test_html_only_message_is_converted_to_text() -> None:
    """Without text/plain, the HTML part is turned into text.

    Tags go, block elements get their own lines, entities are unescaped, and scripts
    and styles are dropped.
    """
    html = (
        b"<html><head><style>p {color: red}</style><title>T</title></head><body>"
        b"<p>Dear&nbsp;team,\r\nthe <b>printer</b> &amp; fax</p><div>line one<br>line two</div>"
        b"<script>alert(1)</script><ul><li>first</li><li>second</li></ul></body></html>"
    )
    facts = parse(mail(*BASIC, "Content-Type: text/html; charset=utf-8", body=html))
    assert facts.body_text == ("Dear team, the printer & fax\nline one\nline two\nfirst\nsecond")


def test_body_is_truncated_on_a_utf8_character_boundary() -> None:
    """At most ``max_body_bytes`` of UTF-8, never half a character."""
    body = ("é" * 100).encode()
    facts = parse(
        mail(*BASIC, "Content-Type: text/plain; charset=utf-8", body=body), max_body_bytes=51
    )
    assert facts.body_text == "é" * 25
    assert len(facts.body_text.encode()) <= 51


def test_cr_only_line_endings_are_understood() -> None:
    r"""Old Mac mail with bare CR line endings parses, and the body uses ``\n``."""
    raw = mail(*BASIC, "Message-ID: <mac@x.example>", body=b"one\rtwo\r", eol=b"\r")
    facts = parse(raw)
    assert facts.message_id == "mac@x.example"
    assert facts.subject == "Printer on fire"
    assert facts.body_text == "one\ntwo\n"


def test_mixed_line_endings_are_normalised() -> None:
    r"""CRLF, LF and CR in one message all become ``\n``."""
    raw = b"From: a@b.example\r\nSubject: mixed\nTo: c@d.example\r\rone\r\ntwo\nthree\rfour"
    facts = parse(raw)
    assert facts.subject == "mixed"
    assert facts.to == (Address("c@d.example", ""),)
    assert facts.body_text == "one\ntwo\nthree\nfour"


def test_broken_body_charset_falls_back_to_utf8() -> None:
    """A misspelt charset (``uft-8``) does not cost the text."""
    raw = mail(*BASIC, 'Content-Type: text/plain; charset="uft-8"', body="Grüße\r\n".encode())
    assert parse(raw).body_text == "Grüße\n"


def test_nul_bytes_are_dropped_everywhere() -> None:
    """NULs in headers, in a charset name and in the body neither fail nor survive."""
    raw = mail(
        b"From: a@b.example",
        b"Subject: nul\x00 here",
        b'Content-Type: text/plain; charset="utf-8\x00"',
        body=b"bo\x00dy\r\n",
    )
    facts = parse(raw)
    assert facts.subject == "nul here"
    assert facts.body_text == "body\n"


def test_huge_header_block_is_parsed() -> None:
    """A 300 KB header block (long Received chains, spam) still yields the facts."""
    junk = [f"X-Junk-{i}: {'j' * 290}" for i in range(1000)]
    facts = parse(mail(*BASIC, *junk, "Message-ID: <after-junk@x.example>"))
    assert facts.message_id == "after-junk@x.example"
    assert facts.subject == "Printer on fire"


def test_header_block_over_a_megabyte_is_cut_rather_than_refused() -> None:
    """Headers past the first MiB are dropped; the ones before them still count."""
    junk = [f"X-Junk-{i}: {'j' * 990}" for i in range(2000)]
    facts = parse(mail(*BASIC, "Message-ID: <early@x.example>", *junk, "X-Mailer: late"))
    assert facts.message_id == "early@x.example"
    assert facts.subject == "Printer on fire"
    assert facts.header("x-mailer") is None


def _with_attachment(text_first: bool, size: int) -> bytes:
    text = b"--m\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
    attachment = (
        b"--m\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="big.bin"\r\n\r\n'
        + b"QUJD" * (size // 4)
        + b"\r\n"
    )
    parts = text + attachment if text_first else attachment + text
    return mail(*BASIC, 'Content-Type: multipart/mixed; boundary="m"', body=parts + b"--m--\r\n")


def test_huge_attachment_is_not_parsed_but_the_text_is_kept() -> None:
    """Only a prefix of a huge message is parsed: the text is kept, memory stays low.

    Parsing all of a 20 MB message peaks at about 150 MB in the stdlib parser.
    """
    raw = _with_attachment(text_first=True, size=20 * 1024 * 1024)
    tracemalloc.start()
    try:
        facts = parse(raw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert facts.body_text == "See attached."
    assert peak < 60 * 1024 * 1024


def test_text_after_a_huge_attachment_is_beyond_the_parse_budget() -> None:
    """The price of the budget: a text part after 20 MB of attachment is not seen.

    A smaller attachment in the same place is read through.
    """
    assert parse(_with_attachment(text_first=False, size=20 * 1024 * 1024)).body_text == ""
    assert parse(_with_attachment(text_first=False, size=1024 * 1024)).body_text == "See attached."


def test_missing_closing_boundary_still_parses() -> None:
    """Multipart without its closing boundary (SendGrid bounces) yields facts."""
    raw = mail(
        *BASIC,
        'Content-Type: multipart/mixed; boundary="ab"',
        body=(
            b'--ab\r\nContent-Type: multipart/mixed; boundary="a"\r\n\r\n'
            b"--ab\r\nContent-Type: text/plain\r\n\r\nBounce text\r\n--a\r\n"
        ),
    )
    facts = parse(raw)
    assert facts.subject == "Printer on fire"
    assert facts.content_type == "multipart/mixed"


def test_obsolete_space_before_colon_and_leading_blank_lines_are_accepted() -> None:
    """``Subject  : x`` (RFC 5322 obsolete syntax) and blank lines before the headers."""
    facts = parse(b"\r\n\r\nFrom  : a@b.example\r\nSubject   : Saying Hello\r\n\r\nHi\r\n")
    assert facts.subject == "Saying Hello"
    assert facts.sender == Address("a@b.example", "")


def test_mbox_from_line_at_the_start_is_ignored() -> None:
    """A leading ``From sender date`` envelope line is not a header and not a problem."""
    facts = parse(b"From a@b.example Tue Nov 24 09:30:00 2026\n" + mail(*BASIC, eol=b"\n"))
    assert facts.subject == "Printer on fire"


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "phrase"),
    [
        (b"", "empty"),
        (b" \r\n\t\r\n", "empty"),
        (b"Lorem ipsum dolor sit amet,\nconsectetur adipiscing elit.\n", "no header block"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00binary", "no header block"),
        (b"a: b\nc: d\n\nbody", "no mail header fields"),
    ],
)
def test_input_without_anything_usable_raises_malformed_with_a_reason(
    raw: bytes, phrase: str
) -> None:
    """Empty input, plain text and binary files are refused with a readable reason."""
    with pytest.raises(MalformedMessage) as caught:
        parse(raw)
    assert phrase in caught.value.reason
    assert str(caught.value) == caught.value.reason


def test_malformed_message_is_a_permanent_error() -> None:
    """Callers record and skip it like any other permanent failure."""
    assert issubclass(MalformedMessage, PermanentError)


def test_non_bytes_input_raises_malformed() -> None:
    """Even a caller's type mistake comes back as MalformedMessage, never TypeError."""
    with pytest.raises(MalformedMessage, match="expected bytes"):
        parse("From: a@b.example\n\nbody")  # type: ignore[arg-type]


# -- properties ---------------------------------------------------------------------------


def _check_any(raw: bytes, max_body_bytes: int = 262144) -> None:
    try:
        facts = parse(raw, max_body_bytes=max_body_bytes)
    except MalformedMessage as exc:
        assert exc.reason.strip()
        return
    assert facts.message_id
    assert facts.arrived_at.tzinfo is not None
    assert "\r" not in facts.body_text
    assert len(facts.body_text.encode("utf-8")) <= max(max_body_bytes, 0)
    # Everything must survive UTF-8 storage: no lone surrogates anywhere.
    for text in (facts.subject, facts.body_text, facts.message_id, *facts.references):
        text.encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_give_facts_or_malformed_only(raw: bytes) -> None:
    """Whatever the bytes, the only exception is MalformedMessage with a reason."""
    _check_any(raw)


_HEADER_NAMES = st.sampled_from(
    [
        "From",
        "To",
        "Cc",
        "Subject",
        "Date",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "MIME-Version",
        "Reply-To",
        "List-Id",
    ]
)
_HEADER_VALUES = st.one_of(
    st.binary(max_size=80),
    st.sampled_from(
        [
            b"<a@b>",
            b"=?utf-8?B?w6k=?=",
            b"=?bogus?Q?=FF?=",
            b"multipart/mixed; boundary=x",
            b"text/html; charset=x-unknown",
            b"base64",
            b"quoted-printable",
            b'"a" <b@c>, d',
            b"Tue, 24 Nov 2026 09:30:00 +0100",
            b"\xff\xfe",
            b"\x00",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), min_size=1, max_size=12),
    body=st.binary(max_size=500),
    eol=st.sampled_from([b"\r\n", b"\n", b"\r"]),
    max_body_bytes=st.integers(min_value=0, max_value=300),
)
def test_header_shaped_garbage_gives_facts_or_malformed_only(
    headers: list[tuple[str, bytes]], body: bytes, eol: bytes, max_body_bytes: int
) -> None:
    """Plausible header names with hostile values and bodies never raise anything else."""
    raw = eol.join(name.encode() + b": " + value for name, value in headers) + eol + eol + body
    _check_any(raw, max_body_bytes)
