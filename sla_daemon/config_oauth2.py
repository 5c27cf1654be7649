"""The ``oauth2`` section of a mailbox or of ``smtp``: how to get an OAuth2 access token.

Two ways, exactly one per section: a ``token_command`` that prints a fresh access token
(as mutt, aerc and msmtp use), or the refresh-token flow against a token endpoint
(Google, Microsoft 365 or any other). docs/configuration.md explains both.
"""

from __future__ import annotations

import os
import urllib.parse
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from sla_daemon.config_types import Duration, Section, secret_file
from sla_daemon.errors import ConfigError
from sla_daemon.hosts import is_loopback_host
from sla_daemon.yamlpos import KeyPath

if TYPE_CHECKING:
    from sla_daemon.config import Config, MailboxConfig, SmtpConfig

GOOGLE_TOKEN_ENDPOINT = "https://oauth2.googleapis.com/token"
"""Google's OAuth2 token endpoint."""

MICROSOFT_TOKEN_ENDPOINT = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
"""Microsoft identity platform's token endpoint; ``{tenant}`` is filled in."""

MICROSOFT_DEFAULT_SCOPE = (
    "https://outlook.office.com/IMAP.AccessAsUser.All "
    "https://outlook.office.com/SMTP.Send offline_access"
)
"""The scope asked of Microsoft when ``scope`` is left out: IMAP and SMTP access."""

_REFRESH_KEYS = (
    "provider",
    "token_endpoint",
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_env",
    "refresh_token_file",
    "refresh_token_env",
)


class OAuth2Config(Section):
    """Where an OAuth2 access token comes from: a command, or a refresh token."""

    # A command printing a fresh access token on its first line; a list runs without a shell.
    token_command: str | list[str] | None = None
    token_lifetime: Duration = timedelta(minutes=50)  # how long a command's token is used
    # The refresh flow: google and microsoft know their token endpoint, custom names it.
    provider: Literal["google", "microsoft", "custom"] | None = None
    tenant: str = "common"  # microsoft: the directory (tenant) id or domain
    token_endpoint: str | None = None  # custom: the https URL of the token endpoint
    client_id: str | None = None  # the OAuth2 client (application) id
    client_secret: SecretStr | None = None  # inline; prefer client_secret_file or _env
    client_secret_file: Path | None = None  # e.g. a systemd credential
    client_secret_env: str | None = None  # name of an environment variable holding it
    refresh_token_file: Path | None = None  # e.g. a systemd credential (LoadCredential=)
    refresh_token_env: str | None = None  # name of an environment variable holding it
    scope: str | None = None  # scopes asked for on refresh (microsoft: IMAP and SMTP)

    def endpoint(self) -> str:
        """The token endpoint of the refresh flow (the provider's, or ``token_endpoint``)."""
        if self.provider == "google":
            return GOOGLE_TOKEN_ENDPOINT
        if self.provider == "microsoft":
            return MICROSOFT_TOKEN_ENDPOINT.format(tenant=self.tenant)
        return self.token_endpoint or ""

    def effective_scope(self) -> str | None:
        """``scope``, or Microsoft's IMAP and SMTP scopes when it is left out there."""
        if self.scope is None and self.provider == "microsoft":
            return MICROSOFT_DEFAULT_SCOPE
        return self.scope

    def resolve_client_secret(self) -> str | None:
        """The client secret from whichever source is set; None for a public client.

        Raises ``ConfigError`` when the file or variable named does not exist.
        """
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        return _read_secret("client_secret", self.client_secret_file, self.client_secret_env)

    def resolve_refresh_token(self) -> str:
        """The refresh token from ``refresh_token_file`` or ``refresh_token_env``.

        Raises ``ConfigError`` when neither is readable or the token is empty.
        """
        token = _read_secret("refresh_token", self.refresh_token_file, self.refresh_token_env)
        if not token:
            where = self.refresh_token_file or self.refresh_token_env
            raise ConfigError([f"refresh_token {where}: it is empty"])
        return token

    def check_secrets(self) -> None:
        """Read the refresh token and client secret once; ``ConfigError`` when one is missing."""
        if self.token_command is None:
            self.resolve_client_secret()
            self.resolve_refresh_token()

    def problems(self) -> list[tuple[KeyPath, str]]:
        """What does not fit together in this section (paths relative to it)."""
        problems: list[tuple[KeyPath, str]] = []
        refresh_keys = [key for key in _REFRESH_KEYS if getattr(self, key) is not None]
        if self.token_command is not None:
            if refresh_keys:
                problems.append(
                    ((), "give either token_command or the refresh flow, not both "
                     f"(found token_command and {', '.join(refresh_keys)})")
                )  # fmt: skip
            if not self.token_command or not all(self.token_command):
                problems.append((("token_command",), "the command is empty"))
            return problems
        if self.provider is None:
            problems.append(((), "give token_command, or provider (google, microsoft, custom)"))
            return problems
        if self.provider == "custom" and not self.token_endpoint:
            problems.append((("token_endpoint",), "provider custom needs a token_endpoint"))
        if self.provider != "custom" and self.token_endpoint:
            problems.append((("token_endpoint",), f"{self.provider} has its own; leave it out"))
        if self.token_endpoint:
            problems += _endpoint_problems(self.token_endpoint)
        if not self.client_id:
            problems.append((("client_id",), "the refresh flow needs a client_id"))
        sources = [k for k in ("refresh_token_file", "refresh_token_env") if getattr(self, k)]
        if len(sources) != 1:
            problems.append(((), "give exactly one of refresh_token_file, refresh_token_env"))
        secrets = [
            k
            for k in ("client_secret", "client_secret_file", "client_secret_env")
            if getattr(self, k) is not None
        ]
        if len(secrets) > 1:
            problems.append(((), "give only one of " + ", ".join(secrets)))
        return problems


def _endpoint_problems(url: str) -> list[tuple[KeyPath, str]]:
    """An endpoint must be https; plain http only to this machine (the refresh token is sent)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return []
    if parts.scheme == "http" and parts.hostname and is_loopback_host(parts.hostname):
        return []
    return [(("token_endpoint",), f"expected an https:// URL (http only to loopback), got {url!r}")]


def _read_secret(name: str, path: Path | None, env: str | None) -> str | None:
    """A secret from a file (stripped) or an environment variable; None when neither."""
    if path is not None:
        try:
            return secret_file(f"{name}_file", path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError([f"{name}_file {path}: cannot read it ({exc.strerror})"]) from exc
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError([f"{name}_env {env}: that environment variable is not set"])
        return value.strip()
    return None


def oauth2_problems(config: Config) -> list[tuple[KeyPath, str]]:
    """The ``auth`` and ``oauth2`` problems of every mailbox and of ``smtp``."""
    sections: list[tuple[KeyPath, MailboxConfig | SmtpConfig]] = [
        (("mailboxes", index), mailbox) for index, mailbox in enumerate(config.mailboxes)
    ]
    sections.append((("smtp",), config.smtp))
    problems: list[tuple[KeyPath, str]] = []
    for where, section in sections:
        oauth2 = section.oauth2
        if section.auth == "password":
            if oauth2 is not None:
                problems.append(((*where, "oauth2"), "is used only with auth: oauth2"))
            continue
        if oauth2 is None:
            problems.append(((*where, "auth"), "auth: oauth2 needs an oauth2 section"))
            continue
        given = section.secret_sources()
        if given:
            problems.append(
                ((*where, given[0]), "a password is not used with auth: oauth2; remove it")
            )
        # A mailbox's username is checked with its other IMAP keys.
        if section.username is None and where == ("smtp",):
            problems.append(((*where, "username"), "auth: oauth2 needs the username"))
        problems += [((*where, "oauth2", *path), message) for path, message in oauth2.problems()]
    return problems
