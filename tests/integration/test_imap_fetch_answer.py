"""The bulk fetch's own FETCH reader against a real Dovecot, beside imapclient's fetch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.policy import SMTP

import pytest

from sla_daemon.adapters.imap_fetch import fetch_answer
from sla_daemon.adapters.imapwire import fetch_items
from tests.conftest import ImapUser
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer

pytestmark = pytest.mark.integration


def test_fetch_answer_equals_imapclients_fetch_of_the_same_items(
    dovecot_server: DovecotServer, imap_user: ImapUser
) -> None:
    """Headers, cut and whole bodies, sizes, dates and flags come back exactly as before.

    The mail holds what a tokenizer could trip on: parentheses, quotes, braces and a
    line that looks like a FETCH response, 8-bit text, a body longer than the limit.
    """
    user = imap_user.username
    when = datetime(2026, 2, 2, 10, 0, 0, tzinfo=timezone(timedelta(hours=-3)))
    tricky = build_mail(
        "tricky@globex.example",
        sender="Client (Globex) <client@globex.example>",
        subject='Quote " and {3} and (parens)',
        at=when,
        body='* 4 FETCH (UID 1 BODY[] {12})\n"quoted" ) ( {0}\nGrüße\n',
    ).as_bytes(policy=SMTP)
    long = build_mail(
        "long@globex.example", sender="c@globex.example", subject="Long", at=when, body="x" * 5000
    ).as_bytes(policy=SMTP)
    uids = dovecot_server.append_many(
        user,
        "INBOX",
        [
            (tricky, when, ("\\Flagged", "$ActionPlan")),
            (long, when + timedelta(minutes=1), ()),
        ],
    )
    client = dovecot_server.connect(user)
    try:
        client.select_folder("INBOX", readonly=True)
        items = fetch_items(1000)
        ours = fetch_answer(client, [*uids, max(uids) + 50], items)
        theirs = client.fetch(uids, list(items))
        assert fetch_answer(client, [], items) == {}
    finally:
        client.logout()
    assert ours == {uid: theirs[uid] for uid in uids}
    first = ours[uids[0]]
    assert first[b"BODY[HEADER]"] + first[b"BODY[TEXT]<0>"] == tricky
    assert set(first[b"FLAGS"]) >= {
        b"\\Flagged",
        b"$ActionPlan",
    }  # and \\Recent, as the session saw it
    assert first[b"INTERNALDATE"] == when
    assert len(ours[uids[1]][b"BODY[TEXT]<0>"]) == 1000
    assert ours[uids[1]][b"RFC822.SIZE"] == len(long)
    assert datetime(2026, 2, 2, 13, 0, tzinfo=UTC) == first[b"INTERNALDATE"]
