"""A login that fails for the server's reasons is a transient failure, not a refused login.

imapclient turns every error during LOGIN into ``LoginError``, also the server going
away (killed, restarting). Taken for bad credentials, it made the daemon exit with
status 78 at start-up, as if the password were wrong.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from sla_daemon.adapters.imap_connect import ImapLogin
from sla_daemon.errors import AuthenticationError, TransientError
from tests.servers.dovecot import DovecotServer

pytestmark = pytest.mark.integration


def loopback_login(port: int) -> ImapLogin:
    """Plaintext login as ``support``/``secret`` to ``port`` on loopback, tried once."""
    return ImapLogin(
        name="support",
        host="127.0.0.1",
        port=port,
        security="none",
        username="support",
        password="secret",
        timeout=10.0,
        ssl_context=None,
        connect_attempts=1,
        retry_wait=(0.01, 0.01),
    )


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
    login = loopback_login(server_that_hangs_up_at_login)
    with pytest.raises(TransientError, match="lost while logging in") as raised:
        login.connect_once()
    assert not isinstance(raised.value, AuthenticationError)


def test_a_connection_limit_refusal_is_transient_and_passes(
    private_dovecot: Callable[..., DovecotServer],
) -> None:
    """Dovecot's ``[LIMIT]`` refusal (too many connections for the user) is transient.

    Real servers limit connections per user (Dovecot 10, Gmail 15): while another
    client holds them, the daemon must retry rather than report a wrong password, and
    it logs in once a connection is free again.
    """
    server = private_dovecot(max_connections_per_user=1)
    server.add_user("support", "secret")
    login = loopback_login(server.port)
    other_client = server.connect("support")
    try:
        with pytest.raises(TransientError, match=r"\[LIMIT\]") as raised:
            login.connect_once()
        assert not isinstance(raised.value, AuthenticationError)
    finally:
        other_client.logout()
    client = login.connect()
    try:
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 0
    finally:
        client.logout()
