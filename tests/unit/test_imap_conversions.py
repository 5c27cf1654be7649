"""The IMAP adapter's pure pieces, on plain values (no server, no sockets)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from sla_daemon.adapters.imap import ImapSource
from sla_daemon.adapters.imapwire import (
    FETCH_ITEMS,
    batched,
    decode_flags,
    describe,
    fetch_items,
    fetched_message,
    internaldate_to_utc,
    login_refusal_is_temporary,
    message_size,
    reports_bye,
    reports_change,
    sent_folders_in,
    server_reply,
    since_search_date,
    uids_after,
)
from sla_daemon.hosts import is_loopback_host

IST = timezone(timedelta(hours=5, minutes=30))


def test_fetch_items_peek_at_the_header_and_the_start_of_the_text() -> None:
    r"""The header and at most max_body_bytes of the text, PEEKed (BODY[...] sets \Seen)."""
    assert fetch_items(262144) == (
        "BODY.PEEK[HEADER]",
        "RFC822.SIZE",
        "INTERNALDATE",
        "FLAGS",
        "BODY.PEEK[TEXT]<0.262144>",
    )
    assert fetch_items(1000)[: len(FETCH_ITEMS)] == FETCH_ITEMS
    assert not [item for item in fetch_items(10) if item.startswith("BODY[")]
    assert "BODY.PEEK[]" not in fetch_items(10)  # never the whole message
    with pytest.raises(ValueError, match="negative"):
        fetch_items(-1)


def test_decode_flags_turns_bytes_into_text_in_order() -> None:
    """Flags from the wire (bytes) and already-decoded ones come back as str, in order."""
    assert decode_flags([b"\\Flagged", "$ActionPlan", b"$WaitingOnClient"]) == (
        "\\Flagged",
        "$ActionPlan",
        "$WaitingOnClient",
    )


def test_decode_flags_drops_the_session_only_recent_flag() -> None:
    r"""The flag \Recent (any case) is dropped: it belongs to the session, not the message."""
    assert decode_flags([b"\\Recent", b"\\Seen", "\\RECENT"]) == ("\\Seen",)
    assert decode_flags([]) == ()


def test_uids_after_drops_the_highest_uid_that_n_star_always_matches() -> None:
    """``UID 8:*`` in a folder whose highest UID is 7 answers 7; it must be dropped."""
    assert uids_after([7], last_uid=7) == []
    assert uids_after([9, 8, 12, 8], last_uid=7) == [8, 9, 12]
    assert uids_after([], last_uid=0) == []


def test_batched_splits_in_order_with_a_short_last_batch() -> None:
    """Batches keep the order, hold at most ``size`` UIDs, and the last may be shorter."""
    assert batched([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    assert batched([1, 2], 2) == [[1, 2]]
    assert batched([], 3) == []


def test_batched_refuses_a_size_below_one() -> None:
    """A batch size of zero would never finish; it is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        batched([1], 0)


def test_internaldate_to_utc_keeps_the_instant_and_sets_utc() -> None:
    """An aware INTERNALDATE in any zone becomes the same instant in UTC."""
    local = datetime(2026, 3, 1, 0, 15, 7, tzinfo=IST)
    converted = internaldate_to_utc(local)
    assert converted == datetime(2026, 2, 28, 18, 45, 7, tzinfo=UTC)
    assert converted is not None and converted.utcoffset() == timedelta(0)


def test_internaldate_to_utc_reads_naive_as_utc_and_ignores_non_dates() -> None:
    """A naive value is taken as UTC; anything that is not a datetime gives None."""
    assert internaldate_to_utc(datetime(2026, 1, 2, 3, 4, 5)) == datetime(
        2026, 1, 2, 3, 4, 5, tzinfo=UTC
    )
    assert internaldate_to_utc(None) is None
    assert internaldate_to_utc(b"01-Jan-2026 00:00:00 +0000") is None


def test_since_search_date_starts_one_utc_day_earlier() -> None:
    """SINCE is day-granular in the server's zone, so the search starts a day early."""
    assert since_search_date(datetime(2026, 5, 10, 0, 30, tzinfo=UTC)) == date(2026, 5, 9)
    # 01:00 on 10 May in +05:30 is still 9 May in UTC.
    assert since_search_date(datetime(2026, 5, 10, 1, 0, tzinfo=IST)) == date(2026, 5, 8)


def test_since_search_date_refuses_a_naive_datetime() -> None:
    """A naive backfill instant is ambiguous and refused."""
    with pytest.raises(ValueError, match="timezone-aware"):
        since_search_date(datetime(2026, 5, 10))


def test_fetched_message_builds_the_record_from_a_fetch_answer() -> None:
    """A FETCH answer becomes a FetchedMessage with raw bytes, UTC date and text flags."""
    answer = {
        b"BODY[HEADER]": b"Subject: hi\r\n\r\n",
        b"BODY[TEXT]<0>": b"body\r\n",
        b"RFC822.SIZE": 23,
        b"INTERNALDATE": datetime(2026, 1, 1, 17, 30, tzinfo=IST),
        b"FLAGS": (b"\\Answered", b"\\Recent", b"$ActionPlan"),
        b"SEQ": 3,
    }
    message = fetched_message(42, answer)
    assert message is not None
    assert message.uid == 42
    assert message.raw == b"Subject: hi\r\n\r\nbody\r\n"
    assert message.internaldate == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert message.flags == ("\\Answered", "$ActionPlan")


def test_fetched_message_without_a_header_is_none() -> None:
    """An answer without the header (e.g. only an unsolicited FLAGS update) gives None."""
    assert fetched_message(1, {b"FLAGS": (b"\\Seen",)}) is None
    assert message_size({b"FLAGS": (b"\\Seen",)}) is None


def test_fetched_message_with_an_empty_or_cut_text() -> None:
    """NIL text gives the header alone; a cut text is kept as cut; the size tells the rest."""
    header = b"Subject: big\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
    empty = fetched_message(1, {b"BODY[HEADER]": header, b"BODY[TEXT]<0>": None})
    assert empty is not None and empty.raw == header
    answer = {b"BODY[HEADER]": header, b"BODY[TEXT]<0>": b"--x\r\nAAAA", b"RFC822.SIZE": 10**8}
    cut = fetched_message(2, answer)
    assert cut is not None and cut.raw == header + b"--x\r\nAAAA"
    assert message_size(answer) == 10**8


def test_reports_change_on_exists_expunge_recent_fetch_and_vanished() -> None:
    """Untagged responses that change a folder count; keep-alives and FLAGS lists do not."""
    assert reports_change([(2, b"EXISTS")])
    assert reports_change([(b"OK", b"Still here"), (5, b"EXPUNGE")])
    assert reports_change([(2, b"RECENT")])
    assert reports_change([(1, b"FETCH", (b"FLAGS", (b"$ActionPlan",)))])
    assert reports_change([(b"VANISHED", b"4:7")])
    assert not reports_change([])
    assert not reports_change([(b"OK", b"Still here")])
    assert not reports_change([(b"FLAGS", (b"\\Seen", b"$ActionPlan"))])


def test_reports_bye_only_on_bye() -> None:
    """Dovecot's shutdown notice is parsed word by word; only BYE means the end."""
    assert reports_bye([(b"BYE", b"Server", b"shutting", b"down.")])
    assert not reports_bye([(b"OK", b"Still here"), (1, b"EXISTS")])
    assert not reports_bye([])


def test_sent_folders_in_a_list_answer_are_those_marked_sent() -> None:
    r"""Gmail's and Outlook's names are found by the \Sent mark alone, in LIST order."""
    listing = [
        ((b"\\HasNoChildren",), b"/", "INBOX"),
        ((b"\\HasNoChildren", b"\\Sent"), b"/", "[Gmail]/Sent Mail"),
        ((b"\\HasNoChildren",), b"/", "Sent"),
        ((b"\\SENT",), b"/", "Sent Items"),
        ((b"\\Drafts",), b"/", "Drafts"),
    ]
    assert sent_folders_in(listing) == ["[Gmail]/Sent Mail", "Sent Items"]
    assert sent_folders_in([]) == []


def test_is_loopback_host_accepts_only_this_machine() -> None:
    """The name localhost and loopback addresses count; names and other addresses do not."""
    assert is_loopback_host("localhost")
    assert is_loopback_host("127.0.0.1")
    assert is_loopback_host("127.8.9.10")
    assert is_loopback_host("::1")
    assert not is_loopback_host("10.0.0.1")
    assert not is_loopback_host("imap.example.com")
    assert not is_loopback_host("localhost.example.com")


def test_login_refusal_is_temporary_for_server_trouble_only() -> None:
    """Refusals for the server's trouble are temporary; bad credentials are not.

    RFC 5530 codes and Gmail's connection limit are temporary; [AUTHENTICATIONFAILED]
    and an uncoded refusal are bad credentials.
    """
    for text in (
        "b'[UNAVAILABLE] Temporary authentication failure.'",
        "b'[LIMIT] Maximum number of connections from user+IP exceeded "
        "(mail_max_userip_connections=10)'",
        "b'[INUSE] Mailbox is locked'",
        "b'[SERVERBUG] Internal error occurred'",
        "b'[ALERT] Too many simultaneous connections. (Failure)'",
    ):
        assert login_refusal_is_temporary(text), text
    assert not login_refusal_is_temporary("b'[AUTHENTICATIONFAILED] Authentication failed.'")
    assert not login_refusal_is_temporary("b'Invalid credentials (Failure)'")


def test_server_reply_unwraps_the_bytes_repr_imaplib_leaves() -> None:
    """A server's refusal reads as the server wrote it, without b'...' around it."""
    refusal = Exception("b'[AUTHENTICATIONFAILED] Authentication failed.'")
    assert server_reply(refusal) == "[AUTHENTICATIONFAILED] Authentication failed."
    assert server_reply(Exception("select failed: no such folder")) == (
        "select failed: no such folder"
    )


def test_describe_names_the_exception_kind() -> None:
    """Descriptions say what kind of failure it was, even without a message."""
    assert describe(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert describe(TimeoutError()) == "TimeoutError"


def _source(**overrides: object) -> ImapSource:
    settings: dict[str, object] = {
        "name": "support",
        "host": "imap.example.com",
        "port": 993,
        "security": "tls",
        "username": "support@example.com",
        "password": "Hunter2-Secret",
        "inbox_folders": ["INBOX"],
        "sent_folders": ["Sent"],
    }
    settings.update(overrides)
    return ImapSource(**settings)  # type: ignore[arg-type]


def test_plaintext_to_a_remote_host_is_refused() -> None:
    """Plaintext (security none) is refused unless the host is loopback (defence in depth)."""
    with pytest.raises(ValueError, match="plaintext"):
        _source(security="none", port=143)
    assert _source(security="none", host="127.0.0.1", port=143).security == "none"


def test_constructor_refuses_unknown_security_and_empty_batches() -> None:
    """A misspelt security mode or a batch size of zero fails at construction."""
    with pytest.raises(ValueError, match="security"):
        _source(security="ssl")
    with pytest.raises(ValueError, match="batch_size"):
        _source(batch_size=0)


def test_constructing_a_source_does_not_connect_and_hides_the_password() -> None:
    """Building a source opens no connection, and its repr never shows the password."""
    source = _source(host="192.0.2.1")  # TEST-NET: a connection attempt would hang
    assert "Hunter2-Secret" not in repr(source)
    assert "192.0.2.1:993" in repr(source)
    source.close()  # nothing to close yet; must not fail
