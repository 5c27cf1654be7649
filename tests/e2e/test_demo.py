"""The README's first command: the demo runs the real pipeline and sends each notice once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SLA_DAEMON = str(Path(sys.executable).parent / "sla-daemon")


def _demo(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SLA_DAEMON, "demo", "--dir", str(directory)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_demo_sends_an_auto_ack_a_warning_and_a_breach_then_nothing_twice(
    tmp_path: Path,
) -> None:
    """The demo shows four conversations and three notices; run again, it sends none."""
    first = _demo(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "Notices received by the SMTP sink (3)" in first.stdout
    for expected in ("[SLA warning] Initech", "[SLA breach] Globex", "Subject: Re: Checkout"):
        assert expected in first.stdout
    assert "4 conversation(s), 1 with a missed deadline" in first.stdout
    second = _demo(tmp_path)
    assert second.returncode == 0, second.stderr
    assert "Notices received by the SMTP sink (0)" in second.stdout
