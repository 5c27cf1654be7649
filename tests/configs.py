"""The daemon's YAML config for tests: real Dovecot users, the SMTP sink, overrides.

``daemon_config`` builds the config as a dict: the team, one mailbox per ``MailboxSpec``
(plaintext IMAP on loopback, its password in an environment variable), the sink as the
SMTP server, a ``standard`` policy and ``notices: {digest_window: 0s}`` (every notice is
its own mail, so each can be counted at the sink). ``overrides`` is merged into it key
by key (a dict merges into a dict, anything else replaces). ``write_config`` writes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ImapUser
from tests.servers.smtp_sink import SmtpSink


@dataclass(frozen=True)
class MailboxSpec:
    """One configured mailbox: its name, the Dovecot user it reads, how it watches."""

    name: str
    user: ImapUser
    idle: bool = False
    poll_interval: str = "1s"
    settings: Mapping[str, Any] = field(default_factory=dict)
    """Further keys of this mailbox's section, e.g. ``{"reconnect_max": "4s"}``."""

    @property
    def password_env(self) -> str:
        """The environment variable that holds this mailbox's password."""
        return "SLA_TEST_IMAP_PASSWORD_" + self.name.upper().replace("-", "_")


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: dicts key by key, other values replaced."""
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def daemon_config(
    *,
    mailboxes: Sequence[MailboxSpec],
    sink: SmtpSink,
    state_dir: Path,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The config for ``mailboxes`` and ``sink`` with its state in ``state_dir``."""
    defaults: dict[str, Any] = {
        "state_dir": str(state_dir),
        "team": {
            "name": "Acme Support",
            "domains": ["acme.example"],
            "from": "Acme Support <support@acme.example>",
        },
        "mailboxes": [
            {
                "name": spec.name,
                "host": spec.user.host,
                "port": spec.user.port,
                "security": "none",
                "username": spec.user.username,
                "password_env": spec.password_env,
                "folders": {"inbox": ["INBOX"], "sent": ["Sent"]},
                "idle": spec.idle,
                "poll_interval": spec.poll_interval,
                **spec.settings,
            }
            for spec in mailboxes
        ],
        "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
        "policies": {
            "standard": {
                "acknowledge": {"within": "1h", "warn_before": ["30m"]},
                "action_plan": {"within": "4h", "warn_before": ["2h"]},
            }
        },
        "notices": {"digest_window": "0s"},
    }
    return merged(defaults, overrides or {})


def write_config(
    path: Path,
    *,
    mailboxes: Sequence[MailboxSpec],
    sink: SmtpSink,
    state_dir: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Write the config to ``path`` (state in ``state_dir``, else ``state`` beside it)."""
    config = daemon_config(
        mailboxes=mailboxes,
        sink=sink,
        state_dir=state_dir or path.parent / "state",
        overrides=overrides,
    )
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def password_env(mailboxes: Sequence[MailboxSpec]) -> dict[str, str]:
    """The environment variables that give each mailbox its password."""
    return {spec.password_env: spec.user.password for spec in mailboxes}
