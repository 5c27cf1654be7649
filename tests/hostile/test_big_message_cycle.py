"""A 100 MB message in a real mailbox: one ``run --once`` stays small and reads on past it.

The message is APPENDed to a private Dovecot (which sets no size limit of its own),
followed by an ordinary client message. The daemon fetches the big one's header and the
first ``max_body_bytes`` of its text only, so the process' peak RSS (its own VmHWM)
stays far below the message's size, and the message after it
is stored and acknowledged like any other.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.hostile.cli import IMAP_PASSWORD_ENV, Endpoints, run_cli, write_config
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
PASSWORD = "Big-Message-Password-3"


def _big_message(at: datetime) -> bytes:
    head = build_mail(
        "big@globex.example", sender="Dana <dana@globex.example>", subject="Logs attached", at=at
    )
    del head["Content-Type"]
    del head["Content-Transfer-Encoding"]
    head["Content-Type"] = "text/plain; charset=us-ascii"
    line = b"0123456789" * 7 + b"abcdef\r\n"
    body = line * (100 * MiB // len(line))
    return bytes(head)[: bytes(head).index(b"\n\n") + 1].replace(b"\n", b"\r\n") + b"\r\n" + body


# The command line of the console script, in an interpreter that reports its own peak
# RSS when it exits. The kernel's figure for a child (wait4, RUSAGE_CHILDREN) would
# include the test process' memory at fork time; VmHWM after exec is the daemon's alone.
_MEASURED_RUN = """
import atexit, re, sys
from pathlib import Path
def report():
    status = Path("/proc/self/status").read_text()
    kib = re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)
    Path(sys.argv[1]).write_text(kib)
atexit.register(report)
from sla_daemon.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _run_once_peak_rss(config: Path, log: Path) -> tuple[int, int]:
    """``run --once`` in a child process; return its exit status and peak RSS in bytes."""
    peak_file = log.with_suffix(".peak")
    command = [sys.executable, "-c", _MEASURED_RUN, str(peak_file), "--config", str(config)]
    with log.open("w") as output:
        status = subprocess.run(
            [*command, "run", "--once"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={IMAP_PASSWORD_ENV: PASSWORD, "PATH": "/usr/bin:/bin"},
            check=False,
            timeout=300,
        ).returncode
    return status, int(peak_file.read_text()) * 1024


def test_a_100_mb_message_is_fetched_capped_and_the_next_message_is_processed(
    private_dovecot: Callable[..., DovecotServer], smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Peak RSS of the cycle < 200 MB; the big message is cut, both are acknowledged."""
    server = private_dovecot()
    server.add_user("big", PASSWORD)
    now = datetime.now(UTC).replace(microsecond=0)
    big = _big_message(now)
    assert len(big) > 100 * 1000 * 1000
    after = build_mail(
        "after@globex.example", sender="Eve <eve@globex.example>", subject="Hi", at=now
    )
    server.append_many(
        "big",
        "INBOX",
        [(big, now - timedelta(minutes=2), ()), (after.as_bytes(), now - timedelta(minutes=1), ())],
    )
    del big
    ends = Endpoints(
        imap_host=server.host,
        imap_port=server.port,
        imap_security="none",
        imap_user="big",
        smtp_host=smtp_sink.host,
        smtp_port=smtp_sink.port,
        smtp_security="none",
    )
    config = write_config(tmp_path / "config.yaml", tmp_path / "state", ends)

    status, peak_rss = _run_once_peak_rss(config, tmp_path / "run.log")

    log = (tmp_path / "run.log").read_text()
    assert status == 0, log
    print(f"peak RSS of run --once: {peak_rss / MiB:.0f} MiB")
    assert peak_rss < 200 * MiB, f"peak RSS {peak_rss / MiB:.0f} MiB"
    cut = [json.loads(line) for line in log.splitlines() if "imap message body cut" in line]
    assert len(cut) == 1 and cut[0]["size"] > 100 * 1000 * 1000
    assert cut[0]["kept"] <= 256 * 1024 + 64 * 1024  # the body limit, plus the header
    acked = sorted(mail.rcpt_tos for mail in smtp_sink.wait_for(2))
    assert acked == [("dana@globex.example",), ("eve@globex.example",)]
    listed = json.loads(run_cli(config, PASSWORD, "status", "--json").stdout)
    assert len(listed["conversations"]) == 2
