"""A batch mail in flight at a SIGKILL goes again as recorded, never recomposed.

A sending process (``NoticeDelivery`` with the real ``SmtpSender`` over a real SQLite
file) delivers two of the owner's notices held in the batching window as one batch mail.
The aiosmtpd sink records that mail and, before it answers, SIGKILLs the process: the
server took the batch, the database never heard. Before the restart two more notices
for the owner fall due, one whose key sorts before the batch's first notice (under
the old composition at send time it would have named a new mail carrying all four).

The restarted process must send the recorded batch again (same Message-ID, same bytes)
and the two new notices in a later mail of their own; a further run sends nothing.
Measured: about 2 seconds (three short Python processes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sla_daemon.adapters.store import Store
from sla_daemon.core.model import NoticeKind
from tests.notice_tally import tally
from tests.notices import OWNER, queue_notice
from tests.servers.smtp_sink import ReceivedMail, SmtpSink

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DECIDED = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
# One delivery pass, as the daemon's flush makes it: a five-minute batching window.
SENDING = """
import sys
from datetime import datetime, timedelta
from pathlib import Path

from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.adapters.store import Store
from sla_daemon.delivery import DeliverySettings, NoticeDelivery
from tests.notices import renderer

NoticeDelivery(
    store=Store(Path(sys.argv[1])),
    sender=SmtpSender("127.0.0.1", int(sys.argv[2]), "none", None, None, timeout=10.0),
    settings=DeliverySettings(digest_window=timedelta(minutes=5)),
    batch_renderer=renderer(),
).run(datetime.fromisoformat(sys.argv[3]))
"""


def _sending(database: Path, sink: SmtpSink, now: datetime) -> subprocess.Popen[bytes]:
    """Start one delivery pass at ``now`` as its own process."""
    return subprocess.Popen(
        [sys.executable, "-c", SENDING, str(database), str(sink.port), now.isoformat()],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` and return its exit status."""
    _, stderr = process.communicate(timeout=60)
    assert process.returncode in (0, -signal.SIGKILL), stderr.decode(errors="replace")
    return process.returncode


def test_a_batch_accepted_then_killed_is_resent_once_as_recorded(
    smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """SIGKILL after the sink took the batch: the same mail once more, new notices later.

    Every notice arrives; each batch key arrives under one Message-ID; the one repeat is
    the mail in flight, byte for byte; the state database shows each notice sent by the
    batch that carried it.
    """
    database = tmp_path / "state.sqlite3"
    store = Store(database)
    queue_notice(store, "b1", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "b2", NoticeKind.FOLLOW_UP, (OWNER,), DECIDED)
    store.close()

    victim: list[int] = []

    def kill_on_batch(mail: ReceivedMail) -> None:
        os.kill(victim[0], signal.SIGKILL)

    smtp_sink.on_receive = kill_on_batch
    first = _sending(database, smtp_sink, DECIDED + timedelta(minutes=5))
    victim.append(first.pid)
    assert _finish(first) == -signal.SIGKILL
    smtp_sink.on_receive = None
    [in_flight] = smtp_sink.messages

    store = Store(database)  # meanwhile, two more notices fall due for the owner
    queue_notice(store, "a0", NoticeKind.WARNING, (OWNER,), DECIDED)
    queue_notice(store, "c9", NoticeKind.CHECK_IN, (OWNER,), DECIDED)
    store.close()
    for minutes in (6, 60):  # the restart, then a later pass that must send nothing
        assert _finish(_sending(database, smtp_sink, DECIDED + timedelta(minutes=minutes))) == 0

    received = smtp_sink.messages
    batch_b1, batch_a0 = f"batch|{OWNER}|b1", f"batch|{OWNER}|a0"
    counted = tally({batch_b1, batch_a0}, received, lambda m: str(m.message["X-SLA-Notice-Key"]))
    assert counted.exactly_once and counted.duplicated == 1, counted.describe()
    assert [str(m.message["X-SLA-Notice-Key"]) for m in received] == [batch_b1, batch_b1, batch_a0]
    assert received[1].raw == in_flight.raw
    store = Store(database)
    carried = {d.key: (d.state, d.via) for d in store.deliveries()}
    assert carried == {
        "b1": ("sent", batch_b1),
        "b2": ("sent", batch_b1),
        "a0": ("sent", batch_a0),
        "c9": ("sent", batch_a0),
    }
