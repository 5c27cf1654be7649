"""ImapSource.watch: IDLE wake-ups, reconnects after a restart, and watching switched off.

Waiting for a wake-up uses generous timeouts; no test asserts how fast anything is.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from sla_daemon.adapters.imap import ImapSource
from tests.conftest import ImapUser
from tests.servers.dovecot import DovecotServer
from tests.servers.sources import plain_imap_source

pytestmark = pytest.mark.integration

WAIT = 20.0  # seconds; generous, only reached when something is broken
Logs = list[dict[str, Any]]


def mail(number: int) -> bytes:
    """A small message with a unique Message-ID."""
    return (
        f"From: Client <client@globex.example>\r\n"
        f"Subject: Watched {number}\r\n"
        f"Message-ID: <watch-{number}-{os.urandom(4).hex()}@globex.example>\r\n"
        f"\r\n"
        f"Body {number}.\r\n"
    ).encode()


def now() -> datetime:
    """The current time to the second (INTERNALDATE has no fractions)."""
    return datetime.now(UTC).replace(microsecond=0)


def source_for(server: DovecotServer, username: str, password: str, **overrides: Any) -> ImapSource:
    """A plaintext source for ``username`` on ``server``; keywords override settings."""
    return plain_imap_source(
        server.host,
        server.port,
        username,
        password,
        **{"idle_check_interval": 0.2, "watch_retry_wait": (0.05, 0.5), **overrides},
    )


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds; fail after ``WAIT`` seconds."""
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def idle_count(logs: Logs, folder: str, mailbox: str = "support") -> int:
    """How often a watcher of ``mailbox``/``folder`` has entered IDLE so far."""
    return sum(
        1
        for entry in list(logs)
        if entry["event"] == "imap watch idle"
        and entry["folder"] == folder
        and entry["mailbox"] == mailbox
    )


class Waker:
    """Counts ``wake`` calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.calls = 0

    def __call__(self) -> None:
        """Count the call and release a waiting test."""
        self.calls += 1
        self.event.set()

    def wait(self) -> bool:
        """Wait for the next call (True) or give up after ``WAIT`` seconds."""
        woke = self.event.wait(WAIT)
        self.event.clear()
        return woke


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    """The event that ends every watcher started in the test."""
    event = threading.Event()
    yield event
    event.set()


def stop_and_join(source: ImapSource, stop: threading.Event) -> None:
    """Set ``stop`` and wait for every one of the source's watcher threads to end."""
    stop.set()
    for thread in list(source.watch_threads):
        thread.join(WAIT)
        assert not thread.is_alive(), f"{thread.name} did not stop"


def test_append_while_watching_wakes_the_runner(
    dovecot_server: DovecotServer, imap_user: ImapUser, stop: threading.Event
) -> None:
    """A message appended to a watched folder calls wake; stop ends every watcher."""
    source = source_for(dovecot_server, imap_user.username, imap_user.password)
    waker = Waker()
    with capture_logs() as logs:
        source.watch(waker, stop)
        wait_for(lambda: idle_count(logs, "INBOX") and idle_count(logs, "Sent"), "IDLE")
        assert waker.calls == 0

        appended = time.monotonic()
        dovecot_server.append(imap_user.username, "INBOX", mail(1), now())
        assert waker.wait()
        print(f"IDLE wake {time.monotonic() - appended:.3f}s after APPEND to INBOX")
        dovecot_server.append(imap_user.username, "Sent", mail(2), now())
        assert waker.wait()
        stop_and_join(source, stop)

    names = sorted(thread.name for thread in source.watch_threads)
    assert names == ["imap-watch-support", "imap-watch-support-INBOX", "imap-watch-support-Sent"]


def test_keyword_set_on_a_watched_message_wakes_the_runner(
    dovecot_server: DovecotServer, imap_user: ImapUser, stop: threading.Event
) -> None:
    """Another client setting $ActionPlan (a FETCH FLAGS update) calls wake."""
    user = imap_user.username
    uid = dovecot_server.append(user, "Sent", mail(3), now())
    source = source_for(dovecot_server, user, imap_user.password, inbox_folders=[])
    waker = Waker()
    with capture_logs() as logs:
        source.watch(waker, stop)
        wait_for(lambda: idle_count(logs, "Sent") > 0, "IDLE")
        client = dovecot_server.connect(user)
        client.select_folder("Sent")
        client.add_flags([uid], ["$ActionPlan"])
        client.logout()
        assert waker.wait()


def test_watching_changes_no_flag(
    dovecot_server: DovecotServer, imap_user: ImapUser, stop: threading.Event
) -> None:
    r"""Watchers EXAMINE and fetch nothing: no \Seen, and \Recent stays for others."""
    user = imap_user.username
    source = source_for(dovecot_server, user, imap_user.password, sent_folders=[])
    waker = Waker()
    with capture_logs() as logs:
        source.watch(waker, stop)
        wait_for(lambda: idle_count(logs, "INBOX") > 0, "IDLE")
        dovecot_server.append(user, "INBOX", mail(4), now(), flags=["\\Flagged"])
        assert waker.wait()
        stop_and_join(source, stop)

    assert list(dovecot_server.flags(user, "INBOX").values()) == [("\\Flagged", "\\Recent")]


def test_watcher_reconnects_after_a_server_restart_and_wakes(
    private_dovecot: Callable[..., DovecotServer], stop: threading.Event
) -> None:
    """A restart ends the IDLE connection with BYE; the watcher reconnects and wakes.

    The wake after the reconnect lets the runner poll from its cursor, so mail that came
    while nobody listened is read; new mail after that wakes it again as before.
    """
    server = private_dovecot()
    server.add_user("restarted", "Pw-restart-1")
    source = source_for(server, "restarted", "Pw-restart-1", sent_folders=[])
    waker = Waker()
    with capture_logs() as logs:
        source.watch(waker, stop)
        wait_for(lambda: idle_count(logs, "INBOX") == 1, "IDLE")

        server.restart()
        assert waker.wait()  # after the reconnect
        wait_for(lambda: idle_count(logs, "INBOX") == 2, "IDLE again")
        server.append("restarted", "INBOX", mail(5), now())
        assert waker.wait()
        stop_and_join(source, stop)

    retries = [e for e in logs if e["event"] == "imap watch failed, retrying"]
    assert retries and all(e["log_level"] == "warning" for e in retries)
    assert "BYE" in retries[0]["error"]
    assert [e for e in logs if e["event"] == "imap watch resumed"]


def test_a_watched_mailbox_whose_server_is_down_does_not_stop_another(
    private_dovecot: Callable[..., DovecotServer],
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    stop: threading.Event,
) -> None:
    """One mailbox's watcher keeps retrying while the other one's wakes on new mail."""
    down = private_dovecot()
    down.add_user("manager", "Pw-manager-1")
    down.halt()
    failing = source_for(down, "manager", "Pw-manager-1", name="manager")
    working = source_for(dovecot_server, imap_user.username, imap_user.password)
    waker = Waker()
    with capture_logs() as logs:
        failing.watch(waker, stop)
        working.watch(waker, stop)
        wait_for(lambda: idle_count(logs, "INBOX") > 0, "IDLE")
        dovecot_server.append(imap_user.username, "INBOX", mail(6), now())
        assert waker.wait()
        wait_for(
            lambda: any(
                e["event"] == "imap watch failed, retrying" and e["mailbox"] == "manager"
                for e in list(logs)
            ),
            "a retry of the mailbox that is down",
        )

        down.resume()
        assert waker.wait()  # the starter wakes once it gets through
        wait_for(lambda: idle_count(logs, "INBOX", mailbox="manager") > 0, "IDLE on manager")
        stop_and_join(failing, stop)
        stop_and_join(working, stop)


def test_idle_false_watches_nothing(
    dovecot_server: DovecotServer, imap_user: ImapUser, stop: threading.Event
) -> None:
    """With idle off, watch starts no thread and says why, once; polling still works."""
    source = source_for(dovecot_server, imap_user.username, imap_user.password, idle=False)
    with capture_logs() as logs:
        source.watch(Waker(), stop)

    assert source.watch_threads == []
    [off] = [e for e in logs if e["event"] == "imap watch off"]
    assert off["reason"] == "idle is false"
    assert list(source.poll({}, now() - timedelta(days=1))) == []
    source.close()
