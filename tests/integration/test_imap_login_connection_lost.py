"""A connection lost in the middle of LOGIN is a transient failure, not a refused login.

imapclient turns every error during LOGIN into ``LoginError``, also the server going
away (killed, restarting). Taken for bad credentials, it made the daemon exit with
status 78 at start-up, as if the password were wrong.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from sla_daemon.adapters.imap_connect import ImapLogin
from sla_daemon.errors import AuthenticationError, TransientError

pytestmark = pytest.mark.integration


@pytest.fixture
def server_that_hangs_up_at_login() -> Iterator[int]:
    """A loopback server that greets like IMAP and closes the connection at LOGIN."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with listener:
            connection, _ = listener.accept()
            with connection:
                connection.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
                while b"LOGIN" not in (command := connection.recv(4096)).upper():
                    tag = command.split(b" ", 1)[0]
                    connection.sendall(
                        b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n"
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    thread.join(timeout=10)


def test_a_server_hanging_up_during_login_is_transient(server_that_hangs_up_at_login: int) -> None:
    """The error is a ``TransientError`` naming the lost connection, never a bad password."""
    login = ImapLogin(
        name="support",
        host="127.0.0.1",
        port=server_that_hangs_up_at_login,
        security="none",
        username="support",
        password="secret",
        timeout=10.0,
        ssl_context=None,
        connect_attempts=1,
        retry_wait=(0.01, 0.01),
    )
    with pytest.raises(TransientError, match="lost while logging in") as raised:
        login.connect_once()
    assert not isinstance(raised.value, AuthenticationError)
