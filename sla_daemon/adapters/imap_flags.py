"""Flag changes of messages the IMAP source has already read, with or without CONDSTORE.

A keyword such as ``$ActionPlan`` set after a message was read is reported as a
``flag_updates`` entry of the folder's next batch. Where the server offers CONDSTORE
(RFC 7162) the polling connection enables it (``condstore_enabled``), each folder's
HIGHESTMODSEQ goes into its cursor, and only the messages changed since are fetched
(``UID SEARCH MODSEQ`` then ``UID FETCH (FLAGS) (CHANGEDSINCE)``), nothing at all when
HIGHESTMODSEQ did not move. Without it, the flags of the ``flag_refresh`` highest UIDs up
to the cursor are fetched on every poll and those that differ from what the source last
reported (``ReportedFlags``) are returned: a bounded cost, and older messages' changes go
unseen. The connection itself and its failures stay with ``imap.ImapSource``; the
functions here take its guard, which turns a broken connection into ``TransientError``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import structlog
from imapclient import IMAPClient

from sla_daemon.adapters.imapwire import flag_updates_in, refresh_window
from sla_daemon.ports import FetchedMessage, FolderCursor

Guard = Callable[[str], AbstractContextManager[None]]
"""The source's guard: ``with guard("doing something"):`` around each server command."""

FlagUpdates = tuple[tuple[int, tuple[str, ...]], ...]
"""``(uid, flags)`` for each message whose flags changed."""

_log = structlog.get_logger()


def condstore_enabled(client: IMAPClient, *, mailbox: str, wanted: bool, guard: Guard) -> bool:
    """Enable CONDSTORE on a fresh connection where wanted and offered; whether it is on."""
    enabled = False
    if wanted:
        with guard("enabling CONDSTORE"):
            offered = client.capabilities()
            if b"CONDSTORE" in offered and b"ENABLE" in offered:
                enabled = b"CONDSTORE" in client.enable("CONDSTORE")
    if not enabled:
        _log.debug(
            "imap condstore off",
            mailbox=mailbox,
            reason="turned off" if not wanted else "not offered",
        )
    return enabled


class ReportedFlags:
    """The flags last reported for each folder's highest UIDs, per UIDVALIDITY."""

    def __init__(self) -> None:
        # Per folder: (UIDVALIDITY, uid -> the flags last reported) for the highest UIDs.
        self._folders: dict[str, tuple[int, dict[int, tuple[str, ...]]]] = {}

    def of(self, folder: str, uidvalidity: int) -> dict[int, tuple[str, ...]]:
        """The flags last reported for ``folder``'s highest UIDs (emptied on a new UIDVALIDITY)."""
        held = self._folders.get(folder)
        if held is None or held[0] != uidvalidity:
            held = (uidvalidity, {})
            self._folders[folder] = held
        return held[1]


def remember(
    reported: dict[int, tuple[str, ...]],
    last_uid: int,
    messages: Sequence[FetchedMessage],
    updates: Sequence[tuple[int, tuple[str, ...]]],
    window: int,
) -> None:
    """Note the flags a stored batch carried; keep only the refresh window's UIDs."""
    for message in messages:
        reported[message.uid] = message.flags
    reported.update(updates)
    floor = last_uid - window
    for uid in [uid for uid in reported if uid <= floor]:
        del reported[uid]


def flag_updates(
    client: IMAPClient,
    *,
    mailbox: str,
    folder: str,
    cursor: FolderCursor,
    modseq: int | None,
    reported: dict[int, tuple[str, ...]],
    window: int,
    guard: Guard,
) -> FlagUpdates:
    """The new flags of messages up to the cursor that changed since it was stored.

    With a mod-sequence on both sides, those changed since the cursor's; otherwise
    the ``window`` highest UIDs, less those whose flags were reported as they
    are now (a mod-sequence above the server's, as after a restore, counts as none).
    """
    if cursor.last_uid < 1:
        return ()
    last = cursor.last_uid
    changed_since = cursor.highest_modseq
    if modseq is not None and changed_since is not None and changed_since <= modseq:
        if changed_since == modseq:
            return ()
        # imapclient keeps only the answers for the UIDs it was given, so the
        # changed ones are searched first rather than fetching CHANGEDSINCE over 1:n.
        with guard(f"searching folder {folder!r} for flag changes"):
            found = client.search(["MODSEQ", str(changed_since + 1), "UID", f"1:{last}"])
        uids = [uid for uid in found if uid <= last]
        if not uids:
            return ()
        with guard(f"fetching flags from folder {folder!r}"):
            answer = client.fetch(uids, ["FLAGS"], modifiers=[f"CHANGEDSINCE {changed_since}"])
        updates = flag_updates_in(answer, uids)
    else:
        uids = refresh_window(last, window)
        if not uids:
            return ()
        with guard(f"fetching flags from folder {folder!r}"):
            answer = client.fetch(uids, ["FLAGS"])
        updates = tuple(
            (uid, flags)
            for uid, flags in flag_updates_in(answer, uids)
            if reported.get(uid) != flags
        )
    if updates:
        _log.debug(
            "imap flags changed",
            mailbox=mailbox,
            folder=folder,
            count=len(updates),
            condstore=changed_since is not None and modseq is not None,
        )
    return updates
