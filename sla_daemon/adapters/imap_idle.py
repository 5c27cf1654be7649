r"""Watching IMAP folders with IDLE (RFC 2177) so the runner hears of new mail in seconds.

Each watched folder gets its own thread and its own connection, opened read-only with
EXAMINE and left in IDLE. The connection never fetches anything: when the server reports
a change (EXISTS, EXPUNGE, RECENT, FETCH of flags, VANISHED) the watcher only calls
``wake``, and the runner's next poll reads the folder from its stored UID cursor. A poll
stays the source of truth; a watcher only makes it come sooner.

IDLE is ended and issued again every ``renew`` seconds, well before the 29 minutes after
which RFC 2177 lets a server drop an idle client. A lost connection (``BYE``, a server
restart, a reset, a timeout) is made again with bounded exponential backoff, each retry
logged once; once the folder is open again ``wake`` is called, because mail may have
arrived while nobody was listening.
"""

from __future__ import annotations

import contextlib
import select
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import structlog
import tenacity
from imapclient import IMAPClient

from sla_daemon.adapters.imapwire import describe, reports_bye, reports_change

_log = structlog.get_logger()

Wake = Callable[[], None]
Connect = Callable[[], IMAPClient]


class ConnectionLost(Exception):
    """The server ended the IDLE connection (``BYE``, or it closed the socket)."""


class Backoff:
    """Exponential waits from ``low`` doubling up to ``high``; ``reset()`` starts over.

    A watcher runs for months, so the wait must go back to ``low`` once a connection
    works again, rather than stay at the ceiling reached during some earlier outage.
    """

    def __init__(self, low: float, high: float) -> None:
        if not 0 < low <= high:
            raise ValueError(f"backoff needs 0 < low <= high, got {low}, {high}")
        self.low = low
        self.high = high
        self.failures = 0

    def __call__(self, state: tenacity.RetryCallState | None = None) -> float:
        """The wait before the next attempt (also tenacity's ``wait`` protocol)."""
        self.failures += 1
        return float(min(self.high, self.low * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        """A connection works again: the next failure waits ``low``."""
        self.failures = 0


@dataclass(frozen=True)
class WatchSettings:
    """What every watcher of one mailbox shares."""

    mailbox: str
    server: str
    connect: Connect
    wake: Wake
    stop: threading.Event
    renew: float
    """Seconds between re-issued IDLE commands."""
    check_every: float
    """Seconds between looks at ``stop`` while idling."""
    retry_wait: tuple[float, float]
    """First and longest wait between reconnects."""
    reconnected: Callable[[], None] = field(default=lambda: None)
    """Called when a watcher listens again after its connection was lost."""


class FolderWatcher:
    """Keeps one folder of one mailbox in IDLE until ``stop`` is set."""

    def __init__(self, settings: WatchSettings, folder: str) -> None:
        self.settings = settings
        self.folder = folder
        self._backoff = Backoff(*settings.retry_wait)
        self._interrupted = False

    def run(self) -> None:
        """Watch until ``stop`` is set; never raises (it is a thread's whole life)."""
        retrying = tenacity.Retrying(
            stop=tenacity.stop_when_event_set(self.settings.stop),
            wait=self._backoff,
            sleep=self._sleep,
            retry=tenacity.retry_if_exception_type(Exception),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            retrying(self._session)
        except Exception as exc:
            if not self.settings.stop.is_set():  # tenacity stops retrying only when stopping
                _log.error(
                    "imap watch ended",
                    mailbox=self.settings.mailbox,
                    folder=self.folder,
                    error=describe(exc),
                )
        _log.debug("imap watch stopped", mailbox=self.settings.mailbox, folder=self.folder)

    def _sleep(self, seconds: float) -> None:
        self.settings.stop.wait(seconds)  # a stop ends the wait at once

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        self._interrupted = True
        error = state.outcome.exception() if state.outcome else None
        _log.warning(
            "imap watch failed, retrying",
            mailbox=self.settings.mailbox,
            server=self.settings.server,
            folder=self.folder,
            attempt=self._backoff.failures,
            retry_in_s=round(state.upcoming_sleep, 2),
            error=describe(error) if error else None,
        )

    def _session(self) -> None:
        """One connection: EXAMINE, then IDLE in rounds of ``renew`` seconds."""
        if self.settings.stop.is_set():
            return
        client = self.settings.connect()
        try:
            client.select_folder(self.folder, readonly=True)
            while not self.settings.stop.is_set():
                client.idle()
                self._backoff.reset()
                _log.debug("imap watch idle", mailbox=self.settings.mailbox, folder=self.folder)
                if self._interrupted:
                    # Listening again: whatever arrived meanwhile is read by the next poll.
                    self._interrupted = False
                    _log.info(
                        "imap watch resumed", mailbox=self.settings.mailbox, folder=self.folder
                    )
                    self.settings.reconnected()
                    self.settings.wake()
                self._idle_round(client, time.monotonic() + self.settings.renew)
                _text, responses = client.idle_done()
                if reports_change(responses):
                    self.settings.wake()
        finally:
            _close(client)

    def _idle_round(self, client: IMAPClient, until: float) -> None:
        while not self.settings.stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                return
            responses = client.idle_check(timeout=min(self.settings.check_every, left))
            if reports_bye(responses):
                raise ConnectionLost(f"the server said BYE: {responses!r}")
            if not responses and _readable(client):
                # Either data that came in just after the wait, or the end of the stream.
                responses = client.idle_check(timeout=0)
                if not responses:
                    raise ConnectionLost("the server closed the connection")
            if reports_change(responses):
                _log.debug(
                    "imap watch woke",
                    mailbox=self.settings.mailbox,
                    folder=self.folder,
                    responses=len(responses),
                )
                self.settings.wake()


def _readable(client: IMAPClient) -> bool:
    """Whether the connection's socket has something to read (or is at its end).

    ``idle_check`` swallows the end of the stream and returns an empty list, at once and
    on every later call: a readable socket that yields no response is a closed one.
    Without this check a closed connection would look idle forever.
    """
    try:
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(client.socket().fileno(), select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _close(client: IMAPClient) -> None:
    """Log out, quietly; a connection that is already gone is just shut."""
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):
            client.shutdown()


class WatchStarter:
    """Checks that a server offers IDLE, finds the folders, and starts their watchers.

    Runs in a thread of its own so that ``watch`` returns at once; retries with backoff
    until the server answers or ``stop`` is set. A server without IDLE is logged once
    and left to polling.
    """

    def __init__(
        self,
        settings: WatchSettings,
        *,
        inbox_folders: Sequence[str],
        find_sent_folders: Callable[[IMAPClient], Sequence[str]],
        threads: list[threading.Thread],
    ) -> None:
        self.settings = settings
        self._inbox_folders = tuple(inbox_folders)
        self._find_sent_folders = find_sent_folders
        self._threads = threads

    def run(self) -> None:
        """Start the watchers (or log why not); never raises."""
        backoff = Backoff(*self.settings.retry_wait)
        while not self.settings.stop.is_set():
            try:
                folders = self._folders()
                break
            except Exception as exc:
                wait = backoff()
                _log.warning(
                    "imap watch failed, retrying",
                    mailbox=self.settings.mailbox,
                    server=self.settings.server,
                    attempt=backoff.failures,
                    retry_in_s=wait,
                    error=describe(exc),
                )
                self.settings.stop.wait(wait)
        else:
            return
        if folders is None:
            _log.warning(
                "imap watch off",
                mailbox=self.settings.mailbox,
                server=self.settings.server,
                reason="the server does not offer IDLE; new mail is found by polling",
            )
            return
        for folder in folders:
            watcher = FolderWatcher(self.settings, folder)
            thread = threading.Thread(
                target=watcher.run, name=f"imap-watch-{self.settings.mailbox}-{folder}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        _log.info(
            "imap watching",
            mailbox=self.settings.mailbox,
            folders=folders,
            renew_s=self.settings.renew,
        )
        if backoff.failures:
            self.settings.wake()  # the server is back; a poll that failed meanwhile can run again

    def _folders(self) -> list[str] | None:
        """The folders to watch, or None when the server has no IDLE."""
        client = self.settings.connect()
        try:
            if not client.has_capability("IDLE"):
                return None
            return [*self._inbox_folders, *self._find_sent_folders(client)]
        finally:
            _close(client)
