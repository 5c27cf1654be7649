"""Ingest benchmark: sla-daemon's first sync, auto-ack latency and memory, each beside a baseline.

Run from the repository root (``make bench`` does)::

    .venv/bin/python benchmarks/ingest.py [--messages 20000] [--latency-messages 50]
                                          [--rss-messages 100000]

It starts a private Dovecot exactly like the tests do (``tests/servers/dovecot.py``) and an
SMTP sink (``tests/servers/smtp_sink.py``), and measures in one run:

(a) baseline: imapclient alone fetching the items the daemon fetches, in the daemon's
    batch size, for every message of INBOX and Sent;
(b) sla-daemon's first sync of the same mailbox (``build_service(config)`` and
    ``service.sync``: fetch, parse, thread and store), the best of two runs into
    fresh state directories as (a) is the best of two, and the ratio (b)/(a);
(c) the time from an APPEND into INBOX to the auto-ack arriving at the SMTP sink, for
    ``sla-daemon run`` started as a subprocess;
(d) the peak RSS of a process that stores 100,000 messages through ``service.sync``,
    beside the RSS of an idle process with the same imports.

Nothing here asserts: every figure is printed with its baseline or target and a ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import inspect
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    SUPPORT,
    TEAM_DOMAIN,
    proc_status_kb,
    seed_folders,
)
from benchmarks.common import daemon_events as _daemon_events  # noqa: E402
from benchmarks.common import wait_for_event as _wait_for_event  # noqa: E402
from sla_daemon.adapters import imapwire  # noqa: E402
from sla_daemon.adapters.imap import ImapSource  # noqa: E402
from sla_daemon.app import build_service  # noqa: E402
from sla_daemon.config import IngestConfig, load_config  # noqa: E402
from sla_daemon.core.model import FolderKind  # noqa: E402
from sla_daemon.logs import configure_logging  # noqa: E402
from sla_daemon.ports import FetchedMessage, FolderBatch, FolderCursor  # noqa: E402
from sla_daemon.service import CycleReport  # noqa: E402
from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.servers.smtp_sink import ReceivedMail, SmtpSink  # noqa: E402

SYNC_TARGET_RATIO = 0.5
SYNC_RUNS = 2
"""First syncs timed for (b), each into a fresh state directory; the best counts, as for (a)."""
LATENCY_TARGET_P95 = 1.5  # seconds
RSS_TARGET_MB = 150.0

TEAM_MEMBERS = ("Bob Berg", "Carla Diaz", "Dev Patel", "Erin Walsh", "Femi Ade")
CLIENT_DOMAINS = tuple(f"client{number:02d}.example" for number in range(1, 21))
OTHER_SENDERS = (
    "Vendor News <news@vendor.example>",
    "Jobs Board <noreply@jobs.example>",
    "Someone <someone@elsewhere.example>",
)
FIRST_NAMES = ("Ana", "Ben", "Chen", "Dora", "Emil", "Fay", "Gus", "Hana", "Ivo", "Jin")
LAST_NAMES = ("Novak", "Ortiz", "Park", "Quinn", "Rossi", "Sato", "Tran", "Ueda", "Voss")
TOPICS = (
    "Invoice {n} does not match the order",
    "Login fails for user {n}",
    "Export job {n} stuck since this morning",
    "Question about contract renewal {n}",
    "API returns 500 on request {n}",
    "Urgent: shipment {n} missing items",
    "Report {n} shows wrong totals",
    "Password reset for account {n}",
)
_WORD_TEXT = (
    "the system export report invoice customer account please could you check whether "
    "we noticed again yesterday morning after update error message attached screenshot "
    "order shipment total amount team thanks regards issue ticket server login access "
    "delay status progress meeting schedule today tomorrow week deadline priority "
    "configuration database backup restore network firewall certificate renewal contract"
)
WORDS = tuple(_WORD_TEXT.split())


# -- synthetic mail ------------------------------------------------------------------------


@dataclass
class _Thread:
    """What a reply needs to know about the conversation it answers."""

    subject: str
    client: str  # "Name <address>" of the client in the conversation
    last_id: str
    references: list[str]


@dataclass(frozen=True)
class SeedMessage:
    """One generated message, its folder and its INTERNALDATE."""

    folder: str  # "INBOX" or "Sent"
    raw: bytes
    internaldate: datetime
    message_id: str


@dataclass
class MailFactory:
    """Deterministic, realistic-looking mail: half new requests, half replies to earlier ones.

    Replies go to one of the most recent ``open_threads`` conversations (so memory stays
    bounded for any count); about 40% of replies are the team's (folder ``Sent``), the rest
    come from the client (``INBOX``). About one message in fifty carries an attachment.
    """

    seed: int = 1
    open_threads: int = 2000
    rng: random.Random = field(init=False)
    threads: list[_Thread] = field(default_factory=list)
    paragraphs: list[str] = field(default_factory=list)
    counter: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.paragraphs = [self._paragraph() for _ in range(300)]

    def _paragraph(self) -> str:
        words = [self.rng.choice(WORDS) for _ in range(self.rng.randint(40, 110))]
        lines, line = [], ""
        for word in words:
            if len(line) + len(word) + 1 > 72:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        return "\r\n".join(lines).capitalize() + "."

    def _body(self) -> str:
        target = self.rng.randint(1000, 5000)
        parts, size = [], 0
        while size < target:
            paragraph = self.rng.choice(self.paragraphs)
            parts.append(paragraph)
            size += len(paragraph) + 4
        return "\r\n\r\n".join(parts)

    def _client(self) -> str:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        domain = self.rng.choice(CLIENT_DOMAINS)
        return f"{first} {last} <{first.lower()}.{last.lower()}@{domain}>"

    def _team(self) -> str:
        name = self.rng.choice(TEAM_MEMBERS)
        return f"{name} <{name.split()[0].lower()}@{TEAM_DOMAIN}>"

    def message(self, at: datetime) -> SeedMessage:
        """The next message, dated ``at``."""
        self.counter += 1
        number = self.counter
        reply = bool(self.threads) and self.rng.random() < 0.5
        cc: str | None = None
        if reply:
            thread = self.rng.choice(self.threads)
            team_reply = self.rng.random() < 0.4
            sender, to = (self._team(), thread.client) if team_reply else (thread.client, SUPPORT)
            folder = "Sent" if team_reply else "INBOX"
            subject = f"Re: {thread.subject}"
            domain = TEAM_DOMAIN if team_reply else thread.client.rsplit("@", 1)[1].rstrip(">")
            message_id = f"<{number}.{self.rng.getrandbits(40):x}@{domain}>"
            in_reply_to = thread.last_id
            references = [*thread.references[-9:], thread.last_id]
            thread.last_id = message_id
            thread.references = references
        else:
            if self.rng.random() < 0.9:
                sender = self._client()
                cc = self._client() if self.rng.random() < 0.3 else None
            else:
                sender = self.rng.choice(OTHER_SENDERS)
            to, folder = SUPPORT, "INBOX"
            subject = self.rng.choice(TOPICS).format(n=number)
            domain = sender.rsplit("@", 1)[1].rstrip(">")
            message_id = f"<{number}.{self.rng.getrandbits(40):x}@{domain}>"
            in_reply_to, references = None, []
            if "client" in domain:
                self.threads.append(_Thread(subject, sender, message_id, []))
                if len(self.threads) > self.open_threads:
                    self.threads.pop(0)
        headers = [
            f"From: {sender}",
            f"To: {to}",
            *([f"Cc: {cc}"] if cc else []),
            f"Subject: {subject}",
            f"Date: {format_datetime(at)}",
            f"Message-ID: {message_id}",
            *([f"In-Reply-To: {in_reply_to}"] if in_reply_to else []),
            *([f"References: {' '.join(references)}"] if references else []),
            "MIME-Version: 1.0",
            "User-Agent: Benchmark Mail 1.0",
        ]
        body = self._body()
        if self.rng.random() < 0.02:
            boundary = f"=_part_{number}"
            blob = self.rng.randbytes(self.rng.randint(20_000, 200_000))
            encoded = _base64_lines(blob)
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            text = (
                "This is a multi-part message in MIME format.\r\n\r\n"
                f"--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
                f"--{boundary}\r\nContent-Type: application/pdf; name=report-{number}.pdf\r\n"
                "Content-Transfer-Encoding: base64\r\n"
                f'Content-Disposition: attachment; filename="report-{number}.pdf"\r\n\r\n'
                f"{encoded}\r\n--{boundary}--\r\n"
            )
        else:
            headers.append("Content-Type: text/plain; charset=utf-8")
            headers.append("Content-Transfer-Encoding: 8bit")
            text = body + "\r\n"
        raw = ("\r\n".join(headers) + "\r\n\r\n" + text).encode()
        return SeedMessage(folder, raw, at, message_id)

    def messages(self, count: int, start: datetime, end: datetime) -> Iterator[SeedMessage]:
        """``count`` messages with dates spread evenly from ``start`` to ``end``."""
        step = (end - start) / max(count, 1)
        for index in range(count):
            yield self.message(start + step * index)


def _base64_lines(blob: bytes) -> str:
    import base64

    text = base64.b64encode(blob).decode()
    return "\r\n".join(text[i : i + 76] for i in range(0, len(text), 76))


# -- helpers ---------------------------------------------------------------------------------


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def _mb(kilobytes: int) -> float:
    return kilobytes / 1024  # ru_maxrss is in KiB on Linux


def _print_row(label: str, value: str, detail: str = "") -> None:
    print(f"  {label:<34} {value:>16}  {detail}".rstrip(), flush=True)


def _config_yaml(
    state_dir: Path,
    *,
    mailbox: str,
    imap: tuple[str, int, str] | None,
    maildir: Path | None,
    smtp: tuple[str, int],
    poll_interval: str = "60s",
    idle: bool = True,
) -> str:
    """A daemon config: one mailbox (IMAP on loopback or a Maildir), the sink, 20 accounts."""
    if imap is not None:
        host, port, user = imap
        source = (
            f"    host: {host}\n    port: {port}\n    security: none\n"
            f"    username: {user}\n    password_env: BENCH_IMAP_PASSWORD\n"
        )
    else:
        source = f"    path: {maildir}\n    format: maildir\n"
    accounts = "".join(
        f"  - name: {domain.split('.')[0].title()}\n    domains: [{domain}]\n"
        f"    owner: am{index}@{TEAM_DOMAIN}\n    escalate_to: [lead@{TEAM_DOMAIN}]\n"
        for index, domain in enumerate(CLIENT_DOMAINS, start=1)
    )
    return f"""\
state_dir: {state_dir}
timezone: Europe/Berlin
team:
  name: Acme Support
  domains: [{TEAM_DOMAIN}]
  from: "{SUPPORT}"
mailboxes:
  - name: {mailbox}
{source}    folders: {{inbox: [INBOX], sent: [Sent]}}
    poll_interval: {poll_interval}
    idle: {"true" if idle else "false"}
smtp:
  host: {smtp[0]}
  port: {smtp[1]}
  security: none
policies:
  standard:
    acknowledge: {{within: 1h}}
    action_plan: {{within: 48h, warn_before: [24h, 4h]}}
    auto_ack: true
accounts:
{accounts}ingest:
  backfill: 14d
  auto_ack_max_age: 1h
"""


# -- (a) and (b): first sync against imapclient alone -------------------------------------


def seed_mailbox(server: DovecotServer, user: str, count: int) -> dict[str, int]:
    """APPEND ``count`` generated messages (INBOX and Sent), one connection per folder.

    The messages are generated again for each folder (same seed) and streamed, so the
    benchmark process never holds the whole mailbox.
    """
    end = datetime.now(UTC) - timedelta(hours=2)
    start = end - timedelta(days=10)
    return seed_folders(
        server,
        user,
        lambda: (
            (m.folder, m.raw, m.internaldate)
            for m in MailFactory(seed=1).messages(count, start, end)
        ),
    )


def daemon_fetch_items() -> tuple[str, ...]:
    """The FETCH items ``ImapSource`` asks for, read from ``imapwire`` at run time.

    ``FETCH_ITEMS``, plus the bounded body part when ``imapwire.fetch_items`` exists
    (partial fetch), at the default ``ingest.max_body_bytes``.
    """
    partial = getattr(imapwire, "fetch_items", None)
    if callable(partial):
        return tuple(partial(IngestConfig().max_body_bytes))
    return tuple(imapwire.FETCH_ITEMS)


def imap_batch_size() -> int:
    """The batch size ``ImapSource`` uses unless told otherwise."""
    default = inspect.signature(ImapSource).parameters["batch_size"].default
    return int(default)


def baseline_fetch(server: DovecotServer, user: str, batch_size: int) -> tuple[int, float, int]:
    """The baseline, imapclient alone: EXAMINE, SEARCH ALL and FETCH in batches.

    Returns (messages, seconds, bytes). The clock runs from connecting to the last answer,
    as the daemon's sync does.
    """
    items = list(daemon_fetch_items())
    count = size = 0
    started = time.perf_counter()
    client = server.connect(user)
    try:
        for folder in ("INBOX", "Sent"):
            client.select_folder(folder, readonly=True)
            uids = sorted(client.search("ALL"))
            for first in range(0, len(uids), batch_size):
                answer = client.fetch(uids[first : first + batch_size], items)
                for data in answer.values():
                    parts = [value for value in data.values() if isinstance(value, bytes)]
                    if parts:
                        count += 1
                        size += sum(len(part) for part in parts)
    finally:
        client.logout()
    return count, time.perf_counter() - started, size


@contextlib.contextmanager
def daemon_logging(path: Path, level: str) -> Iterator[None]:
    """Configure the daemon's logging as ``run`` does, JSON lines into ``path``."""
    with path.open("w", encoding="utf-8") as stream:
        saved = sys.stderr
        sys.stderr = stream
        try:
            configure_logging(json=True, level=level)
            yield
        finally:
            sys.stderr = saved
            configure_logging(level="warning")


def first_sync(
    work: Path,
    server: DovecotServer,
    user: str,
    password: str,
    sink: SmtpSink,
    log_level: str,
    profile: Path | None = None,
    *,
    run: int = 1,
    decide: bool = True,
) -> tuple[CycleReport, float, float | None]:
    """Build the real service from a generated config and time ``service.sync``.

    Each ``run`` starts from a state directory of its own. Returns the report, the
    seconds of ``sync`` and, with ``decide``, the seconds of a dry-run ``decide`` (every
    conversation evaluated, nothing recorded) that follows it.
    """
    config_path = work / f"sync-{run}.yaml"
    config_path.write_text(
        _config_yaml(
            work / f"sync-state-{run}",
            mailbox="support",
            imap=(server.host, server.port, user),
            maildir=None,
            smtp=(sink.host, sink.port),
        ),
        encoding="utf-8",
    )
    os.environ["BENCH_IMAP_PASSWORD"] = password
    config = load_config(config_path)
    report = CycleReport()
    with daemon_logging(work / "sync.log", log_level):
        service = build_service(config, dry_run=True)
        profiler = cProfile.Profile() if profile else None
        started = time.perf_counter()
        if profiler is not None:
            profiler.enable()
        service.sync(report)
        if profiler is not None:
            profiler.disable()
        sync_seconds = time.perf_counter() - started
        if profiler is not None and profile is not None:
            profiler.dump_stats(profile)
        decide_seconds = None
        if decide:
            started = time.perf_counter()
            service.decide(CycleReport())
            decide_seconds = time.perf_counter() - started
        for source in service.sources:
            source.close()
        service.store.close()
    return report, sync_seconds, decide_seconds


# -- (c) latency -------------------------------------------------------------------------------


class TimedSink(SmtpSink):
    """An SMTP sink that also notes when each mail arrived (``time.monotonic``)."""

    def __init__(self, **smtp_kwargs: Any) -> None:
        super().__init__(**smtp_kwargs)
        self.arrivals: list[tuple[float, ReceivedMail]] = []

    def _record(self, mail: ReceivedMail) -> None:
        arrived = time.monotonic()
        super()._record(mail)
        with self._lock:
            self.arrivals.append((arrived, mail))

    def arrived(self) -> list[tuple[float, ReceivedMail]]:
        """(arrival time, mail) of everything received so far."""
        with self._lock:
            return list(self.arrivals)


@dataclass(frozen=True)
class LatencyResult:
    """APPEND-to-auto-ack latencies, and how the daemon was watching the mailbox."""

    latencies: list[float]
    missing: int
    mode: str


def latency(
    work: Path, server: DovecotServer, count: int, pause: float, poll_interval: float
) -> LatencyResult:
    """Run ``sla-daemon run`` and time each APPEND until its auto-ack reaches the sink."""
    user, password = "latency", "latency-pw"
    server.add_user(user, password)
    sink = TimedSink()
    sink.start()
    try:
        config_path = work / "latency.yaml"
        config_path.write_text(
            _config_yaml(
                work / "latency-state",
                mailbox="support",
                imap=(server.host, server.port, user),
                maildir=None,
                smtp=(sink.host, sink.port),
                poll_interval=f"{poll_interval:g}s",
                idle=True,
            ),
            encoding="utf-8",
        )
        log_path = work / "latency-daemon.log"
        daemon = str(Path(sys.executable).parent / "sla-daemon")
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                [daemon, "--config", str(config_path), "run"],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**os.environ, "BENCH_IMAP_PASSWORD": password},
            )
        try:
            _wait_for_event(log_path, "cycle.done", process)
            sent_at: dict[str, float] = {}
            client = server.connect(user)
            try:
                client.select_folder("INBOX", readonly=True)
                rng = random.Random(3)
                for number in range(1, count + 1):
                    address = f"latency{number}@{CLIENT_DOMAINS[number % len(CLIENT_DOMAINS)]}"
                    now = datetime.now(UTC)
                    raw = (
                        f"From: Client {number} <{address}>\r\nTo: {SUPPORT}\r\n"
                        f"Subject: Latency probe {number}\r\nDate: {format_datetime(now)}\r\n"
                        f"Message-ID: <probe-{number}@bench.example>\r\n"
                        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                        "Our export stopped again, could you have a look?\r\n"
                    ).encode()
                    sent_at[address] = time.monotonic()
                    client.append("INBOX", raw, msg_time=now)
                    time.sleep(pause * rng.uniform(0.5, 1.5))
            finally:
                client.logout()
            deadline = time.monotonic() + max(10.0, 3 * poll_interval)
            while time.monotonic() < deadline and len(_acks(sink, sent_at)) < count:
                time.sleep(0.05)
            acks = _acks(sink, sent_at)
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    finally:
        sink.stop()
    events = [str(e.get("event")) for e in _daemon_events(log_path)]
    watch_events = sorted({e for e in events if e.startswith("imap watch")})
    if "imap watching" in events and "imap watch off" not in events:
        mode = f"IDLE (daemon logged: {', '.join(watch_events)}; poll {poll_interval:g} s)"
    else:
        logged = ", ".join(watch_events) or "no watch event"
        mode = f"polling every {poll_interval:g} s (config idle: true; daemon logged: {logged})"
    latencies = [acks[address] - sent_at[address] for address in sent_at if address in acks]
    return LatencyResult(latencies, count - len(latencies), mode)


def _acks(sink: TimedSink, sent_at: Mapping[str, float]) -> dict[str, float]:
    """First arrival of an auto-ack to each probe's sender."""
    found: dict[str, float] = {}
    for arrived, mail in sink.arrived():
        if mail.message.get("X-SLA-Daemon", "") != "auto_ack":
            continue
        for rcpt in mail.rcpt_tos:
            if rcpt in sent_at and rcpt not in found:
                found[rcpt] = arrived
    return found


def _percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


# -- (d) peak RSS ------------------------------------------------------------------------------


class GeneratedSource:
    """A ``MailSource`` that generates its messages while it is read, never holding them all.

    Messages are made by ``MailFactory`` with the same seed for each folder pass, so INBOX
    and Sent together are exactly ``count`` messages; UIDs count up per folder.
    """

    def __init__(self, name: str, count: int, batch_size: int = 200) -> None:
        self.name = name
        self.count = count
        self.batch_size = batch_size

    def poll(
        self, cursors: Mapping[str, FolderCursor], backfill_since: datetime
    ) -> Iterator[FolderBatch]:
        """Yield INBOX's batches, then Sent's."""
        end = datetime.now(UTC) - timedelta(hours=2)
        start = max(backfill_since + timedelta(hours=1), end - timedelta(days=10))
        for folder, kind in (("INBOX", FolderKind.INBOX), ("Sent", FolderKind.SENT)):
            factory = MailFactory(seed=1)
            batch: list[FetchedMessage] = []
            uid = 0
            for message in factory.messages(self.count, start, end):
                if message.folder != folder:
                    continue
                uid += 1
                batch.append(FetchedMessage(uid, message.raw, message.internaldate, ()))
                if len(batch) == self.batch_size:
                    yield FolderBatch(self.name, folder, kind, 1, uid, tuple(batch))
                    batch = []
            if batch:
                yield FolderBatch(self.name, folder, kind, 1, uid, tuple(batch))

    def watch(self, wake: Callable[[], None], stop: threading.Event) -> None:
        """Nothing to watch."""

    def close(self) -> None:
        """Nothing to release."""


def rss_child(count: int, idle: bool) -> None:
    """In its own process: store ``count`` messages (or nothing) and print the peak RSS."""
    work = Path(tempfile.mkdtemp(prefix="sla-bench-rss-"))
    try:
        (work / "maildir" / "cur").mkdir(parents=True)
        (work / "maildir" / "new").mkdir()
        (work / "maildir" / "tmp").mkdir()
        config_path = work / "rss.yaml"
        config_path.write_text(
            _config_yaml(
                work / "state",
                mailbox="support",
                imap=None,
                maildir=work / "maildir",
                smtp=("127.0.0.1", 25),
            ),
            encoding="utf-8",
        )
        config = load_config(config_path)
        result: dict[str, float] = {}
        with daemon_logging(work / "rss.log", "info"):
            service = build_service(config, dry_run=True)
            if not idle:
                service.sources = [GeneratedSource("support", count)]
                report = CycleReport()
                started = time.perf_counter()
                service.sync(report)
                result["seconds"] = time.perf_counter() - started
                result["stored"] = report.stored
                result["fetched"] = report.fetched
                result["database_mb"] = sum(
                    p.stat().st_size for p in (work / "state").iterdir()
                ) / (1024 * 1024)
            service.store.close()
        result["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["vmhwm_kb"] = _vmhwm_kb()
        print(json.dumps(result))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _vmhwm_kb() -> int:
    """The peak RSS of this process alone (``VmHWM``), or 0 where /proc is not there.

    Linux carries ``ru_maxrss`` over ``exec`` from the process that spawned us, so a
    child started by a big parent reports at least the parent's size; ``VmHWM`` belongs
    to the new address space alone.
    """
    return proc_status_kb("VmHWM") or 0


def run_rss_child(count: int, idle: bool) -> dict[str, float]:
    """Run ``rss_child`` in a fresh interpreter and return what it printed."""
    args = [sys.executable, str(Path(__file__).resolve()), "--rss-child", str(count)]
    if idle:
        args.append("--rss-idle")
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# -- main --------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print every figure beside its baseline or target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages seeded for (a)/(b)")
    parser.add_argument("--latency-messages", type=int, default=50, help="probes for (c)")
    parser.add_argument("--latency-pause", type=float, default=0.5, help="mean pause (s)")
    parser.add_argument("--poll-interval", type=float, default=1.0, help="seconds, for (c)")
    parser.add_argument("--rss-messages", type=int, default=100_000, help="messages for (d)")
    parser.add_argument("--log-level", default="info", help="daemon log level for (b)")
    parser.add_argument("--skip", default="", help="skip parts: sync,latency,rss")
    parser.add_argument(
        "--profile", type=Path, default=None, help="cProfile (b) into this file (slows (b))"
    )
    parser.add_argument("--rss-child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rss-idle", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child is not None:
        rss_child(args.rss_child, args.rss_idle)
        return 0
    skip = {part.strip() for part in args.skip.split(",") if part.strip()}

    dovecot_version = subprocess.run(
        ["dovecot", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(
        f"sla-daemon ingest benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"Python {platform.python_version()}  Dovecot {dovecot_version}  "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    # (d) first: Linux carries ru_maxrss over exec, so its processes are started while
    # this one is still as small as an idle process with the same imports.
    if "rss" not in skip:
        _rss_part(args.rss_messages)
    work = Path(tempfile.mkdtemp(prefix="sla-bench-"))
    try:
        with DovecotServer() as server:
            if "sync" not in skip:
                _sync_part(work, server, args.messages, args.log_level, args.profile)
            if "latency" not in skip:
                _latency_part(work, server, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def _sync_part(
    work: Path, server: DovecotServer, count: int, log_level: str, profile: Path | None
) -> None:
    user, password = "bench", "bench-pw"
    server.add_user(user, password)
    print(f"\n(a)/(b) first sync of {count} messages", flush=True)
    started = time.perf_counter()
    seeded = seed_mailbox(server, user, count)
    seconds = time.perf_counter() - started
    total_bytes = seeded["INBOX_bytes"] + seeded["Sent_bytes"]
    _print_row(
        "seeded (APPEND, one connection)",
        f"{count / seconds:,.0f} msg/s",
        f"INBOX {seeded['INBOX']}, Sent {seeded['Sent']}, "
        f"{total_bytes / 2**20:.1f} MiB in {seconds:.1f} s",
    )
    batch_size = imap_batch_size()
    runs = [baseline_fetch(server, user, batch_size) for _ in range(2)]
    fetched, best, size = min(runs, key=lambda run: run[1])
    baseline = _rate(fetched, best)
    _print_row(
        "(a) imapclient alone",
        f"{baseline:,.0f} msg/s",
        f"{fetched} msgs, {size / 2**20:.1f} MiB, FETCH {' '.join(daemon_fetch_items())}, "
        f"batches of {batch_size}; best of {len(runs)}: "
        + ", ".join(f"{run[1]:.2f} s" for run in runs),
    )
    sink = SmtpSink()
    sink.start()
    try:
        # Best of two, as (a): each run a first sync into a state directory of its own.
        syncs = [
            first_sync(
                work,
                server,
                user,
                password,
                sink,
                log_level,
                profile if run == 1 else None,
                run=run,
                decide=run == SYNC_RUNS,
            )
            for run in range(1, SYNC_RUNS + 1)
        ]
    finally:
        sink.stop()
    report, sync_seconds, _ = min(syncs, key=lambda sync: sync[1])
    decide_seconds = syncs[-1][2]
    rate = _rate(report.fetched, sync_seconds)
    _print_row(
        "(b) sla-daemon first sync",
        f"{rate:,.0f} msg/s",
        f"fetched {report.fetched}, stored {report.stored}, duplicates {report.duplicates}, "
        f"quarantined {report.quarantined}, log level {log_level}; best of {len(syncs)}: "
        + ", ".join(f"{sync[1]:.2f} s" for sync in syncs),
    )
    ratio = rate / baseline if baseline else float("nan")
    verdict = "met" if ratio >= SYNC_TARGET_RATIO else "NOT met"
    _print_row("(b)/(a)", f"{ratio:.2f}x", f"target >= {SYNC_TARGET_RATIO}x: {verdict}")
    _print_row(
        "evaluate after sync (dry run)",
        f"{decide_seconds or 0:.2f} s",
        "every conversation replayed by the engine; not part of (b)",
    )


def _latency_part(work: Path, server: DovecotServer, args: argparse.Namespace) -> None:
    count = args.latency_messages
    print(f"\n(c) APPEND to auto-ack at the SMTP sink, {count} messages", flush=True)
    result = latency(work, server, count, args.latency_pause, args.poll_interval)
    _print_row("mode", result.mode)
    if not result.latencies:
        _print_row("auto-acks received", "0", f"of {count}")
        return
    p50 = statistics.median(result.latencies)
    p95 = _percentile(result.latencies, 0.95)
    worst = max(result.latencies)
    _print_row("p50", f"{p50:.3f} s")
    verdict = "met" if p95 <= LATENCY_TARGET_P95 and not result.missing else "NOT met"
    _print_row(
        "p95",
        f"{p95:.3f} s",
        f"target <= {LATENCY_TARGET_P95} s: {verdict} ({p95 / LATENCY_TARGET_P95:.2f}x target)",
    )
    _print_row("max", f"{worst:.3f} s")
    _print_row("baseline: poll interval", f"{args.poll_interval:.3f} s", "bound when polling")
    if result.missing:
        _print_row("auto-acks missing", str(result.missing), f"of {count}")


def _rss_part(count: int) -> None:
    print(f"\n(d) peak RSS after {count} messages stored (own process)", flush=True)
    launcher_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    idle = run_rss_child(0, idle=True)
    loaded = run_rss_child(count, idle=False)
    idle_mb, peak_mb = _mb(int(idle["maxrss_kb"])), _mb(int(loaded["maxrss_kb"]))
    _print_row(
        "baseline: same imports, idle",
        f"{idle_mb:.1f} MB",
        f"ru_maxrss (VmHWM {_mb(int(idle['vmhwm_kb'])):.1f} MB)",
    )
    _print_row(
        "stored via service.sync",
        f"{loaded['stored']:.0f} msgs",
        f"{loaded['seconds']:.1f} s ({_rate(int(loaded['fetched']), loaded['seconds']):,.0f} "
        f"msg/s), database {loaded['database_mb']:.0f} MiB",
    )
    verdict = "met" if peak_mb <= RSS_TARGET_MB else "NOT met"
    _print_row(
        "peak RSS",
        f"{peak_mb:.1f} MB",
        f"ru_maxrss; {peak_mb / idle_mb:.2f}x idle, +{peak_mb - idle_mb:.1f} MB; "
        f"target <= {RSS_TARGET_MB:.0f} MB: {verdict}",
    )
    _print_row(
        "peak RSS (VmHWM, own pages only)",
        f"{_mb(int(loaded['vmhwm_kb'])):.1f} MB",
        f"launcher's ru_maxrss when it spawned: {_mb(launcher_kb):.1f} MB",
    )


if __name__ == "__main__":
    sys.exit(main())
