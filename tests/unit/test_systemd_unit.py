"""The shipped systemd unit: notify type, reload-safe restarts, and its hardening score."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from sla_daemon.errors import EX_CANTCREAT, EX_CONFIG, EX_DATAERR, EX_STATE_BUSY

UNIT = Path(__file__).parents[2] / "deploy" / "systemd" / "sla-daemon.service"


def _service_section() -> dict[str, list[str]]:
    """Every key of [Service] with all its values (repeated keys rule out configparser)."""
    values: dict[str, list[str]] = {}
    section = None
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


def test_unit_uses_the_notify_protocol_and_never_restarts_on_a_config_error() -> None:
    """Type=notify with a watchdog, reload by SIGHUP; exit 78 is not restarted; state private.

    Neither are the exits of a damaged (65) or unwritable (73) state database: a restart
    meets the same file. A state directory held by another daemon (75) is restarted.
    """
    service = _service_section()
    assert service["Type"] == ["notify"]
    assert service["WatchdogSec"] and service["NotifyAccess"] == ["main"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["Restart"] == ["on-failure"]
    prevented = service["RestartPreventExitStatus"][0].split()
    assert prevented == [str(EX_CONFIG), str(EX_DATAERR), str(EX_CANTCREAT)]
    assert str(EX_STATE_BUSY) not in prevented
    assert service["StateDirectory"] == ["sla-daemon"]
    assert service["StateDirectoryMode"] == ["0700"] and service["UMask"] == ["0077"]
    assert service["ConfigurationDirectory"] == ["sla-daemon"]
    assert len(service["LoadCredential"]) == 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_hardening_is_rated_ok_by_systemd_analyze() -> None:
    """`systemd-analyze security --offline=true` rates the unit at most 2.0 (OK)."""
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert found is not None, result.stdout + result.stderr
    assert float(found.group(1)) <= 2.0, result.stdout
