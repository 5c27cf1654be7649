"""Scenario (c): the SMTP server refuses in bursts of 421 and 451, then is down a while.

A refused or unreachable delivery stays in the outbox and is tried again after
``notices.delivery.retry_first`` (1 s here), the wait doubling up to ``retry_max``
(2 s); none is given up before ``give_up_after`` (2 days), so all arrive in the end.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.conftest import RigFactory
from tests.faults.table import FaultTable
from tests.faults.workload import expected_notices

pytestmark = [pytest.mark.faults, pytest.mark.integration]

TEMPORARY_FAILURE = "451 4.3.0 Try again later"
SHUTTING_DOWN = "421 4.3.2 Service shutting down"  # the sink also hangs up after it
DOWN_SECONDS = 12.0


def test_smtp_refusals_and_outage_deliver_every_notice_once(
    fault_rig: RigFactory, fault_table: FaultTable
) -> None:
    """(c) 451 and 421 bursts at DATA and RCPT, then the sink stopped 12 s and restarted.

    Every due notice arrives exactly once (a refused mail was not received, so trying
    it again is no repeat); every message is stored; the database is sound; the daemon
    runs; the refusals were retried, each retry logged.
    """
    rig = fault_rig("smtp-refusals")
    sink = rig.sink

    def refuse(wave: int) -> None:
        if wave == 1:
            sink.data_replies.extend([TEMPORARY_FAILURE] * 25)
        elif wave == 3:
            sink.data_replies.extend([SHUTTING_DOWN, TEMPORARY_FAILURE] * 6)
            sink.rcpt_replies["alice@acme.example"] = [SHUTTING_DOWN] * 4
        elif wave == 6:
            sink.stop()
            time.sleep(DOWN_SECONDS)
            assert rig.daemon.running, rig.daemon.tail()
            sink.start()

    rig.daemon.start()
    rig.run_waves(refuse)
    assert not sink.data_replies, "the script of refusals was not used up"
    expected = expected_notices(rig.name)
    rig.settle(expected)
    assert '"notice.retry_scheduled"' in rig.daemon.log_text()
    rig.verify(fault_table, expected)
