"""Scenario (d): the daemon SIGKILLed at 22 points while the workload runs, restarted each time.

Half of the kills come after a seeded random delay from the start (landing in start-up,
sync, deciding and sending alike), half from inside the SMTP sink right after it
recorded a mail and before it answered, so that the mail in flight was received but
never marked sent. After each kill the daemon is started again at once, as systemd's
``Restart=`` would. ``tests/integration/test_crash_exactly_once.py`` does the same on a
single mailbox whose notices are all due at start; here mail keeps arriving.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from tests.faults.conftest import RigFactory
from tests.faults.harness import FaultRig
from tests.faults.table import FaultTable
from tests.faults.workload import expected_notices
from tests.servers.smtp_sink import ReceivedMail

pytestmark = [pytest.mark.faults, pytest.mark.integration]

SEED = 7004
KILLS = 22
IN_FLIGHT_WAIT = 4.0  # seconds a kill from the sink waits for a mail before it kills anyway


def _kill_repeatedly(rig: FaultRig, in_flight: list[int]) -> None:
    """SIGKILL and restart the daemon ``KILLS`` times, alternating the two kinds."""
    rng = random.Random(SEED)
    for number in range(KILLS):
        if number % 2 == 0:
            time.sleep(rng.uniform(0.2, 2.5))
        else:
            process = rig.daemon.process
            assert process is not None
            fired = threading.Event()

            def kill_in_flight(
                _: ReceivedMail, pid: int = process.pid, fired: threading.Event = fired
            ) -> None:
                if not fired.is_set():
                    fired.set()
                    os.kill(pid, signal.SIGKILL)

            rig.sink.on_receive = kill_in_flight
            if fired.wait(IN_FLIGHT_WAIT):
                in_flight.append(number)
            rig.sink.on_receive = None
        rig.daemon.sigkill()
        rig.daemon.start()


def test_daemon_sigkilled_22_times_repeats_at_most_the_mail_in_flight(
    fault_rig: RigFactory, fault_table: FaultTable
) -> None:
    """(d) 22 SIGKILLs of the daemon, each followed by a restart, during the workload.

    Every due notice arrives, each under one Message-ID; the only extra mails are
    repeats of a mail in flight, at most one per kill; every message is stored; the
    database is sound; the last daemon started is running.
    """
    rig = fault_rig("daemon-sigkill")
    rig.daemon.start()
    in_flight: list[int] = []
    killer = threading.Thread(target=_kill_repeatedly, args=(rig, in_flight))
    killer.start()
    try:
        rig.run_waves()
    finally:
        killer.join(timeout=180)
    assert not killer.is_alive()
    assert rig.daemon.starts == KILLS + 1
    assert in_flight, "no kill landed while a mail was in flight"
    expected = expected_notices(rig.name)
    rig.settle(expected)
    rig.verify(fault_table, expected, allowed_repeats=KILLS)
