r"""IMAP mail source: reads a mailbox's inbox and sent folders without changing them.

Folders are opened with EXAMINE and messages fetched with ``BODY.PEEK[]``, so the server
never sets ``\Seen`` and nothing is stored, moved or expunged. Progress is remembered as
one UID cursor per folder, valid for as long as the folder's UIDVALIDITY stays the same.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Literal

import structlog
import tenacity
from imapclient import IMAPClient
from imapclient.exceptions import (
    CapabilityError,
    IMAPClientAbortError,
    IMAPClientError,
    LoginError,
)

from sla_daemon.adapters.imapwire import (
    FETCH_ITEMS,
    batched,
    describe,
    fetched_message,
    login_refusal_is_temporary,
    server_reply,
    since_search_date,
    uids_after,
)
from sla_daemon.core.model import FolderKind
from sla_daemon.errors import AuthenticationError, ConfigError, TransientError
from sla_daemon.hosts import is_loopback_host
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor

Security = Literal["tls", "starttls", "none"]

_log = structlog.get_logger()


class ImapSource:
    """A ``MailSource`` that reads one IMAP account's inbox and sent folders.

    Nothing connects until the first ``poll``; the connection is then kept for later
    polls and dropped (to be made again next time) whenever it fails.
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
        sent_folders: Sequence[str],
        timeout: float = 30.0,
        batch_size: int = 200,
        ssl_context: ssl.SSLContext | None = None,
        connect_attempts: int = 3,
        retry_wait: tuple[float, float] = (1.0, 8.0),
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
        self.name = name
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.inbox_folders = tuple(inbox_folders)
        self.sent_folders = tuple(sent_folders)
        self.timeout = timeout
        self.batch_size = batch_size
        self._ssl_context = ssl_context
        self._connect_attempts = connect_attempts
        self._retry_wait = retry_wait
        self._client: IMAPClient | None = None

    def __repr__(self) -> str:
        # Spelled out so that the password can never reach a log through repr().
        return f"ImapSource(name={self.name!r}, server={self.server!r}, user={self.username!r})"

    @property
    def server(self) -> str:
        """``host:port``, as shown in messages."""
        return f"{self.host}:{self.port}"

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
        folders = [(folder, FolderKind.INBOX) for folder in self.inbox_folders]
        folders += [(folder, FolderKind.SENT) for folder in self.sent_folders]
        client = self._connected()
        for folder, kind in folders:
            yield from self._poll_folder(client, folder, kind, cursors.get(folder), backfill_since)

    def close(self) -> None:
        """Log out (quietly: a connection that is already gone is fine)."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            with contextlib.suppress(Exception):
                client.shutdown()

    # -- folders -----------------------------------------------------------------------

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

        since: datetime | None = None
        if cursor is not None and cursor.uidvalidity == uidvalidity:
            with self._guard(f"searching folder {folder!r}"):
                found = client.search(["UID", f"{cursor.last_uid + 1}:*"])
            uids = uids_after(found, cursor.last_uid)
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

        for batch in batched(uids, self.batch_size):
            with self._guard(f"fetching from folder {folder!r}"):
                answer = client.fetch(batch, list(FETCH_ITEMS))
            messages = self._messages(folder, batch, answer, since)
            yield FolderBatch(
                mailbox=self.name,
                folder=folder,
                kind=kind,
                uidvalidity=uidvalidity,
                last_uid=batch[-1],
                messages=tuple(messages),
            )

    def _messages(
        self,
        folder: str,
        batch: Sequence[int],
        answer: Mapping[int, Mapping[bytes, object]],
        since: datetime | None,
    ) -> list[FetchedMessage]:
        messages = []
        older = 0
        for uid in batch:
            data = answer.get(uid)
            message = fetched_message(uid, data) if data is not None else None
            if message is None:
                # Usually expunged by another client between SEARCH and FETCH.
                reason = "no body in the FETCH answer" if data else "not in the FETCH answer"
                _log.info(
                    "imap message skipped", mailbox=self.name, folder=folder, uid=uid, reason=reason
                )
            elif since and message.internaldate and message.internaldate < since:
                older += 1  # SINCE searched from the day before; see since_search_date
            else:
                messages.append(message)
        if older:
            _log.debug(
                "imap messages before backfill skipped",
                mailbox=self.name,
                folder=folder,
                count=older,
            )
        return messages

    # -- connection --------------------------------------------------------------------

    def _connected(self) -> IMAPClient:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> IMAPClient:
        low, high = self._retry_wait
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._connect_attempts),
            wait=tenacity.wait_exponential(multiplier=low, min=low, max=high),
            retry=tenacity.retry_if_exception_type(TransientError),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._connect_once)
        except TransientError as exc:
            raise TransientError(
                f"{exc} (gave up after {self._connect_attempts} attempts)"
            ) from exc.__cause__

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        _log.warning(
            "imap connect failed, retrying",
            mailbox=self.name,
            server=self.server,
            attempt=state.attempt_number,
            retry_in_s=round(state.upcoming_sleep, 2),
            error=str(error),
        )

    def _connect_once(self) -> IMAPClient:
        client = self._open()
        try:
            client.login(self.username, self._password)
        except LoginError as exc:
            self._discard(client)
            server_text = self._redact(server_reply(exc))
            if login_refusal_is_temporary(server_text):
                raise TransientError(
                    f"mailbox {self.name!r}: IMAP server {self.server} cannot log in "
                    f"user {self.username!r} right now: {server_text}"
                ) from None
            raise AuthenticationError(
                f"mailbox {self.name!r}: IMAP server {self.server} refused the login of "
                f"user {self.username!r} ({server_text}); check the username and password"
            ) from None
        except (OSError, IMAPClientError) as exc:
            self._discard(client)
            raise TransientError(
                f"mailbox {self.name!r}: connection to IMAP server {self.server} failed "
                f"while logging in: {self._redact(describe(exc))}"
            ) from exc
        # Aware datetimes in the server's zone instead of naive local time.
        client.normalise_times = False
        _log.info("imap connected", mailbox=self.name, server=self.server, user=self.username)
        return client

    def _open(self) -> IMAPClient:
        """Connect and, for ``starttls``, switch to TLS; nothing is sent in the clear."""
        try:
            client = IMAPClient(
                self.host,
                port=self.port,
                ssl=self.security == "tls",
                ssl_context=self._tls_context() if self.security == "tls" else None,
                timeout=self.timeout,
            )
        except (OSError, IMAPClientError) as exc:
            raise TransientError(
                f"mailbox {self.name!r}: cannot reach IMAP server {self.server}: {describe(exc)}"
            ) from exc
        if self.security != "starttls":
            return client
        try:
            client.starttls(self._tls_context())
        except CapabilityError as exc:
            self._discard(client)
            raise ConfigError(
                [
                    f"mailbox {self.name!r}: IMAP server {self.server} does not offer "
                    f"STARTTLS ({server_reply(exc)}); use security tls on its TLS port"
                ]
            ) from None
        except (OSError, IMAPClientError) as exc:
            self._discard(client)
            raise TransientError(
                f"mailbox {self.name!r}: TLS with IMAP server {self.server} failed "
                f"(STARTTLS): {describe(exc)}"
            ) from exc
        return client

    def _tls_context(self) -> ssl.SSLContext:
        return self._ssl_context or ssl.create_default_context()

    @contextlib.contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn a broken connection into ``TransientError`` and forget the connection."""
        try:
            yield
        except (OSError, IMAPClientError) as exc:
            client, self._client = self._client, None
            if client is not None:
                self._discard(client)
            raise TransientError(
                f"mailbox {self.name!r}: connection to IMAP server {self.server} failed "
                f"while {doing}: {describe(exc)}"
            ) from exc

    @staticmethod
    def _discard(client: IMAPClient) -> None:
        with contextlib.suppress(Exception):
            client.shutdown()

    def _redact(self, text: str) -> str:
        # Servers do not echo passwords, but a message that reaches an operator's
        # terminal or a log must not depend on that.
        return text.replace(self._password, "***") if self._password else text
