"""The ``sla-daemon`` command as a user runs it, with a configuration written per test."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SLA_DAEMON = str(Path(sys.executable).parent / "sla-daemon")
IMAP_PASSWORD_ENV = "HOSTILE_IMAP_PASSWORD"


@dataclass(frozen=True)
class Endpoints:
    """Where the daemon reads and sends mail, and how it proves who it is."""

    imap_host: str
    imap_port: int
    imap_security: str
    imap_user: str
    smtp_host: str
    smtp_port: int
    smtp_security: str
    smtp_user: str | None = None
    smtp_password_file: Path | None = None
    imap_ca_file: Path | None = None
    smtp_ca_file: Path | None = None


def write_config(path: Path, state_dir: Path, ends: Endpoints) -> Path:
    """Write a configuration for one client account (Globex) and return its path."""
    imap_ca = f"    ca_file: {ends.imap_ca_file}\n" if ends.imap_ca_file else ""
    smtp_ca = f"  ca_file: {ends.smtp_ca_file}\n" if ends.smtp_ca_file else ""
    smtp_login = (
        f"  username: {ends.smtp_user}\n  password_file: {ends.smtp_password_file}\n"
        if ends.smtp_user
        else ""
    )
    path.write_text(
        f"""\
state_dir: {state_dir}
team:
  name: Acme Support
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: {ends.imap_host}
    port: {ends.imap_port}
    security: {ends.imap_security}
{imap_ca}    username: {ends.imap_user}
    password_env: {IMAP_PASSWORD_ENV}
    folders: {{inbox: [INBOX], sent: [Sent]}}
    idle: false
smtp:
  host: {ends.smtp_host}
  port: {ends.smtp_port}
  security: {ends.smtp_security}
{smtp_ca}{smtp_login}  timeout: 10s
notices:
  digest_window: 0s
  delivery: {{retry_first: 1s, retry_max: 1s}}  # a deferred notice goes with the next run
accounts:
  - name: Globex
    domains: [globex.example]
    owner: alice@acme.example
""",
        encoding="utf-8",
    )
    return path


def run_cli(
    config: Path, imap_password: str, *args: str, log_level: str = "debug"
) -> subprocess.CompletedProcess[str]:
    """Run ``sla-daemon --config CONFIG --log-level LEVEL ARGS``; output is captured."""
    return subprocess.run(
        [SLA_DAEMON, "--config", str(config), "--log-level", log_level, *args],
        capture_output=True,
        text=True,
        check=False,
        env={IMAP_PASSWORD_ENV: imap_password, "PATH": "/usr/bin:/bin"},
        timeout=180,
    )
