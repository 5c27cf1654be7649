"""Evaluation benchmark: the engine over 100,000 open conversations, beside a baseline.

Run from the repository root (``make bench`` does)::

    .venv/bin/python benchmarks/evaluate.py [--conversations 100000] [--profile FILE]

Synthetic, seeded conversations of 2 to 6 messages (a client request, team replies, some
with an action plan or the waiting-on-client keyword, client follow-ups and courtesy
replies), for 20 accounts on three policies and three calendars (24x7, an office
calendar in Europe/Berlin with German holidays, one in America/New_York), opened over
the last ten days. It measures, in one run:

- **baseline**: a loop that builds one dict per message of every conversation (what any
  pass over the same data costs at least, in this interpreter on this machine);
- **full pass**: ``engine.evaluate`` of every conversation (a daemon's first start, or
  a start or reload under changed rules), cold: every message is judged afresh (nothing
  the engine keeps per message object has been worked out yet), with the collector
  settings the daemon's own full pass uses (``collections_pause.fewer_collections``);
- **start from stored summaries**: what a daemon start costs when the rules are those
  the summaries were made under, over a real SQLite store that holds every message (as
  the daemon stored them) and the summaries ``EvaluationCache.settle`` wrote after the
  first pass (as the service writes them): a fresh ``EvaluationCache.refresh`` reading
  the store's conversations, journal and summaries, evaluating only the conversations
  due, then ``evaluations()`` and the metrics; target <= 1 s for 100,000;
- **incremental cycle**: ``EvaluationCache.refresh`` of the same conversations after the
  full one, at a time when 1% of them changed and nothing else is due (what a cycle
  with new mail costs); the changed conversations are fresh message objects, as the
  store hands them out on every read.

Nothing here asserts: every figure is printed with its baseline or target and a ratio.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.common import TEAM_DOMAIN, accounts_yaml, banner, client_domains, config_head  # noqa: E402
from sla_daemon.adapters.store import Store  # noqa: E402
from sla_daemon.clock import FixedClock  # noqa: E402
from sla_daemon.collections_pause import fewer_collections  # noqa: E402
from sla_daemon.config import load_config  # noqa: E402
from sla_daemon.core.engine import evaluate  # noqa: E402
from sla_daemon.core.model import (  # noqa: E402
    Address,
    Evaluation,
    FolderKind,
    MessageFacts,
    Rules,
    SentNotice,
)
from sla_daemon.evaluation_cache import EvaluationCache  # noqa: E402
from sla_daemon.metrics import DaemonMetrics  # noqa: E402
from sla_daemon.rules_from_config import build_rules  # noqa: E402
from sla_daemon.service import CycleReport  # noqa: E402
from sla_daemon.summary_codec import ConversationSummary  # noqa: E402

TARGET_SECONDS = 1.0
CLIENT_DOMAINS = client_domains(20)
POLICIES = ("standard", "office", "gold")
NOW = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
RULES = "benchmark-rules"
"""The summaries' rules fingerprint: the same for both starts, as for an unchanged config."""


def config_text() -> str:
    """A configuration with three calendars, three policies and 20 accounts."""
    return (
        config_head("/nonexistent/sla-bench")
        + f"""\
mailboxes:
  - name: support
    path: /nonexistent/maildir
    format: maildir
smtp:
  host: 127.0.0.1
  port: 25
  security: none
calendars:
  office:
    timezone: Europe/Berlin
    hours: {{mon-thu: ["09:00-12:30", "13:30-18:00"], fri: ["09:00-16:00"]}}
    holidays: {{country: DE, dates: [2026-12-24]}}
  newyork:
    timezone: America/New_York
    hours: {{mon-fri: ["08:00-17:00"]}}
    holidays: {{country: US}}
policies:
  standard:
    acknowledge: {{within: 1h, warn_before: [15m]}}
    action_plan: {{within: 48h, warn_before: [24h, 4h]}}
    re_escalate_every: 24h
  office:
    calendar: office
    acknowledge: {{within: 4h, warn_before: [1h]}}
    action_plan: {{within: 16h, warn_before: [8h, 2h]}}
    follow_up_after: 5d
  gold:
    calendar: newyork
    acknowledge: {{within: 30m, warn_before: [10m]}}
    action_plan: {{within: 8h, warn_before: [4h, 1h]}}
    re_escalate_every: 4h
{accounts_yaml(CLIENT_DOMAINS, POLICIES)}markers:
  action_plan: {{subject_tags: ["[Action Plan]"], body_patterns: ['(?im)^\\s*action plan\\s*:']}}
  waiting_on_client: {{imap_keywords: ["$WaitingOnClient"]}}
"""
    )


def load_rules() -> Rules:
    """The rules of ``config_text``, as the daemon builds them."""
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "config.yaml"
        path.write_text(config_text(), encoding="utf-8")
        return build_rules(load_config(path), today=NOW.date())


def conversations(count: int, seed: int = 5) -> dict[str, list[MessageFacts]]:
    """``count`` seeded conversations of 2 to 6 messages, opened over the last ten days."""
    rng = random.Random(seed)
    result: dict[str, list[MessageFacts]] = {}
    support = (Address(f"support@{TEAM_DOMAIN}", "Acme Support"),)
    for number in range(count):
        domain = CLIENT_DOMAINS[number % len(CLIENT_DOMAINS)]
        client = Address(f"user{number % 997}@{domain}", "Client")
        team = Address(f"agent{number % 7}@{TEAM_DOMAIN}", "Agent")
        at = NOW - timedelta(minutes=rng.randint(5, 14_400))
        subject = f"Request {number}: export stopped"
        opening = MessageFacts(
            message_id=f"c{number}-0@{domain}",
            arrived_at=at,
            subject=subject,
            sender=client,
            to=support,
            body_text="Our export stopped again, could you have a look?",
        )
        history = [opening]
        for index in range(1, rng.randint(2, 6)):
            at += timedelta(minutes=rng.randint(10, 600))
            if at > NOW:
                break
            parent = history[-1].message_id
            roll = rng.random()
            if roll < 0.5:
                plan = rng.random() < 0.3
                history.append(
                    MessageFacts(
                        message_id=f"c{number}-{index}@{TEAM_DOMAIN}",
                        arrived_at=at,
                        subject=f"{'[Action Plan] ' if plan else ''}Re: {subject}",
                        sender=team,
                        to=(client,),
                        in_reply_to=parent,
                        references=(parent,),
                        keywords=("$WaitingOnClient",) if rng.random() < 0.15 else (),
                        body_text="We are looking into it.",
                        folder_kind=FolderKind.SENT,
                    )
                )
            else:
                courtesy = roll > 0.9
                history.append(
                    MessageFacts(
                        message_id=f"c{number}-{index}@{domain}",
                        arrived_at=at,
                        subject=f"Re: {subject}",
                        sender=client,
                        to=support,
                        in_reply_to=parent,
                        references=(parent,),
                        body_text="Thanks!" if courtesy else "It happened again at 10:00.",
                    )
                )
        result[f"conv-{number}"] = history
    return result


@dataclass
class MemoryReader:
    """The conversations in memory, as the cache reads them from the store."""

    histories: dict[str, list[MessageFacts]]
    changed: list[str] = field(default_factory=list)

    def conversation_ids(self) -> list[str]:
        """Every conversation."""
        return list(self.histories)

    def conversation_messages(self, conversation_id: str) -> list[MessageFacts]:
        """One conversation's messages."""
        return self.histories.get(conversation_id, [])

    def notices_for(self, conversation_id: str) -> dict[str, SentNotice]:
        """No notices: every conversation is as on a first start."""
        return {}

    def changed_conversations(self) -> tuple[int, list[str]]:
        """The conversations marked changed."""
        return len(self.changed), list(self.changed)

    def summaries(self, rules_fingerprint: str) -> list[ConversationSummary]:
        """None: the first pass makes them."""
        return []


def baseline(histories: dict[str, list[MessageFacts]]) -> float:
    """Seconds to build one small dict per message of every conversation."""
    started = time.perf_counter()
    for conversation_id, history in histories.items():
        rows = [
            {"id": m.message_id, "at": m.arrived_at, "conversation": conversation_id}
            for m in history
        ]
        del rows
    return time.perf_counter() - started


def full_pass(histories: dict[str, list[MessageFacts]], rules: Rules) -> list[Evaluation]:
    """``evaluate`` of every conversation at NOW, as the daemon's full pass runs it."""
    with fewer_collections():
        return [evaluate(cid, history, rules, {}, NOW) for cid, history in histories.items()]


def stored(histories: dict[str, list[MessageFacts]], path: Path) -> Store:
    """A store at ``path`` holding every message, with the journal of them forgotten.

    As a daemon's store after it evaluated them: each stored message puts its
    conversation in the journal until a cycle has taken it in.
    """
    store = Store(path)
    with store.transaction():
        for conversation_id, history in histories.items():
            for facts in history:
                store.add_message(facts, conversation_id, NOW)
    store.forget_changes(store.changed_conversations()[0])
    return store


def start_from_summaries(rules: Rules, store: Store) -> tuple[float, list[Evaluation]]:
    """Seconds a start takes from the summaries in ``store``, and what it evaluated.

    A second after the summaries were made: a new cache's first refresh from the store,
    ``evaluations()`` (the service's ``last_evaluations``) and the metrics.
    """
    metrics = DaemonMetrics(FixedClock(NOW))
    later = NOW + timedelta(seconds=1)
    # A daemon starting has none of this run's other objects (three copies of every
    # conversation, two passes' evaluations): the collector is told to skip them, as it
    # would not find them, so only what the start itself makes is walked.
    gc.collect()
    gc.freeze()
    try:
        started = time.perf_counter()
        cache = EvaluationCache(RULES)
        refresh = cache.refresh(store, rules, later)
        cache.evaluations()
        metrics.observe_cycle(CycleReport(), cache.counts(), {}, None)
        return time.perf_counter() - started, refresh.evaluated
    finally:
        gc.unfreeze()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print every figure beside its baseline and target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--profile", type=Path, default=None, help="cProfile the full pass")
    args = parser.parse_args(argv)
    banner("evaluation")
    rules = load_rules()
    histories = conversations(args.conversations)
    messages = sum(len(h) for h in histories.values())
    base = min(baseline(histories) for _ in range(2))
    if args.profile is not None:
        # On a copy: the timed pass below must not find any message already judged.
        fresh = conversations(args.conversations)
        cProfile.runctx("full_pass(fresh, rules)", globals(), locals(), str(args.profile))
        del fresh
    started, cpu_started = time.perf_counter(), time.process_time()
    evaluations = full_pass(histories, rules)
    full, full_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    states: dict[str, int] = {}
    for evaluation in evaluations:
        states[evaluation.status.state.value] = states.get(evaluation.status.state.value, 0) + 1
    decisions = sum(len(e.decisions) for e in evaluations)

    cache = EvaluationCache(RULES)
    reader = MemoryReader(histories)
    first = cache.refresh(reader, rules, NOW)
    work = tempfile.TemporaryDirectory()
    store = stored(histories, Path(work.name) / "state.sqlite3")
    started = time.perf_counter()
    cache.settle(store, first, keep_summaries=True)  # as the service does after the outbox
    keep_seconds = time.perf_counter() - started
    reader.histories = conversations(args.conversations)  # what a store read hands out: new objects
    reader.changed = list(histories)[::100]
    later = NOW + timedelta(seconds=1)
    started = time.perf_counter()
    refreshed = cache.refresh(reader, rules, later)
    incremental = time.perf_counter() - started
    reader.changed = []
    started = time.perf_counter()
    idle = cache.refresh(reader, rules, later)
    idle_seconds = time.perf_counter() - started

    start_seconds, start_evaluated = start_from_summaries(rules, store)
    store.close()
    work.cleanup()

    count = len(histories)
    verdict = "met" if start_seconds <= TARGET_SECONDS else "NOT MET"
    print(f"{count:,} conversations, {messages:,} messages; states {dict(sorted(states.items()))}")
    print(f"decisions at NOW: {decisions:,}")
    print(f"baseline (one dict per message)        {base:8.3f} s")
    print(
        f"full pass (first start, rules change) {full:8.3f} s  {full / base:6.1f}x baseline  "
        f"{count / full:,.0f} conversations/s"
    )
    # On a shared machine the wall time counts other jobs too; the CPU time does less so.
    print(f"full pass, CPU time of this process   {full_cpu:8.3f} s")
    print(f"keeping the summaries (SQLite, once)  {keep_seconds:8.3f} s")
    print(
        f"start from stored summaries           {start_seconds:8.3f} s  "
        f"{start_seconds / base:6.1f}x baseline  {len(start_evaluated):,} evaluated  "
        f"(target <= {TARGET_SECONDS:g} s: {verdict})"
    )
    print(
        f"incremental cycle, {len(refreshed.evaluated):,} changed  {incremental:8.3f} s  "
        f"{incremental / base:6.2f}x baseline"
    )
    print(
        f"idle cycle, nothing changed or due     {idle_seconds * 1000:8.3f} ms  "
        f"({len(idle.evaluated)} evaluated)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
