"""ImapSource reports each reconnect of its polling connection, against a real Dovecot."""

from __future__ import annotations

import pytest

from sla_daemon.errors import TransientError
from tests.integration.test_imap_resilience import (
    PrivateServer,
    an_hour_ago,
    mail,
    new_user,
    since,
    source_for,
)

pytestmark = pytest.mark.integration


def test_the_first_connection_is_not_a_reconnect_and_each_one_after_a_loss_is(
    private_dovecot: PrivateServer,
) -> None:
    """Polls on a kept connection count nothing; a poll after a restart counts one."""
    server = private_dovecot()
    user, password = new_user(server)
    server.append(user, "INBOX", mail(1), an_hour_ago())
    reconnects: list[str] = []
    source = source_for(
        server, user, password, sent_folders=[], on_reconnect=lambda: reconnects.append("x")
    )
    list(source.poll({}, since()))
    list(source.poll({}, since()))
    assert reconnects == []

    server.restart()
    with pytest.raises(TransientError):
        list(source.poll({}, since()))  # finds the old connection gone
    list(source.poll({}, since()))
    source.close()
    assert reconnects == ["x"]
