"""Idle-cycle benchmark: the CPU time of one daemon cycle when nothing is new or due.

Run from the repository root (``make bench`` does)::

    .venv/bin/python benchmarks/idle_cycle.py [--conversations 10000] [--cycles 20]

A service is built by ``build_service`` from a generated configuration (20 accounts, the
standard policy) over a real SQLite store in a temporary ``state_dir``, holding N open
conversations of 2 to 6 messages: a client request opened in the last 20 hours, a team
reply within 30 minutes, then client and team messages, no action plan yet, so that
nothing falls due during the run. Its source is an empty local Maildir (nothing new),
its SMTP server a sink that receives nothing.

The first cycle evaluates every conversation (as after a start), the second takes in
what the first recorded; the figure is the median ``time.process_time`` of the cycles
after them. The baseline is the first cycle's, measured in the same run. Target <= 50 ms.
Nothing here asserts.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import TEAM_DOMAIN, accounts_yaml, banner, client_domains, config_head  # noqa: E402
from sla_daemon.adapters.store import Store  # noqa: E402
from sla_daemon.app import build_service  # noqa: E402
from sla_daemon.clock import FixedClock  # noqa: E402
from sla_daemon.config import load_config  # noqa: E402
from sla_daemon.core.model import Address, FolderKind, MessageFacts  # noqa: E402
from sla_daemon.logs import configure_logging  # noqa: E402
from tests.servers.smtp_sink import SmtpSink  # noqa: E402

TARGET_MS = 50.0
CLIENT_DOMAINS = client_domains(20)


def config_text(state_dir: Path, maildir: Path, smtp: tuple[str, int]) -> str:
    """One empty Maildir, the sink, 20 accounts on the standard policy."""
    return (
        config_head(state_dir)
        + f"""\
mailboxes:
  - name: support
    path: {maildir}
    format: maildir
smtp:
  host: {smtp[0]}
  port: {smtp[1]}
  security: none
policies:
  standard:
    acknowledge: {{within: 1h, warn_before: [15m]}}
    action_plan: {{within: 48h, warn_before: [24h, 4h]}}
    auto_ack: true
{accounts_yaml(CLIENT_DOMAINS)}"""
    )


def fill(store: Store, count: int, now: datetime, seed: int = 11) -> int:
    """Store ``count`` open conversations as the daemon would; return the message count."""
    rng = random.Random(seed)
    support = (Address(f"support@{TEAM_DOMAIN}", "Acme Support"),)
    stored = 0
    with store.transaction():
        for number in range(count):
            domain = CLIENT_DOMAINS[number % len(CLIENT_DOMAINS)]
            client = Address(f"user{number % 997}@{domain}", "Client")
            team = Address(f"agent{number % 7}@{TEAM_DOMAIN}", "Agent")
            at = now - timedelta(minutes=rng.randint(60, 1200))
            subject = f"Request {number}: export stopped"
            parent: str | None = None
            for index in range(rng.randint(2, 6)):
                from_team = index % 2 == 1
                message_id = f"idle{number}-{index}@{TEAM_DOMAIN if from_team else domain}"
                facts = MessageFacts(
                    message_id=message_id,
                    arrived_at=at,
                    subject=subject if index == 0 else f"Re: {subject}",
                    sender=team if from_team else client,
                    to=(client,) if from_team else support,
                    in_reply_to=parent,
                    references=(parent,) if parent else (),
                    body_text="We are on it." if from_team else "It stopped again.",
                    folder="Sent" if from_team else "INBOX",
                    folder_kind=FolderKind.SENT if from_team else FolderKind.INBOX,
                )
                store.add_message(facts, f"conv-{number}", at)
                stored += 1
                parent = message_id
                at += timedelta(minutes=rng.randint(1, 30) if index == 0 else rng.randint(1, 60))
                at = min(at, now)
    return stored


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the idle cycle's CPU time beside the first cycle's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--cycles", type=int, default=20, help="idle cycles measured")
    args = parser.parse_args(argv)
    banner("idle-cycle")
    configure_logging(level="warning")
    work = Path(tempfile.mkdtemp(prefix="sla-idle-"))
    try:
        maildir = work / "Maildir"
        for folder in (maildir, maildir / ".Sent"):
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True)
        with SmtpSink() as sink:
            path = work / "config.yaml"
            path.write_text(config_text(work / "state", maildir, (sink.host, sink.port)))
            config = load_config(path)
            now = datetime.now(UTC).replace(microsecond=0)
            store = Store.in_dir(config.state_dir)
            started = time.perf_counter()
            messages = fill(store, args.conversations, now)
            print(f"stored {messages:,} messages in {time.perf_counter() - started:.1f} s")
            store.close()
            service = build_service(config, clock=FixedClock(now))
            try:
                times = []
                for _ in range(2 + args.cycles):
                    started = time.process_time()
                    report = service.run_cycle()
                    times.append(time.process_time() - started)
                    if report.sent or report.fetched:
                        print(f"  a cycle fetched {report.fetched} and sent {report.sent}")
                evaluated = len(service.last_evaluations)
            finally:
                service.close()
            received = len(sink.messages)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    first, settling, idle = times[0], times[1], statistics.median(times[2:])
    verdict = "met" if idle * 1000 <= TARGET_MS else "NOT MET"
    print(f"{args.conversations:,} open conversations ({evaluated:,} kept), mail sent {received}")
    print(f"first cycle (every conversation evaluated)  {first * 1000:9.1f} ms CPU  (baseline)")
    print(f"second cycle (what the first recorded)      {settling * 1000:9.1f} ms CPU")
    print(
        f"idle cycle, median of {args.cycles}                  {idle * 1000:9.2f} ms CPU  "
        f"{idle / first:.4f}x baseline  (target <= {TARGET_MS:g} ms: {verdict})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
