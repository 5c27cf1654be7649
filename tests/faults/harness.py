"""One fault scenario's rig: a private Dovecot with three mailboxes, the sink, the daemon.

``FaultRig.run_waves`` delivers the workload wave by wave while the scenario does its
damage; ``settle`` waits, within a deadline, until every due notice could have gone
out and the outbox is empty; ``verify`` counts, records the scenario's row for the
table and asserts what every scenario promises: every client message is in the
store, every due notice was delivered exactly once (the only repeats allowed are the
mails in flight at a SIGKILL, under their own Message-ID), ``PRAGMA integrity_check``
says ok, and the daemon is running.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.configs import MailboxSpec, merged, password_env, write_config
from tests.conftest import ImapUser
from tests.daemon_process import DaemonProcess, integrity, pending_notices
from tests.faults.table import FaultRow, FaultTable
from tests.faults.workload import (
    CONFIG,
    DUE_SECONDS,
    MAILBOXES,
    client_message_ids,
    deliver,
    received_key,
    waves,
)
from tests.notice_tally import tally
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

WAVE_PAUSE = 1.0  # seconds between waves, so that faults land among the deliveries


@dataclass
class FaultRig:
    """Everything one scenario runs against; ``name`` also tags its Message-IDs."""

    name: str
    dovecot: DovecotServer
    users: dict[str, str]
    sink: SmtpSink
    daemon: DaemonProcess
    state_dir: Path
    last_delivery: float = field(default=0.0)

    @property
    def database(self) -> Path:
        """The daemon's state database."""
        return self.state_dir / "state.sqlite3"

    def run_waves(self, between: Callable[[int], None] | None = None) -> None:
        """Deliver every wave, ``WAVE_PAUSE`` apart, calling ``between(wave)`` after each."""
        for number, wave in enumerate(waves(self.name)):
            deliver(self.dovecot, self.users, wave)
            self.last_delivery = time.monotonic()
            if between is not None:
                between(number)
            time.sleep(WAVE_PAUSE)

    def settle(self, expected: set[str], timeout: float = 120.0) -> None:
        """Wait until the last quick deadline passed and every due notice could be sent.

        Returns once the sink holds every expected key and the outbox nothing pending,
        after two more cycles (anything sent twice would be sent by then), or once
        ``timeout`` passed: ``verify`` then says what is missing.
        """
        deadline = time.monotonic() + timeout
        due = self.last_delivery + DUE_SECONDS + 2
        while time.monotonic() < deadline:
            received = {received_key(mail) for mail in self.sink.messages}
            if (
                time.monotonic() > due
                and received >= expected
                and pending_notices(self.database) == 0
            ):
                break
            time.sleep(0.5)
        if self.daemon.running:
            self.daemon.wait_for_cycles(2, timeout=60)

    def verify(self, table: FaultTable, expected: set[str], *, allowed_repeats: int = 0) -> None:
        """Record the scenario's row, then assert the promises (module docstring)."""
        wanted = {f"<{mid}>" for mid in client_message_ids(self.name)}
        with sqlite3.connect(f"{self.database.as_uri()}?mode=ro", uri=True, timeout=10) as db:
            stored = {row[0] for row in db.execute("SELECT message_id FROM messages")}
        missing = wanted - {f"<{mid.strip('<>')}>" for mid in stored}
        counted = tally(expected, self.sink.messages, received_key)
        table.add(
            FaultRow(
                scenario=self.name,
                messages=f"{len(wanted) - len(missing)}/{len(wanted)}",
                expected=counted.expected,
                delivered=counted.delivered,
                duplicated=counted.duplicated,
                lost=len(counted.lost),
            )
        )
        assert not missing, f"{len(missing)} client messages not stored: {sorted(missing)[:5]}"
        assert counted.exactly_once, counted.describe()
        assert counted.duplicated <= allowed_repeats, counted.describe()
        assert integrity(self.database) == "ok"
        assert self.daemon.running, f"the daemon is not running\n{self.daemon.tail()}"


def build_rig(
    name: str,
    dovecot: DovecotServer,
    sink: SmtpSink,
    directory: Path,
    *,
    state_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    mailbox_settings: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
) -> FaultRig:
    """A user per mailbox on ``dovecot``, the config in ``directory``; nothing started.

    ``support`` is watched with IDLE as well as polled, the other two only polled.
    ``mailbox_settings`` go into every mailbox's section.
    """
    specs = []
    for mailbox in MAILBOXES:
        user = ImapUser(f"{name}-{mailbox}", "pw-" + os.urandom(6).hex(), dovecot.host, 0)
        dovecot.add_user(user.username, user.password)
        user = ImapUser(user.username, user.password, dovecot.host, dovecot.port)
        specs.append(
            MailboxSpec(mailbox, user, idle=mailbox == "support", overrides=mailbox_settings or {})
        )
    state = state_dir or directory / "state"
    config = write_config(
        directory / "config.yaml",
        mailboxes=specs,
        sink=sink,
        state_dir=state,
        overrides=merged(CONFIG, overrides or {}),
    )
    daemon = DaemonProcess(config, {**password_env(specs), **(env or {})}, directory / "daemon.log")
    return FaultRig(
        name=name,
        dovecot=dovecot,
        users={spec.name: spec.user.username for spec in specs},
        sink=sink,
        daemon=daemon,
        state_dir=state,
    )
