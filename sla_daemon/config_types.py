"""The value types of the configuration: durations, sizes, time zones and secrets.

Each validator turns what a person writes (``48h``, ``256KiB``, ``Europe/Berlin``) into a
typed value, or fails with a message that says what was expected and what was found.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, SecretStr
from pydantic_core import PydanticCustomError

from sla_daemon.errors import ConfigError
from sla_daemon.units import parse_duration, parse_size


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError(
            "duration", "expected a duration like 48h, got {got}", {"got": repr(value)}
        )
    try:
        return parse_duration(value)
    except ValueError:
        raise PydanticCustomError(
            "duration", "expected a duration like 48h, got {got}", {"got": repr(value)}
        ) from None


def _size(value: Any) -> int:
    try:
        return parse_size(value)
    except (ValueError, TypeError):
        raise PydanticCustomError(
            "size", "expected a size like 256KiB, got {got}", {"got": repr(value)}
        ) from None


def _timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError(
            "timezone",
            "expected an IANA time zone like Europe/Berlin, got {got}",
            {"got": repr(value)},
        ) from None
    return str(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
TimeZoneName = Annotated[str, BeforeValidator(_timezone)]
ByteSize = Annotated[int, BeforeValidator(_size)]
Security = Literal["tls", "starttls", "none"]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


CREDENTIALS_DIRECTORY = "${CREDENTIALS_DIRECTORY}"
"""Written in a secret's ``*_file`` path, it stands for the directory systemd passes a
service in ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``)."""


def secret_file(key: str, path: Path) -> Path:
    """``path`` with ``${CREDENTIALS_DIRECTORY}`` replaced by that environment variable.

    systemd sets it for the service; an operator checking the configuration by hand sets
    it to the directory the credentials are loaded from. Raises ``ConfigError`` when the
    path needs it and it is not set.
    """
    text = str(path)
    if CREDENTIALS_DIRECTORY not in text:
        return path
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    if not directory:
        raise ConfigError(
            [
                f"{key} {path}: CREDENTIALS_DIRECTORY is not set (systemd sets it for the "
                "service; to check by hand, set it to the directory that holds the files, "
                "e.g. CREDENTIALS_DIRECTORY=/etc/sla-daemon/secrets)"
            ]
        )
    return Path(text.replace(CREDENTIALS_DIRECTORY, directory))


class SecretSource(Section):
    """A secret given inline, in a file, or in an environment variable (exactly one)."""

    password: SecretStr | None = None  # inline; prefer password_file or password_env
    password_file: Path | None = None  # e.g. ${CREDENTIALS_DIRECTORY}/smtp (systemd credential)
    password_env: str | None = None  # name of an environment variable holding it

    def secret_sources(self) -> list[str]:
        """Name the password keys that are set."""
        return [
            key
            for key in ("password", "password_file", "password_env")
            if getattr(self, key) is not None
        ]

    def resolve_password(self) -> str | None:
        """Return the password from whichever source is configured, or None.

        Raises ``ConfigError`` when the file or variable named does not exist.
        """
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            try:
                path = secret_file("password_file", self.password_file)
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    [f"password_file {self.password_file}: cannot read it ({exc.strerror})"]
                ) from exc
        if self.password_env is not None:
            value = os.environ.get(self.password_env)
            if value is None:
                raise ConfigError(
                    [f"password_env {self.password_env}: that environment variable is not set"]
                )
            return value
        return None


def _text_keys(value: Any) -> Any:
    # YAML reads an unquoted key like 2026-12-31 as a date; keep every key as the text
    # written, so that problems name it and the checks parse it once.
    if isinstance(value, dict):
        return {str(key): item for key, item in value.items()}
    return value


TextKeyed = Annotated[dict[str, list[str]], BeforeValidator(_text_keys)]
"""A mapping whose keys are kept as written (``mon-fri``, ``2026-12-31``) to lists of text."""
