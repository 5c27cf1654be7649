"""A 10,000-message thread through one cycle of the service and its SQLite store.

Every reply arrives before its parent (the service threads a batch in arrival order),
so each parent is found only through the link its reply left: the cycle must store
every message, end with one conversation and evaluate it.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sla_daemon.adapters.store import Store
from tests.unit.builders import NOW
from tests.unit.test_service import FakeSender, FakeSource, _raw, _service

LENGTH = 10_000


def test_a_10000_message_thread_arriving_replies_first_is_one_conversation(
    tmp_path: Path,
) -> None:
    """10,000 messages, each replying to the one before, threaded replies first: one thread."""
    # One message built as a client writes it, the rest as copies with their own ids:
    # building 10,000 EmailMessages would cost more than the cycle itself.
    template = _raw("t0@globex.example", "dana@globex.example", "Re: Help", NOW)
    messages = []
    for n in range(LENGTH):
        at = NOW - timedelta(minutes=n + 1)  # t0, the thread's root, arrives last
        raw = template.replace(b"<t0@globex.example>", f"<t{n}@globex.example>".encode())
        if n:
            relation = f"In-Reply-To: <t{n - 1}@globex.example>\n".encode()
            raw = relation + raw
        messages.append((raw, at))
    store = Store(tmp_path / "state.sqlite3")
    try:
        report = _service(store, FakeSource(messages), FakeSender()).run_cycle()
        assert report.stored == LENGTH
        [conversation] = store.conversation_ids()
        assert len(store.conversation_messages(conversation)) == LENGTH
    finally:
        store.close()
