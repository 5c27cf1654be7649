"""Keyword changes in the store, and the pure IMAP conversions behind them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sla_daemon.adapters.imapwire import flag_updates_in, refresh_window
from sla_daemon.adapters.store import Store
from sla_daemon.adapters.store_messages import KeywordChange
from sla_daemon.ports import FolderCursor
from tests.unit.builders import NOW, client_mail


def _store_in(store: Store, folder: str, uid: int, flags: tuple[str, ...]) -> None:
    store.add_location("support", folder, 1, uid, "m1@globex.example")
    store.record_location_keywords("support", folder, 1, [(uid, flags)])


def _keywords(store: Store) -> tuple[str, ...]:
    facts = store.message("m1@globex.example")
    assert facts is not None
    return facts.keywords


def test_cursor_keeps_its_highest_modseq(tmp_path: Path) -> None:
    """The modseq round-trips; a cursor without one stores None."""
    store = Store(tmp_path / "s.sqlite3")
    store.set_cursor("support", "INBOX", FolderCursor(1, 5, 42), NOW)
    store.set_cursor("support", "Sent", FolderCursor(1, 3), NOW)
    assert store.cursors("support") == {
        "INBOX": FolderCursor(1, 5, 42),
        "Sent": FolderCursor(1, 3, None),
    }


def test_keywords_are_the_union_over_the_locations(tmp_path: Path) -> None:
    """A keyword on one copy counts; it goes only when no copy carries it any more."""
    store = Store(tmp_path / "s.sqlite3")
    store.add_message(replace(client_mail("m1", 1), message_id="m1@globex.example"), "c-1", NOW)
    _store_in(store, "INBOX", 4, ())
    _store_in(store, "Sent", 9, ())

    change = store.set_location_keywords("support", "Sent", 1, 9, ("\\Seen", "$ActionPlan"))
    assert change == KeywordChange("m1@globex.example", ("\\Seen", "$ActionPlan"), ())
    assert store.set_location_keywords("support", "INBOX", 1, 4, ("$ActionPlan",)) is None
    assert set(_keywords(store)) == {"\\Seen", "$ActionPlan"}

    store.set_location_keywords("support", "Sent", 1, 9, ())
    assert _keywords(store) == ("$ActionPlan",)
    store.set_location_keywords("support", "INBOX", 1, 4, ())
    assert _keywords(store) == ()


def test_unknown_location_changes_nothing(tmp_path: Path) -> None:
    """A UID never stored (quarantined, before backfill) is no change."""
    store = Store(tmp_path / "s.sqlite3")
    assert store.set_location_keywords("support", "INBOX", 1, 77, ("$ActionPlan",)) is None


def test_locations_of_an_old_uidvalidity_do_not_count(tmp_path: Path) -> None:
    """After a folder was recreated, its copies under the old UIDVALIDITY are stale."""
    store = Store(tmp_path / "s.sqlite3")
    store.add_message(replace(client_mail("m1", 1), message_id="m1@globex.example"), "c-1", NOW)
    store.add_location("support", "INBOX", 1, 3, "m1@globex.example")
    store.record_location_keywords("support", "INBOX", 1, [(3, ("$ActionPlan",))])
    store.add_location("support", "INBOX", 2, 1, "m1@globex.example")
    store.set_cursor("support", "INBOX", FolderCursor(2, 1), NOW)

    store.set_location_keywords("support", "INBOX", 2, 1, ("\\Seen",))
    assert _keywords(store) == ("\\Seen",)


def test_flag_updates_keep_only_the_uids_asked_for() -> None:
    r"""Answers for other keys (unsolicited, by sequence number) are dropped; \Recent too."""
    answer = {
        3: {b"FLAGS": (b"\\Recent", b"$ActionPlan"), b"MODSEQ": (9,)},
        1: {b"FLAGS": ()},
        8: {b"FLAGS": (b"\\Seen",)},
        5: {b"SEQ": 2},
    }
    assert flag_updates_in(answer, [5, 3, 1]) == ((1, ()), (3, ("$ActionPlan",)))


def test_refresh_window_is_bounded() -> None:
    """At most ``size`` UIDs, ending at the cursor, never below 1."""
    assert refresh_window(1000, 3) == [998, 999, 1000]
    assert refresh_window(2, 500) == [1, 2]
    assert refresh_window(5, 0) == []
