"""What the benchmarks share: the team, accounts, banner, seeding, the daemon's log, RSS."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.servers.dovecot import DovecotServer

TEAM_DOMAIN = "acme.example"
SUPPORT = f"Acme Support <support@{TEAM_DOMAIN}>"


def client_domains(count: int) -> tuple[str, ...]:
    """``client01.example`` … one domain per account."""
    return tuple(f"client{number:02d}.example" for number in range(1, count + 1))


def config_head(state_dir: Path | str) -> str:
    """The start of a configuration: state directory, time zone and team."""
    return f"""\
state_dir: {state_dir}
timezone: Europe/Berlin
team:
  name: Acme Support
  domains: [{TEAM_DOMAIN}]
  from: "{SUPPORT}"
"""


def accounts_yaml(domains: Sequence[str], policies: Sequence[str] = ("standard",)) -> str:
    """The ``accounts:`` section: one account per domain, the policies taken in turn."""
    return "accounts:\n" + "".join(
        f"  - name: {domain.split('.')[0].title()}\n    domains: [{domain}]\n"
        f"    policy: {policies[index % len(policies)]}\n    owner: am{index}@{TEAM_DOMAIN}\n"
        f"    escalate_to: [lead@{TEAM_DOMAIN}]\n"
        for index, domain in enumerate(domains)
    )


def banner(name: str, detail: str = "") -> None:
    """Print the benchmark's first line: what, when, Python and the number of CPUs."""
    print(
        f"sla-daemon {name} benchmark  {datetime.now(UTC):%Y-%m-%d %H:%M} UTC  "
        f"Python {platform.python_version()}  {os.cpu_count()} CPUs{detail}",
        flush=True,
    )


def seed_folders(
    server: DovecotServer,
    user: str,
    messages: Callable[[], Iterable[tuple[str, bytes, datetime]]],
    folders: Sequence[str] = ("INBOX", "Sent"),
) -> dict[str, int]:
    """APPEND ``(folder, raw, internaldate)`` messages, one connection per folder.

    ``messages`` is called once per folder and only that folder's messages are taken, so
    a generator streams: the benchmark never holds the whole mailbox. Returns the count
    and the bytes per folder (``INBOX``, ``INBOX_bytes``, ...).
    """
    counts: dict[str, int] = {}
    for folder in folders:
        counts[folder] = counts[f"{folder}_bytes"] = 0

        def stream(folder: str = folder) -> Iterator[tuple[bytes, datetime, Sequence[str]]]:
            for target, raw, internaldate in messages():
                if target == folder:
                    counts[folder] += 1
                    counts[f"{folder}_bytes"] += len(raw)
                    yield raw, internaldate, ()

        server.append_many(user, folder, stream())
    return counts


def daemon_events(log_path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a daemon's log (other lines skipped)."""
    found = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                found.append(event)
    return found


def wait_for_event(
    log_path: Path,
    name: str,
    process: subprocess.Popen[bytes],
    *,
    count: int = 1,
    timeout: float = 60.0,
) -> None:
    """Wait until the daemon logged the event ``name`` ``count`` times; fail if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sla-daemon exited with {process.returncode}; see {log_path}")
        if sum(e.get("event") == name for e in daemon_events(log_path)) >= count:
            return
        time.sleep(0.05)
    raise RuntimeError(
        f"sla-daemon logged {name!r} fewer than {count} time(s) in {timeout:g} s; see {log_path}"
    )


def proc_status_kb(field: str, pid: int | str = "self") -> int | None:
    """A KiB figure of ``/proc/PID/status`` (``VmRSS``, ``VmHWM``), or None without /proc."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return None


def smaps_rollup_kb(pid: int | str = "self") -> dict[str, int]:
    """Resident KiB of ``pid`` (``/proc/PID/smaps_rollup``): all, anonymous, file-backed."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[name] = int(rest.split()[0])
    rss, anon = values.get("Rss", 0), values.get("Anonymous", 0)
    return {"rss": rss, "anon": anon, "file": rss - anon}
