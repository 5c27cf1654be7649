"""What the evaluation, idle-cycle and soak benchmarks share: the team, accounts, banner."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

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
