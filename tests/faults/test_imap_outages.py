"""Scenarios (a) and (b): the IMAP server crashes, or stays down past every retry.

The daemon reads three mailboxes on one Dovecot (one watched with IDLE). A Dovecot
that is down makes each cycle report the mailboxes unavailable after its bounded
connection retries; the cycle still decides and sends what is due from the store, and
the next cycles read on from each folder's stored cursor once the server is back.
"""

from __future__ import annotations

import random
import threading
import time

import pytest

from tests.faults.conftest import RigFactory
from tests.faults.table import FaultTable
from tests.faults.workload import expected_notices

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SEED = 7001
CRASHES = 10
# The polling connection gives up after 3 attempts (1 s, then 2 s apart) and the IDLE
# watcher's wait doubles up to ``reconnect_max``, here 4 s: 25 s down spans several
# cycles' give-ups and keeps the watcher retrying at its ceiling for over 15 s.
RECONNECT_MAX_SECONDS = 4
OUTAGE_SECONDS = 25.0


def test_dovecot_sigkilled_ten_times_loses_nothing(
    fault_rig: RigFactory, fault_table: FaultTable
) -> None:
    """(a) Dovecot SIGKILLed 10 times during the workload and restarted on its port.

    Every client message is stored, every due notice arrives exactly once, the state
    database is sound and the daemon is still running.
    """
    rig = fault_rig("dovecot-sigkill")
    rig.daemon.start()
    rng = random.Random(SEED)
    crashes: list[float] = []

    def crash_repeatedly() -> None:
        for _ in range(CRASHES):
            time.sleep(rng.uniform(0.3, 1.5))
            rig.dovecot.crash()
            crashes.append(time.monotonic())
            time.sleep(rng.uniform(0.0, 0.5))
            rig.dovecot.resume()

    crasher = threading.Thread(target=crash_repeatedly)
    crasher.start()
    try:
        rig.run_waves()
    finally:
        crasher.join(timeout=120)
    assert len(crashes) == CRASHES
    expected = expected_notices(rig.name)
    rig.settle(expected)
    rig.verify(fault_table, expected)


def test_dovecot_down_past_the_retry_ceiling_then_back(
    fault_rig: RigFactory, fault_table: FaultTable
) -> None:
    """(b) Dovecot stopped for longer than every IMAP retry, mid-workload, then started.

    The daemon does not exit: it keeps deciding from the store meanwhile, and once the
    server is back it reads everything delivered before and after; notices exactly
    once, every message stored, the database sound.
    """
    rig = fault_rig("dovecot-down", mailbox_settings={"reconnect_max": f"{RECONNECT_MAX_SECONDS}s"})
    rig.daemon.start()
    down_before = rig.daemon.log_text().count('"source.unavailable"')

    def outage(wave: int) -> None:
        if wave == 4:
            rig.dovecot.halt()
            time.sleep(OUTAGE_SECONDS)
            assert rig.daemon.running, rig.daemon.tail()
            rig.dovecot.resume()

    rig.run_waves(outage)
    expected = expected_notices(rig.name)
    rig.settle(expected)
    # The outage was seen: cycles reported the mailboxes unavailable and went on, and
    # the IDLE watcher's waits reached their ceiling: the outage outlasted every retry.
    log = rig.daemon.log_text()
    assert log.count('"source.unavailable"') > down_before
    assert f'"retry_in_s": {float(RECONNECT_MAX_SECONDS)}' in log, rig.daemon.tail()
    rig.verify(fault_table, expected)
