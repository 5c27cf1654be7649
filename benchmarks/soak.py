"""Soak benchmark: ``sla-daemon run`` under steady traffic; its RSS at the start and the end.

Run from the repository root (``make bench`` runs it last)::

    .venv/bin/python benchmarks/soak.py [--minutes 30] [--interval 3] [--backlog 300]

It starts a private Dovecot exactly like the tests do (``tests/servers/dovecot.py``) and an
SMTP sink (``tests/servers/smtp_sink.py``), seeds a backlog of conversations, and runs the
daemon as a subprocess. Every ``--interval`` seconds one message is APPENDed: a new client
request, a client's reply, or a team reply in Sent (some with ``[Action Plan]``). The
policy's clocks are minutes long, so within the run the daemon sends auto-acks,
warnings, breaches and their repetitions. RSS is read from ``/proc/PID/status`` after the
first cycle with the backlog (the baseline), once a minute (with its anonymous and
file-backed parts from ``/proc/PID/smaps_rollup``), and at the end. ``--probe FILE`` runs
the daemon under ``benchmarks/memory_probe.py``, which writes where the memory goes.

Nothing here asserts: the growth is printed against its target (<= 10%).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import (  # noqa: E402
    SUPPORT,
    TEAM_DOMAIN,
    accounts_yaml,
    banner,
    client_domains,
    config_head,
    daemon_events,
    proc_status_kb,
    seed_folders,
    smaps_rollup_kb,
    wait_for_event,
)
from tests.servers.dovecot import DovecotServer  # noqa: E402
from tests.servers.smtp_sink import SmtpSink  # noqa: E402

GROWTH_TARGET = 0.10
CLIENT_DOMAINS = client_domains(10)


def config_yaml(state_dir: Path, imap: tuple[str, int, str], smtp: tuple[str, int]) -> str:
    """One IMAP mailbox on loopback, the sink, 10 accounts, clocks of a few minutes."""
    host, port, user = imap
    return (
        config_head(state_dir)
        + f"""\
mailboxes:
  - name: support
    host: {host}
    port: {port}
    security: none
    username: {user}
    password_env: SOAK_IMAP_PASSWORD
    folders: {{inbox: [INBOX], sent: [Sent]}}
    poll_interval: 5s
    idle: true
smtp:
  host: {smtp[0]}
  port: {smtp[1]}
  security: none
policies:
  standard:
    acknowledge: {{within: 2m, warn_before: [1m]}}
    action_plan: {{within: 8m, warn_before: [4m]}}
    auto_ack: true
    re_escalate_every: 5m
{accounts_yaml(CLIENT_DOMAINS)}ingest:
  backfill: 14d
  auto_ack_max_age: 1h
"""
    )


class Traffic:
    """Deterministic mail: new requests, client replies, team replies, action plans."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.threads: list[tuple[str, str, str]] = []  # subject, client, last Message-ID
        self.counter = 0

    def next(self, at: datetime) -> tuple[str, bytes]:
        """The next message dated ``at``, and the folder it goes to."""
        self.counter += 1
        number, roll = self.counter, self.rng.random()
        in_reply_to = None
        if not self.threads or roll < 0.45:
            domain = self.rng.choice(CLIENT_DOMAINS)
            sender = f"Client {number} <client{number}@{domain}>"
            subject, to, folder = f"Request {number}: export stopped", SUPPORT, "INBOX"
            message_id = f"<soak-{number}@{domain}>"
            self.threads.append((subject, sender, message_id))
            self.threads = self.threads[-300:]
        else:
            index = self.rng.randrange(len(self.threads))
            subject, client, in_reply_to = self.threads[index]
            if roll < 0.7:
                sender, to, folder = client, SUPPORT, "INBOX"
                domain = client.rsplit("@", 1)[1].rstrip(">")
            else:
                sender, to, folder = f"Bob <bob@{TEAM_DOMAIN}>", client, "Sent"
                domain = TEAM_DOMAIN
                if self.rng.random() < 0.5:
                    subject = f"[Action Plan] {subject}"
            message_id = f"<soak-{number}@{domain}>"
            self.threads[index] = (subject.removeprefix("[Action Plan] "), client, message_id)
            subject = f"Re: {subject}"
        headers = [
            f"From: {sender}",
            f"To: {to}",
            f"Subject: {subject}",
            f"Date: {format_datetime(at)}",
            f"Message-ID: {message_id}",
            *([f"In-Reply-To: {in_reply_to}", f"References: {in_reply_to}"] if in_reply_to else []),
            "Content-Type: text/plain; charset=utf-8",
        ]
        body = "Our export stopped again this morning; could you have a look?\r\n" * 8
        return folder, ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def rss_kb(pid: int) -> int:
    """The resident set size of ``pid`` in KiB (``VmRSS``)."""
    found = proc_status_kb("VmRSS", pid)
    if found is None:
        raise RuntimeError(f"no VmRSS for {pid}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print RSS at the start and the end beside the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the run")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between messages")
    parser.add_argument("--backlog", type=int, default=300, help="messages seeded before start")
    parser.add_argument(
        "--settle", type=int, default=10, help="minute whose sample is a second baseline"
    )
    parser.add_argument(
        "--probe",
        type=Path,
        help="run the daemon under benchmarks/memory_probe.py, writing its JSON lines here",
    )
    args = parser.parse_args(argv)
    banner("soak", f"  {args.minutes:g} min, a message every {args.interval:g} s")
    work = Path(tempfile.mkdtemp(prefix="sla-soak-"))
    traffic = Traffic()
    try:
        with DovecotServer() as server, SmtpSink() as sink:
            user, password = "soak", "soak-pw"
            server.add_user(user, password)
            start = datetime.now(UTC) - timedelta(hours=6)
            backlog = []
            for index in range(args.backlog):
                at = start + timedelta(seconds=60 * index)
                backlog.append((*traffic.next(at), at))
            seed_folders(server, user, lambda: backlog)
            config = work / "soak.yaml"
            config.write_text(
                config_yaml(
                    work / "state", (server.host, server.port, user), (sink.host, sink.port)
                )
            )
            log_path = work / "daemon.log"
            daemon = [str(Path(sys.executable).parent / "sla-daemon")]
            env = {**os.environ, "SOAK_IMAP_PASSWORD": password}
            if args.probe is not None:
                daemon = [sys.executable, str(ROOT / "benchmarks" / "memory_probe.py")]
                env["SLA_MEMORY_PROBE"] = str(args.probe.resolve())
            with log_path.open("wb") as log_file:
                process = subprocess.Popen(
                    [*daemon, "--config", str(config), "run"],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                )
            try:
                wait_for_event(log_path, "cycle.done", process, timeout=300)
                first_rss = rss_kb(process.pid)
                samples = [first_rss]
                began = time.monotonic()
                ends = began + args.minutes * 60
                next_sample = began + 60
                client = server.connect(user)
                try:
                    while time.monotonic() < ends:
                        now = datetime.now(UTC)
                        folder, raw = traffic.next(now)
                        client.append(folder, raw, msg_time=now)
                        if time.monotonic() >= next_sample:
                            samples.append(rss_kb(process.pid))
                            next_sample += 60
                            smaps = smaps_rollup_kb(process.pid)
                            print(
                                f"  {len(samples) - 1:3d} min  RSS {samples[-1] / 1024:.1f} MiB"
                                f"  (anonymous {smaps['anon'] / 1024:.1f}, "
                                f"file-backed {smaps['file'] / 1024:.1f})",
                                flush=True,
                            )
                        time.sleep(args.interval)
                finally:
                    client.logout()
                if process.poll() is not None:
                    raise RuntimeError(f"sla-daemon exited early; see {log_path}")
                last_rss = rss_kb(process.pid)
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            logged = daemon_events(log_path)
            kinds = Counter(m.message.get("X-SLA-Daemon", "?") for m in sink.messages)
            largest = max((len(m.raw) for m in sink.messages), default=0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cycles = sum(e.get("event") == "cycle.done" for e in logged)
    errors = sum(e.get("level") in ("error", "critical") for e in logged)
    growth = last_rss / first_rss - 1
    verdict = "met" if growth <= GROWTH_TARGET else "NOT MET"
    print(
        f"messages appended {traffic.counter} (backlog {args.backlog}), cycles {cycles}, "
        f"errors logged {errors}, mail at the sink {dict(sorted(kinds.items()))}, "
        f"largest {largest / 1024:.0f} KiB"
    )
    print(f"RSS peak of the minute samples {max(samples) / 1024:.1f} MiB")
    if len(samples) > args.settle:
        # What is filled once (caches, buffers, the first notices of each kind) is filled
        # in the first minutes; growth after them is what would leak.
        settled = samples[args.settle]
        print(
            f"RSS at minute {args.settle} {settled / 1024:.1f} MiB  end {last_rss / 1024:.1f} MiB  "
            f"growth since {last_rss / settled - 1:+.1%}"
        )
    print(
        f"RSS start (after the first cycle) {first_rss / 1024:.1f} MiB  end "
        f"{last_rss / 1024:.1f} MiB  growth {growth:+.1%}  (target <= +{GROWTH_TARGET:.0%}: "
        f"{verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
