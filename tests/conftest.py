"""Shared fixtures: a real Dovecot server, fresh IMAP users, an SMTP sink, the corpora.

The servers themselves live in ``tests/servers``; this file only wires them to pytest.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sla_daemon.logs import reset_logging
from tests.servers.dovecot import INSTALL_HINT, DovecotServer, find_dovecot
from tests.servers.smtp_sink import SmtpSink

_user_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Every test starts from the default logging, whatever the test before it ran.

    ``main`` configures logging for the process, on a stderr that may be a captured stream
    closed after its test.
    """
    root_level = logging.getLogger().level
    yield
    reset_logging()
    logging.getLogger().setLevel(root_level)


@dataclass(frozen=True)
class ImapUser:
    """A user on the test Dovecot server and where to reach it."""

    username: str
    password: str
    host: str
    port: int


def _require_dovecot() -> None:
    """Skip without Dovecot on a workstation; fail in CI, where a skip would hide it."""
    if find_dovecot() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(INSTALL_HINT)
        pytest.skip(INSTALL_HINT)


@pytest.fixture(scope="session")
def dovecot_server() -> Iterator[DovecotServer]:
    """A plaintext Dovecot IMAP server on loopback for the whole test session."""
    _require_dovecot()
    with DovecotServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls_dovecot_server() -> Iterator[DovecotServer]:
    """A Dovecot server with a self-signed certificate: ``tls_port`` and STARTTLS."""
    _require_dovecot()
    with DovecotServer(tls=True) as server:
        yield server


@pytest.fixture
def private_dovecot() -> Iterator[Callable[..., DovecotServer]]:
    """Start Dovecot servers of the test's own, e.g. to restart or halt; all stopped after.

    Call it with DovecotServer's keyword arguments (``sent_folder="Sent Items"``).
    """
    _require_dovecot()
    started: list[DovecotServer] = []

    def start(**settings: Any) -> DovecotServer:
        server = DovecotServer(**settings)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def imap_user(dovecot_server: DovecotServer) -> ImapUser:
    """A new user, with empty INBOX and Sent, on the session's Dovecot server."""
    number = next(_user_numbers)
    user = ImapUser(
        username=f"user{number}-{os.getpid()}",
        password=f"pw-{number}-{os.urandom(6).hex()}",
        host=dovecot_server.host,
        port=dovecot_server.port,
    )
    dovecot_server.add_user(user.username, user.password)
    return user


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    """A started SMTP sink, stopped after the test."""
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def corpora_dir() -> Path:
    """The shared real-world mail corpora beside the repository (skips when absent)."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    if not path.is_dir():
        pytest.skip(f"the mail corpora are not available at {path}")
    return path
