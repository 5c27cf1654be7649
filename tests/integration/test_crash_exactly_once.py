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
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ImapUser
from tests.e2e.test_first_run import SLA_DAEMON, _cli
from tests.mailbuild import build_mail
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


def write_config(path: Path, user: ImapUser, sink: SmtpSink) -> Path:
    """A config for ``user``'s mailbox and ``sink``, its state beside ``path``."""
    accounts = "".join(
        f"  - name: {name}\n    domains: [{name}.example]\n    owner: {owner}\n"
        for name, owner in OWNERS.items()
    )
    path.write_text(
        f"""\
state_dir: {path.parent / "state"}
team:
  name: Acme Support
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: {user.host}
    port: {user.port}
    security: none
    username: {user.username}
    password_env: E2E_IMAP_PASSWORD
    folders: {{inbox: [INBOX], sent: [Sent]}}
    idle: false
    poll_interval: 1s
smtp:
  host: {sink.host}
  port: {sink.port}
  security: none
policies:
  standard:
    acknowledge: {{within: 1h, warn_before: [30m]}}
    action_plan: {{within: 4h, warn_before: [2h]}}
accounts:
{accounts}ingest:
  auto_ack_max_age: 1d
notices:
  digest_window: 0s  # each notice is its own mail, so every key is counted at the sink
""",
        encoding="utf-8",
    )
    return path


def notice_key(mail: ReceivedMail) -> str:
    """The notice's key; a summary's without the moment it was made (one per owner)."""
    key = str(mail.message["X-SLA-Notice-Key"])
    return "|".join(key.split("|")[:2]) if key.startswith("digest|") else key


def _user(server: DovecotServer, name: str) -> ImapUser:
    user = ImapUser(name, "pw-" + os.urandom(4).hex(), server.host, server.port)
    server.add_user(user.username, user.password)
    return user


STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_daemon_left() -> Iterator[None]:
    """Kill any daemon a failed assertion left running."""
    yield
    while STARTED:
        daemon = STARTED.pop()
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(timeout=10)


def _start(config: Path, user: ImapUser, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as stream:
        daemon = subprocess.Popen(
            [SLA_DAEMON, "--config", str(config), "run"],
            stdout=stream,
            stderr=stream,
            env={"E2E_IMAP_PASSWORD": user.password, "PATH": "/usr/bin:/bin"},
        )
    STARTED.append(daemon)
    return daemon


def kill(daemon: subprocess.Popen[bytes], log: Path) -> None:
    """SIGKILL ``daemon`` unless it is dead already, and check it died of it."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGKILL)
    assert daemon.wait(timeout=10) == -signal.SIGKILL, log.read_text()[-3000:]


def _pending(database: Path) -> int | None:
    """Pending outbox entries, or None before the daemon created its database."""
    if not database.exists():
        return None
    with sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True, timeout=10) as db:
        try:
            return int(
                db.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0]
            )
        except sqlite3.OperationalError:  # the schema is not there yet
            return None


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
        reference = write_config(
            tmp_path / "reference" / "config.yaml", reference_user, reference_sink
        )
        result = _cli(reference, reference_user, "run", "--once")
        assert result.returncode == 0, result.stderr[-2000:]
        expected_mails = reference_sink.messages
    expected = {notice_key(m) for m in expected_mails}
    kinds = Counter(str(m.message["X-SLA-Daemon"]) for m in expected_mails)
    assert len(expected) == len(expected_mails)
    assert kinds["auto_ack"] == CONVERSATIONS
    assert kinds["warning"] >= 30 and kinds["digest"] == len(OWNERS)

    (tmp_path / "crash").mkdir()
    config = write_config(tmp_path / "crash" / "config.yaml", imap_user, smtp_sink)
    database = tmp_path / "crash" / "state" / "state.sqlite3"
    log = tmp_path / "crash" / "daemon.log"
    rng = random.Random(SEED)
    # While a random delay runs, each mail takes the sink a while, so that the delays
    # land in start-up, sync, deciding and sending alike without sending everything.
    slow = lambda _: time.sleep(SLOW_SINK)  # noqa: E731 (a one-line hook)
    kills, in_flight_kills = 0, []
    for round_left in range(KILLS_IN_FLIGHT, 0, -1):
        smtp_sink.on_receive = slow
        daemon = _start(config, imap_user, log)
        time.sleep(rng.uniform(0.05, 1.6))
        kill(daemon, log)
        kills += 1
        # The next in-flight kill lands part of the way through what is left to send.
        current = len(smtp_sink.messages)
        step = max(1, (len(expected) - current) // (round_left + 1))
        target = current + rng.randint(1, step)
        daemon = _start(config, imap_user, log)

        def kill_at_target(_: ReceivedMail, pid: int = daemon.pid, target: int = target) -> None:
            if len(smtp_sink.messages) == target:
                in_flight_kills.append(target)
                os.kill(pid, signal.SIGKILL)

        smtp_sink.on_receive = kill_at_target
        with contextlib.suppress(subprocess.TimeoutExpired):
            daemon.wait(timeout=20)  # the sink kills it; when it does not, see below
        kill(daemon, log)
        kills += 1
    smtp_sink.on_receive = None
    assert len(in_flight_kills) == KILLS_IN_FLIGHT, in_flight_kills

    cycles_before = log.read_text().count('"cycle.done"')
    daemon = _start(config, imap_user, log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        received = {notice_key(m) for m in smtp_sink.messages}
        cycles = log.read_text().count('"cycle.done"')
        if cycles > cycles_before and received >= expected and _pending(database) == 0:
            break
        time.sleep(0.2)
    received = {notice_key(m) for m in smtp_sink.messages}
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0, log.read_text()[-3000:]

    mails_received = smtp_sink.messages
    message_ids: dict[str, set[str]] = defaultdict(set)
    for mail in mails_received:
        message_ids[notice_key(mail)].add(str(mail.message["Message-ID"]))
    copies = Counter(str(m.message["Message-ID"]) for m in mails_received)
    extra = sum(count - 1 for count in copies.values())
    print(
        f"expected {len(expected)} ({dict(kinds)}), kills {kills}, received "
        f"{len(mails_received)}, repeated in flight {extra}"
    )
    assert set(message_ids) == expected  # nothing lost, nothing that was not due
    assert all(len(ids) == 1 for ids in message_ids.values())  # a repeat keeps its ID
    assert len(copies) == len(expected)
    assert extra <= kills
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        statuses = dict(
            db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall()
        )
    assert set(statuses) <= {"sent", "suppressed"}
