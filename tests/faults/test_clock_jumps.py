"""Scenario (f): the system clock jumps back an hour, then forward an hour, twice over.

The daemon runs under libfaketime (Debian package ``faketime``), which reads the offset
from a file on every clock read, so the test moves the daemon's wall clock while it
runs; its monotonic clock, which only times waits, is left alone. Dovecot keeps the
real time, so INTERNALDATEs stay true.

What is correct: every deadline is counted from the server's arrival time, and a notice
is due when the daemon's clock says so. While the clock is an hour behind, the
requests look an hour ahead: each still gets its auto-ack, and nothing else is due,
however much real time passes. Back on time (+1 h), the warnings and breaches follow
as usual. A second +1 h jump makes Umbrella's action plans (due 50 min after each
request, warned 40 min before) overdue at once: each gets its breach and no warning
(when a breach is due, the warnings it passed are never sent). Nothing is ever sent
twice: the outbox keys do not depend on the clock.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.faults.conftest import RigFactory
from tests.faults.table import FaultTable
from tests.faults.workload import expected_notices, received_key

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BEHIND_SECONDS = 14.0  # past the first warnings (10 s after a request) on the real clock
LATE_UMBRELLA = {
    "policies": {"standard": {"action_plan": {"within": "50m", "warn_before": ["40m"]}}}
}


def faketime_library() -> str:
    """The path of libfaketime's multi-threaded build (the daemon has threads)."""
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
    if not found:
        reason = "the clock scenario needs libfaketime: apt-get install faketime"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return str(found[0])


def set_offset(path: Path, seconds: int) -> None:
    """Move the daemon's clock to ``seconds`` from the real time (atomically)."""
    staging = path.with_suffix(".new")
    staging.write_text(f"{seconds:+d}\n", encoding="ascii")
    staging.replace(path)


def test_clock_jumps_back_and_forward_an_hour(
    fault_rig: RigFactory, fault_table: FaultTable, tmp_path: Path
) -> None:
    """(f) -1 h after the first wave, +1 h 14 s later, +1 h again once all is settled.

    While behind, only auto-acks go out; back on time, every warning and breach
    follows; after the second jump every Umbrella conversation gets its breach and no
    warning. Every notice exactly once, every message stored, the database sound.
    """
    offset = tmp_path / "faketime.rc"
    set_offset(offset, 0)
    env = {
        "LD_PRELOAD": faketime_library(),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_NO_CACHE": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }
    rig = fault_rig("clock-jumps", overrides=LATE_UMBRELLA, env=env)
    rig.daemon.start()
    behind_since: list[float] = []

    def jump(wave: int) -> None:
        if wave == 0:
            set_offset(offset, -3600)
            behind_since.append(time.monotonic())
        elif wave == 5:
            time.sleep(max(0.0, behind_since[0] + BEHIND_SECONDS - time.monotonic()))
            kinds = {received_key(mail).split("|")[0] for mail in rig.sink.messages}
            assert kinds <= {"auto_ack"}, f"sent while the clock was behind: {kinds}"
            set_offset(offset, 0)

    rig.run_waves(jump)
    rig.settle(expected_notices(rig.name))
    set_offset(offset, 3600)
    expected = expected_notices(rig.name, late_breaches=True)
    rig.settle(expected)
    # The daemon's own log shows both jumps took hold.
    stamps = [
        datetime.fromisoformat(line.split('"timestamp": "')[1].split('"')[0])
        for line in rig.daemon.log_text().splitlines()
        if '"timestamp": "' in line
    ]
    now = datetime.now(UTC)
    assert min(stamps) < now - timedelta(minutes=50)
    assert max(stamps) > now + timedelta(minutes=50)
    rig.verify(fault_table, expected)
