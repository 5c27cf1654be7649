"""The daemon's YAML config for tests: real Dovecot users, the SMTP sink, overrides.

``daemon_config`` builds the config as a dict: the team, one mailbox per ``MailboxSpec``
(plaintext IMAP on loopback, its password in an environment variable), the sink as the
SMTP server, a ``standard`` policy and ``notices: {digest_window: 0s}`` (every notice is
its own mail, so each can be counted at the sink). ``overrides`` is merged into it key
by key (a dict merges into a dict, anything else replaces; a value wrapped in
``Replace`` replaces even a dict, e.g. a test's own ``policies``). ``write_config``
writes it as block YAML with list items indented under their key.
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
    """One configured mailbox: its name, the Dovecot user it reads, how it watches.

    ``idle`` or ``poll_interval`` None leaves the key out (the daemon's default applies);
    ``password_env`` is derived from the name unless given; ``overrides`` is merged into
    the mailbox's entry (e.g. other ``folders``).
    """

    name: str
    user: ImapUser
    idle: bool | None = False
    poll_interval: str | None = "1s"
    password_env: str = ""
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.password_env:
            derived = "SLA_TEST_IMAP_PASSWORD_" + self.name.upper().replace("-", "_")
            object.__setattr__(self, "password_env", derived)

    def entry(self) -> dict[str, Any]:
        """The mailbox as an item of the config's ``mailboxes`` list."""
        entry: dict[str, Any] = {
            "name": self.name,
            "host": self.user.host,
            "port": self.user.port,
            "security": "none",
            "username": self.user.username,
            "password_env": self.password_env,
            "folders": {"inbox": ["INBOX"], "sent": ["Sent"]},
        }
        if self.idle is not None:
            entry["idle"] = self.idle
        if self.poll_interval is not None:
            entry["poll_interval"] = self.poll_interval
        result: dict[str, Any] = _unwrapped(merged(entry, self.overrides))
        return result


@dataclass(frozen=True)
class Replace:
    """An override value that replaces the default whole instead of merging into it."""

    value: Any


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: dicts key by key, other values replaced.

    A ``Replace`` stays wrapped, so that overrides merged with further overrides still
    replace the default; a dict merged into a ``Replace`` merges into what it holds.
    """
    result = dict(base)
    for key, value in overrides.items():
        current = result.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            result[key] = merged(current, value)
        elif isinstance(value, Mapping) and isinstance(current, Replace):
            result[key] = Replace(merged(current.value, value))
        else:
            result[key] = value
    return result


def _unwrapped(value: Any) -> Any:
    """``value`` with every ``Replace`` in it replaced by what it holds."""
    if isinstance(value, Replace):
        return _unwrapped(value.value)
    if isinstance(value, Mapping):
        return {key: _unwrapped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unwrapped(item) for item in value]
    return value


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
        "mailboxes": [spec.entry() for spec in mailboxes],
        "smtp": {"host": sink.host, "port": sink.port, "security": "none"},
        "policies": {
            "standard": {
                "acknowledge": {"within": "1h", "warn_before": ["30m"]},
                "action_plan": {"within": "4h", "warn_before": ["2h"]},
            }
        },
        "notices": {"digest_window": "0s"},
    }
    config: dict[str, Any] = _unwrapped(merged(defaults, overrides or {}))
    return config


class _IndentedDumper(yaml.SafeDumper):
    """Block YAML whose list items are indented under their key, as people write it."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


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
    text = yaml.dump(config, Dumper=_IndentedDumper, sort_keys=False, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return path


def password_env(mailboxes: Sequence[MailboxSpec]) -> dict[str, str]:
    """The environment variables that give each mailbox its password."""
    return {spec.password_env: spec.user.password for spec in mailboxes}
