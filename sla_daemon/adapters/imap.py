r"""IMAP mail source: reads a mailbox's inbox and sent folders without changing them.

Folders are opened with EXAMINE and messages fetched with ``BODY.PEEK[HEADER]`` plus the
first ``max_body_bytes`` of ``BODY.PEEK[TEXT]``, so the server never sets ``\Seen``,
nothing is stored, moved or expunged, and a huge attachment is never downloaded.
Progress is remembered as one UID cursor per folder, valid for as long as the folder's
UIDVALIDITY stays the same. Sent folders not named in the configuration are found by
their SPECIAL-USE ``\Sent`` mark (RFC 6154). ``watch`` keeps each folder in IDLE on a
connection of its own (see ``imap_idle``) so that new mail wakes the runner at once.
Flag changes of messages read before (a keyword such as ``$ActionPlan`` set after
sending) are reported as ``flag_updates``, found with CONDSTORE where the server offers
it (see ``imap_flags``).
"""

from __future__ import annotations

import contextlib
import itertools
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Literal

import structlog
from imapclient import IMAPClient
from imapclient.exceptions import (
    IMAPClientAbortError,
    IMAPClientError,
)

from sla_daemon.adapters.imap_connect import ImapLogin, discard
from sla_daemon.adapters.imap_fetch import answers_ahead, fetch_answer, messages_in
from sla_daemon.adapters.imap_flags import (
    FlagUpdates,
    ReportedFlags,
    condstore_enabled,
    flag_updates,
    remember,
)
from sla_daemon.adapters.imap_idle import Backoff, WatchSettings, WatchStarter
from sla_daemon.adapters.imapwire import (
    batched,
    describe,
    fetch_items,
    sent_folders_in,
    since_search_date,
    uids_after,
)
from sla_daemon.adapters.oauth2 import AccessTokens
from sla_daemon.core.model import FolderKind
from sla_daemon.errors import TransientError
from sla_daemon.hosts import is_loopback_host
from sla_daemon.ports import FolderBatch, FolderCursor

Security = Literal["tls", "starttls", "none"]

_log = structlog.get_logger()


def _nothing() -> None:
    """The default ``on_reconnect``: nobody counts."""


class ImapSource:
    r"""A ``MailSource`` that reads one IMAP account's inbox and sent folders.

    Nothing connects until the first ``poll`` (or ``watch``); the polling connection is
    then kept for later polls and dropped (to be made again next time) whenever it fails.

    ``sent_folders=None`` means: find them by SPECIAL-USE ``\Sent`` on first use.
    ``max_body_bytes`` bounds how much of each message body is fetched. ``idle`` turns
    watching on or off; ``idle_renew`` is how often IDLE is re-issued (below the
    29 minutes of RFC 2177), ``idle_check_interval`` how often a watcher looks at its
    stop event, and ``watch_retry_wait`` the (first, longest) wait between reconnects.
    ``use_condstore=False`` never enables CONDSTORE, even where the server offers it;
    ``flag_refresh`` (default 500) is how many of the highest UIDs up to the cursor have
    their flags fetched again on each poll without CONDSTORE (0: none).
    ``on_reconnect`` is called each time a connection is made again after one was lost
    or closed (the polling connection, or a watcher's), e.g. to count reconnects.
    With ``tokens`` every connection logs in by OAuth2 with a fresh enough access token.
    """

    def __init__(
        self,
        *,
        name: str,
        host: str,
        port: int,
        security: Security,
        username: str,
        password: str,
        inbox_folders: Sequence[str],
        sent_folders: Sequence[str] | None,
        timeout: float = 30.0,
        batch_size: int = 200,
        ssl_context: ssl.SSLContext | None = None,
        connect_attempts: int = 3,
        retry_wait: tuple[float, float] = (1.0, 8.0),
        max_body_bytes: int = 256 * 1024,
        idle: bool = True,
        idle_renew: float = 25 * 60.0,
        idle_check_interval: float = 2.0,
        watch_retry_wait: tuple[float, float] = (1.0, 60.0),
        use_condstore: bool = True,
        flag_refresh: int = 500,
        on_reconnect: Callable[[], None] | None = None,
        tokens: AccessTokens | None = None,
    ) -> None:
        if security not in ("tls", "starttls", "none"):
            raise ValueError(f"mailbox {name!r}: unknown security {security!r}")
        if security == "none" and not is_loopback_host(host):
            raise ValueError(
                f"mailbox {name!r}: plaintext IMAP to {host} is refused; "
                "use security tls or starttls (plaintext is allowed to loopback only)"
            )
        if batch_size < 1:
            raise ValueError(f"mailbox {name!r}: batch_size must be at least 1")
        if max_body_bytes < 0:
            raise ValueError(f"mailbox {name!r}: max_body_bytes must not be negative")
        if flag_refresh < 0:
            raise ValueError(f"mailbox {name!r}: flag_refresh must not be negative")
        if not 0 < idle_renew <= 29 * 60:
            raise ValueError(f"mailbox {name!r}: idle_renew must be above 0 and at most 29m")
        Backoff(*watch_retry_wait)  # refuses a nonsensical range now, not in a thread
        self.name = name
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self.inbox_folders = tuple(inbox_folders)
        self._configured_sent = None if sent_folders is None else tuple(sent_folders)
        self._discovered_sent: tuple[str, ...] | None = None
        self._discovery_lock = threading.Lock()
        self.timeout = timeout
        self.batch_size = batch_size
        self._login = ImapLogin(
            name=name,
            host=host,
            port=port,
            security=security,
            username=username,
            password=password,
            timeout=timeout,
            ssl_context=ssl_context,
            connect_attempts=connect_attempts,
            retry_wait=retry_wait,
            tokens=tokens,
        )
        self.max_body_bytes = max_body_bytes
        self.idle = idle
        self.idle_renew = idle_renew
        self._idle_check_interval = idle_check_interval
        self.watch_retry_wait = watch_retry_wait
        self._client: IMAPClient | None = None
        self.watch_threads: list[threading.Thread] = []
        self.use_condstore = use_condstore
        self.flag_refresh = flag_refresh
        self._condstore = False
        self._reported_flags = ReportedFlags()
        self._on_reconnect = on_reconnect or _nothing
        self._polling_connections = 0

    def __repr__(self) -> str:
        # Spelled out so that the password can never reach a log through repr().
        return f"ImapSource(name={self.name!r}, server={self.server!r}, user={self.username!r})"

    @property
    def server(self) -> str:
        """``host:port``, as shown in messages."""
        return f"{self.host}:{self.port}"

    @property
    def sent_folders(self) -> tuple[str, ...] | None:
        """The sent folders as configured or as found; None until they have been looked for."""
        return self._configured_sent if self._configured_sent is not None else self._discovered_sent

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        """Yield batches of messages newer than each folder's cursor (keyed by folder name).

        Inbox folders come first, then sent folders. A folder the server cannot open is
        logged and skipped. Raises ``TransientError`` when the server cannot be reached
        or the connection breaks, and ``AuthenticationError`` when the login is refused.
        """
        if backfill_since.tzinfo is None:
            raise ValueError("backfill_since must be timezone-aware")
        client = self._connected()
        folders = [(folder, FolderKind.INBOX) for folder in self.inbox_folders]
        with self._guard("listing folders"):
            sent = self._sent_folders(client)
        folders += [(folder, FolderKind.SENT) for folder in sent]
        for folder, kind in folders:
            yield from self._poll_folder(client, folder, kind, cursors.get(folder), backfill_since)

    def watch(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Start watching every inbox and sent folder with IDLE; return at once.

        A background thread connects (retrying with backoff until it can or ``stop`` is
        set), checks that the server offers IDLE, finds the sent folders if needed, and
        starts one watcher thread per folder (``watch_threads``). Watchers call ``wake``
        on a change and after every reconnect, and end soon after ``stop`` is set. With
        ``idle=False`` or a server without IDLE nothing is watched (logged once).
        """
        if not self.idle:
            _log.info("imap watch off", mailbox=self.name, reason="idle is false")
            return
        settings = WatchSettings(
            mailbox=self.name,
            server=self.server,
            connect=self._login.connect_once,
            wake=wake,
            stop=stop,
            renew=self.idle_renew,
            check_every=self._idle_check_interval,
            retry_wait=self.watch_retry_wait,
            reconnected=self._on_reconnect,
        )
        starter = WatchStarter(
            settings,
            inbox_folders=self.inbox_folders,
            find_sent_folders=self._sent_folders,
            threads=self.watch_threads,
        )
        thread = threading.Thread(target=starter.run, name=f"imap-watch-{self.name}")
        thread.daemon = True
        thread.start()
        self.watch_threads.append(thread)

    def close(self) -> None:
        """Log out the polling connection (quietly: one already gone is fine).

        Watchers are not affected: they end when their ``stop`` event is set.
        """
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    # -- folders -----------------------------------------------------------------------

    def _sent_folders(self, client: IMAPClient) -> tuple[str, ...]:
        r"""The configured sent folders, or those marked SPECIAL-USE ``\Sent`` (found once)."""
        if self._configured_sent is not None:
            return self._configured_sent
        with self._discovery_lock:
            if self._discovered_sent is None:
                found = tuple(sent_folders_in(client.list_folders()))
                if found:
                    _log.info("imap sent folders found", mailbox=self.name, folders=list(found))
                else:
                    _log.warning(
                        "imap sent folder not found",
                        mailbox=self.name,
                        reason="no folder is marked \\Sent (SPECIAL-USE); set folders.sent",
                    )
                self._discovered_sent = found
            return self._discovered_sent

    def _poll_folder(
        self,
        client: IMAPClient,
        folder: str,
        kind: FolderKind,
        cursor: FolderCursor | None,
        backfill_since: datetime,
    ) -> Iterator[FolderBatch]:
        with self._guard(f"opening folder {folder!r}"):
            try:
                selected = client.select_folder(folder, readonly=True)
            except IMAPClientError as exc:
                if isinstance(exc, IMAPClientAbortError):
                    raise
                _log.warning(
                    "imap folder skipped", mailbox=self.name, folder=folder, reason=str(exc)
                )
                return
        uidvalidity = selected.get(b"UIDVALIDITY")
        if not isinstance(uidvalidity, int):
            _log.warning(
                "imap folder skipped",
                mailbox=self.name,
                folder=folder,
                reason="the server sent no UIDVALIDITY",
            )
            return

        modseq = selected.get(b"HIGHESTMODSEQ") if self._condstore else None
        if not isinstance(modseq, int) or modseq < 1:
            modseq = None  # no CONDSTORE, or NOMODSEQ: this folder keeps no mod-sequences
        reported = self._reported_flags.of(folder, uidvalidity)
        since: datetime | None = None
        updates: FlagUpdates = ()
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            with self._guard(f"searching folder {folder!r}"):
                found = client.search(["UID", f"{cursor.last_uid + 1}:*"])
            uids = uids_after(found, cursor.last_uid)
            updates = flag_updates(
                client,
                mailbox=self.name,
                folder=folder,
                cursor=cursor,
                modseq=modseq,
                reported=reported,
                window=self.flag_refresh,
                guard=self._guard,
            )
            moved = modseq is not None and cursor.highest_modseq not in (None, modseq)
            if not uids and (updates or moved):
                yield FolderBatch(
                    mailbox=self.name,
                    folder=folder,
                    kind=kind,
                    uidvalidity=uidvalidity,
                    last_uid=cursor.last_uid,
                    messages=(),
                    highest_modseq=modseq,
                    flag_updates=updates,
                )
                # Only reached once the batch was taken (stored) by the caller.
                remember(reported, cursor.last_uid, (), updates, self.flag_refresh)
        else:
            if cursor is not None:
                _log.warning(
                    "imap uidvalidity changed, reading folder again from backfill",
                    mailbox=self.name,
                    folder=folder,
                    old_uidvalidity=cursor.uidvalidity,
                    new_uidvalidity=uidvalidity,
                    backfill_since=backfill_since.isoformat(),
                )
            since = backfill_since
            with self._guard(f"searching folder {folder!r}"):
                found = client.search(["SINCE", since_search_date(backfill_since)])
            uids = uids_after(found, 0)

        items = fetch_items(self.max_body_bytes)
        answers = answers_ahead(
            lambda batch: fetch_answer(client, batch, items),
            batched(uids, self.batch_size),
            abandoned=self._abandoned_fetch,
        )
        for number in itertools.count():
            with self._guard(f"fetching from folder {folder!r}"):
                fetched = next(answers, None)
            if fetched is None:
                break
            batch, answer = fetched
            messages = tuple(
                messages_in(answer, batch, mailbox=self.name, folder=folder, since=since)
            )
            batch_updates = updates if number == 0 else ()
            yield FolderBatch(
                mailbox=self.name,
                folder=folder,
                kind=kind,
                uidvalidity=uidvalidity,
                last_uid=batch[-1],
                messages=messages,
                highest_modseq=modseq,
                flag_updates=batch_updates,
            )
            remember(reported, batch[-1], messages, batch_updates, self.flag_refresh)

    # -- connection --------------------------------------------------------------------

    def _abandoned_fetch(self, exc: BaseException) -> None:
        """A fetch ahead failed after the poll stopped: the connection is not used again."""
        reason = f"a batch fetched ahead of use failed: {describe(exc)}"
        _log.info("imap connection dropped", mailbox=self.name, reason=reason)
        self._forget_client()

    def _forget_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            discard(client)

    def _connected(self) -> IMAPClient:
        if self._client is None:
            client = self._client = self._login.connect()
            self._polling_connections += 1
            if self._polling_connections > 1:
                self._on_reconnect()
            self._condstore = False
            self._condstore = condstore_enabled(
                client, mailbox=self.name, wanted=self.use_condstore, guard=self._guard
            )
        return self._client

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn a broken connection into ``TransientError`` and forget the connection."""
        try:
            yield
        except (OSError, IMAPClientError) as exc:
            self._forget_client()
            raise TransientError(
                f"mailbox {self.name!r}: connection to IMAP server {self.server} failed "
                f"while {doing}: {describe(exc)}"
            ) from exc
