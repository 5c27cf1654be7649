"""Fixtures of the fault suite and the table it prints at the end of the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.harness import FaultRig, build_rig
from tests.faults.table import TABLE, FaultTable
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

RigFactory = Callable[..., FaultRig]


@pytest.fixture(scope="session")
def fault_table() -> FaultTable:
    """The session's table of scenario results."""
    return TABLE


@pytest.fixture
def fault_rig(
    private_dovecot: Callable[..., DovecotServer], smtp_sink: SmtpSink, tmp_path: Path
) -> Iterator[RigFactory]:
    """Build the scenario's rig (``build_rig``'s keywords); its daemon is killed after."""
    rigs: list[FaultRig] = []

    def build(name: str, **settings: Any) -> FaultRig:
        rig = build_rig(name, private_dovecot(), smtp_sink, tmp_path, **settings)
        rigs.append(rig)
        return rig

    yield build
    for rig in rigs:
        rig.daemon.ensure_dead()
        # Kept beside the daemon's log: when a scenario fails, the server's side of it.
        (tmp_path / f"dovecot-{rig.name}.log").write_text(rig.dovecot.log_text())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the table of every scenario that ran, so that CI output shows it."""
    lines = TABLE.lines()
    if lines:
        terminalreporter.write_sep("=", "fault suite")
        for line in lines:
            terminalreporter.write_line(line)
