"""Crash anywhere (SIGKILL) and restart: no decided notice is lost, none is sent twice.

A workload of 100 client conversations is APPENDed to Dovecot with backdated
INTERNALDATEs, in five age bands chosen at least ten minutes away from every warning and
due time, so that each conversation gets an auto-ack and many get warnings or breaches
(late ones in one summary per owner). The expected notices are what ``run --once``
delivers on a fresh copy of the same mailbox, without a crash.

Then ``sla-daemon run`` (a one-second poll) runs as a subprocess against the test's SMTP
sink and is SIGKILLed at 22 points, each followed by a restart: 11 after seeded random
delays from its start (meanwhile the sink takes 0.1s per mail, so that the delays land in
start-up, sync, deciding and sending alike without draining the outbox), alternating with
11 from inside the sink, right after it recorded the Nth mail and before it answers, so
that the mail in flight was received but never marked sent (N spread over what is left).
At the end the daemon runs until the outbox holds nothing pending. The sink must then
hold every expected notice, each key under one Message-ID, and no more extra copies than
there were kills.

Measured: 142 notices expected (100 auto-acks, 40 warnings, one summary of the breaches
per owner), 22 kills, 162 or 163 mails received (20 or 21 repeats of the mail in
flight, each with its Message-ID). The test takes 20-25 seconds.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.configs import MailboxSpec, password_env, write_config
from tests.conftest import ImapUser
from tests.daemon_process import DaemonProcess, integrity, pending_notices, run_once
from tests.mailbuild import build_mail
from tests.notice_tally import tally
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import ReceivedMail, SmtpSink

pytestmark = pytest.mark.integration

SEED = 20261124
CONVERSATIONS = 100
KILLS_IN_FLIGHT = 11  # and as many after a random delay
SLOW_SINK = 0.1  # seconds the sink takes per mail while a random delay runs
# Minutes old: fresh, ack warning, ack late, ack late + plan warning, both late. The
# policy's moments are 30 and 60 (acknowledge) and 120 and 240 (action plan) minutes.
AGE_BANDS = ((5, 15), (40, 50), (70, 110), (130, 230), (250, 400))
OWNERS = {"globex": "alice@acme.example", "initech": "bob@acme.example"}


def workload(now: datetime) -> list[tuple[bytes, datetime]]:
    """The 100 client requests, each from its own address (no per-sender cap applies)."""
    rng = random.Random(SEED)
    mails = []
    for number in range(CONVERSATIONS):
        low, high = AGE_BANDS[number % len(AGE_BANDS)]
        at = now - timedelta(minutes=rng.uniform(low, high))
        domain = "globex" if number % 2 else "initech"
        mail = build_mail(
            f"request-{number}@{domain}.example",
            sender=f"Client {number} <client{number}@{domain}.example>",
            subject=f"Request {number}",
            body=f"Please look at problem {number}.",
            at=at,
        )
        mails.append((mail.as_bytes(), at))
    return mails


def write_crash_config(path: Path, user: ImapUser, sink: SmtpSink) -> tuple[Path, dict[str, str]]:
    """A config for ``user``'s mailbox and ``sink``, its state beside ``path``; its env."""
    mailboxes = [MailboxSpec("support", user)]
    overrides = {
        "accounts": [
            {"name": name, "domains": [f"{name}.example"], "owner": owner}
            for name, owner in OWNERS.items()
        ],
        "ingest": {"auto_ack_max_age": "1d"},
    }
    config = write_config(path, mailboxes=mailboxes, sink=sink, overrides=overrides)
    return config, password_env(mailboxes)


def notice_key(mail: ReceivedMail) -> str:
    """The notice's key; a summary's without the moment it was made (one per owner)."""
    key = str(mail.message["X-SLA-Notice-Key"])
    return "|".join(key.split("|")[:2]) if key.startswith("digest|") else key


def _user(server: DovecotServer, name: str) -> ImapUser:
    user = ImapUser(name, "pw-" + os.urandom(4).hex(), server.host, server.port)
    server.add_user(user.username, user.password)
    return user


def test_sigkill_anywhere_loses_nothing_and_repeats_only_the_mail_in_flight(
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    """Every expected notice arrives; a key never changes Message-ID; extras <= kills.

    The state database passes ``PRAGMA integrity_check`` afterwards.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    mails = [(raw, at, ()) for raw, at in workload(now)]
    reference_user = _user(dovecot_server, "crash-ref-" + imap_user.username)
    dovecot_server.append_many(imap_user.username, "INBOX", mails)
    dovecot_server.append_many(reference_user.username, "INBOX", mails)

    # The expectation: one uninterrupted cycle over a fresh copy of the mailbox.
    (tmp_path / "reference").mkdir()
    with SmtpSink() as reference_sink:
        reference, reference_env = write_crash_config(
            tmp_path / "reference" / "config.yaml", reference_user, reference_sink
        )
        result = run_once(reference, reference_env)
        assert result.returncode == 0, result.stderr[-2000:]
        expected_mails = reference_sink.messages
    expected = {notice_key(m) for m in expected_mails}
    kinds = Counter(str(m.message["X-SLA-Daemon"]) for m in expected_mails)
    assert len(expected) == len(expected_mails)
    assert kinds["auto_ack"] == CONVERSATIONS
    assert kinds["warning"] >= 30 and kinds["digest"] == len(OWNERS)

    (tmp_path / "crash").mkdir()
    config, env = write_crash_config(tmp_path / "crash" / "config.yaml", imap_user, smtp_sink)
    database = tmp_path / "crash" / "state" / "state.sqlite3"
    daemon = DaemonProcess(config, env, tmp_path / "crash" / "daemon.log")
    try:
        kills = _kill_repeatedly(daemon, smtp_sink, len(expected))
        daemon.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            received = {notice_key(m) for m in smtp_sink.messages}
            if received >= expected and pending_notices(database) == 0:
                break
            time.sleep(0.2)
        daemon.wait_for_cycles(1, timeout=30)  # one more cycle: nothing else goes out
        assert daemon.stop() == 0, daemon.tail()
    finally:
        daemon.ensure_dead()

    counted = tally(expected, smtp_sink.messages, notice_key)
    print(f"{dict(kinds)}, kills {kills}: {counted.describe()}")
    assert counted.exactly_once, counted.describe()  # a repeat keeps its Message-ID
    assert counted.duplicated <= kills
    assert integrity(database) == "ok"
    with sqlite3.connect(database) as db:
        statuses = dict(
            db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        )
    assert set(statuses) <= {"sent", "suppressed"}


def _kill_repeatedly(daemon: DaemonProcess, sink: SmtpSink, expected: int) -> int:
    """SIGKILL ``daemon`` 2 x KILLS_IN_FLIGHT times (see the module docstring); the kills."""
    rng = random.Random(SEED)
    # While a random delay runs, each mail takes the sink a while, so that the delays
    # land in start-up, sync, deciding and sending alike without sending everything.
    slow = lambda _: time.sleep(SLOW_SINK)  # noqa: E731 (a one-line hook)
    kills, in_flight_kills = 0, []
    for round_left in range(KILLS_IN_FLIGHT, 0, -1):
        sink.on_receive = slow
        daemon.start()
        time.sleep(rng.uniform(0.05, 1.6))
        daemon.sigkill()
        kills += 1
        # The next in-flight kill lands part of the way through what is left to send.
        current = len(sink.messages)
        step = max(1, (expected - current) // (round_left + 1))
        target = current + rng.randint(1, step)
        daemon.start()
        assert daemon.process is not None

        def kill_at_target(
            _: ReceivedMail, pid: int = daemon.process.pid, target: int = target
        ) -> None:
            if len(sink.messages) == target:
                in_flight_kills.append(target)
                os.kill(pid, signal.SIGKILL)

        sink.on_receive = kill_at_target
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.process.wait(timeout=20)  # the sink kills it; when it does not, see below
        daemon.sigkill()
        kills += 1
    sink.on_receive = None
    assert len(in_flight_kills) == KILLS_IN_FLIGHT, in_flight_kills
    return kills
