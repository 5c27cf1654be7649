"""Services built from a config file as ``run`` builds them, for integration tests.

The config is written by ``tests/configs.py`` for one mailbox (its password in the
environment) and the SMTP sink; each service comes from ``app.build_service`` over it,
with the test's clock, and every one built is closed when the test ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sla_daemon.app import build_service
from sla_daemon.clock import Clock
from sla_daemon.config import load_config
from sla_daemon.service import SlaService
from tests.configs import MailboxSpec, password_env, write_config
from tests.servers.smtp_sink import SmtpSink


class ServicesFromConfig:
    """Builds services from the config at ``path``; ``close`` closes every one built."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.built: list[SlaService] = []

    def __call__(self, clock: Clock, dry_run: bool = False) -> SlaService:
        """A new service (a start or a restart of the daemon) reading the time from ``clock``."""
        service = build_service(load_config(self.path), clock=clock, dry_run=dry_run)
        self.built.append(service)
        return service

    def close(self) -> None:
        """Close the sources and state database of every service built."""
        for service in self.built:
            service.close()


@contextmanager
def services_from_config(
    tmp_path: Path,
    mailbox: MailboxSpec,
    sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
    overrides: Mapping[str, Any],
) -> Iterator[ServicesFromConfig]:
    """Write the config for ``mailbox`` and ``sink`` with ``overrides``; build services of it."""
    for variable, password in password_env([mailbox]).items():
        monkeypatch.setenv(variable, password)
    path = write_config(
        tmp_path / "config.yaml", mailboxes=[mailbox], sink=sink, overrides=overrides
    )
    services = ServicesFromConfig(path)
    try:
        yield services
    finally:
        services.close()
