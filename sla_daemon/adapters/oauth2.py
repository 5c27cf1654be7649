"""OAuth2 access tokens for IMAP and SMTP logins (XOAUTH2, OAUTHBEARER).

A token comes from a command that prints one (``CommandTokens``) or from the
refresh-token grant at a token endpoint (``RefreshTokens``). Both keep the token with its
expiry and fetch a new one ``REFRESH_MARGIN`` before it runs out, so a login never
presents a token about to expire. Tokens and secrets never reach a log line, an error
message or a ``repr``.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import structlog

from sla_daemon.clock import Clock
from sla_daemon.errors import AuthenticationError, ConfigError, TransientError

_log = structlog.get_logger(__name__)

REFRESH_MARGIN = timedelta(minutes=5)
"""A token is replaced this long before it expires (clock skew, a slow login)."""

DEFAULT_EXPIRES_IN = 3600
"""Seconds a token endpoint's token is taken to last when the reply does not say."""

# Token endpoint errors a person has to fix (RFC 6749 section 5.2); others may pass.
_REFUSALS = {"invalid_grant", "invalid_client", "unauthorized_client", "invalid_scope"}


@dataclass(frozen=True)
class AccessToken:
    """An access token and the moment it stops being accepted."""

    value: str = field(repr=False)
    expires_at: datetime


def needs_refresh(token: AccessToken | None, now: datetime, margin: timedelta) -> bool:
    """Whether a new token must be fetched at ``now``: none yet, or expiring within ``margin``."""
    return token is None or now >= token.expires_at - margin


def xoauth2_string(username: str, token: str) -> str:
    """The XOAUTH2 initial client response for ``username`` (Google's and Microsoft's format)."""
    return f"user={username}\x01auth=Bearer {token}\x01\x01"


class AccessTokens(Protocol):
    """Where a login gets its access token."""

    def access_token(self) -> str:
        """A token valid for at least the refresh margin; fetched when needed."""
        ...

    def forget(self, token: str) -> None:
        """The server refused ``token``: fetch a new one next time."""
        ...


class _CachedTokens:
    """Keeps the current token and fetches a new one when ``needs_refresh`` says so.

    Thread-safe: the polling connection and every IDLE watcher log in with the same one.
    """

    _via = "unknown"  # where tokens come from, for the log

    def __init__(self, name: str, clock: Clock, margin: timedelta) -> None:
        self.name = name
        self._clock = clock
        self._margin = margin
        self._token: AccessToken | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def access_token(self) -> str:
        """The cached token, or a new one when it is missing or about to expire."""
        with self._lock:
            now = self._clock.now()
            token = self._token
            if token is None or needs_refresh(token, now, self._margin):
                token = self._token = self._fetch(now)
                _log.info(
                    "oauth2 access token obtained",
                    login=self.name,
                    via=self._via,
                    expires_at=token.expires_at.isoformat(),
                )
            return token.value

    def forget(self, token: str) -> None:
        """Drop ``token`` if it is the cached one, so the next login fetches a new one."""
        with self._lock:
            if self._token is not None and self._token.value == token:
                self._token = None

    def _fetch(self, now: datetime) -> AccessToken:
        raise NotImplementedError


class CommandTokens(_CachedTokens):
    """Tokens printed by ``command`` (first line of its output), used for ``lifetime``.

    A list runs without a shell; a string runs through ``/bin/sh -c``.
    """

    _via = "token_command"

    def __init__(
        self,
        name: str,
        command: str | list[str],
        lifetime: timedelta,
        clock: Clock,
        *,
        margin: timedelta = REFRESH_MARGIN,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(name, clock, margin)
        self._command = command
        self._lifetime = lifetime
        self._timeout = timeout

    def _fetch(self, now: datetime) -> AccessToken:
        shell = isinstance(self._command, str)
        try:
            done = subprocess.run(
                self._command,
                shell=shell,
                capture_output=True,
                text=True,
                timeout=self._timeout,
                check=False,
            )
        except (FileNotFoundError, PermissionError) as exc:
            raise ConfigError(
                [f"{self.name}: oauth2.token_command cannot be run: {exc.strerror}"]
            ) from None
        except subprocess.TimeoutExpired:
            raise TransientError(
                f"{self.name}: oauth2.token_command gave no token within {self._timeout:g}s"
            ) from None
        if done.returncode != 0:
            # The last line of stderr usually says why; stdout may hold a token: never shown.
            said = (done.stderr.strip().splitlines() or ["(nothing on stderr)"])[-1][:200]
            raise TransientError(
                f"{self.name}: oauth2.token_command exited with status {done.returncode}: {said}"
            )
        lines = done.stdout.strip().splitlines()
        if not lines or not lines[0].strip():
            raise TransientError(f"{self.name}: oauth2.token_command printed no token")
        return AccessToken(lines[0].strip(), now + self._lifetime)


@dataclass(frozen=True)
class RefreshGrant:
    """What the refresh-token grant sends: endpoint, client and the refresh token."""

    endpoint: str
    client_id: str
    client_secret: str | None = field(repr=False)
    refresh_token: str = field(repr=False)
    scope: str | None = None
    refresh_token_file: Path | None = None  # a rotated token is written back here if writable


class RefreshTokens(_CachedTokens):
    """Tokens from the OAuth2 refresh-token grant (RFC 6749 section 6) at ``grant.endpoint``.

    A refresh token the endpoint rotates is kept in memory and written back to
    ``grant.refresh_token_file`` when that file can be written (a systemd credential
    cannot; the old token then serves the next start, as providers allow for a while).
    """

    _via = "token_endpoint"

    def __init__(
        self,
        name: str,
        grant: RefreshGrant,
        clock: Clock,
        *,
        margin: timedelta = REFRESH_MARGIN,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(name, clock, margin)
        self._grant = grant
        self._refresh_token = grant.refresh_token
        self._timeout = timeout

    def _fetch(self, now: datetime) -> AccessToken:
        reply = self._post()
        token = reply.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(
                f"{self.name}: the token endpoint {self._grant.endpoint} answered without "
                "an access_token"
            )
        try:
            lifetime = int(reply.get("expires_in", DEFAULT_EXPIRES_IN))
        except (TypeError, ValueError):
            lifetime = DEFAULT_EXPIRES_IN
        rotated = reply.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._refresh_token = rotated
            self._keep_rotated(rotated)
        return AccessToken(token, now + timedelta(seconds=lifetime))

    def _post(self) -> dict[str, Any]:
        """POST the grant; the reply's JSON, or the error sorted into refusal or trouble."""
        fields = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh_token,
            "client_id": self._grant.client_id,
        }
        if self._grant.client_secret:
            fields["client_secret"] = self._grant.client_secret
        if self._grant.scope:
            fields["scope"] = self._grant.scope
        request = urllib.request.Request(
            self._grant.endpoint,
            data=urllib.parse.urlencode(fields).encode("ascii"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            method="POST",
        )
        where = f"{self.name}: the token endpoint {self._grant.endpoint}"
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise self._refusal(where, exc.code, _error_reply(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransientError(f"{where} cannot be reached: {reason}") from None
        try:
            reply = json.loads(body)
        except ValueError:
            raise TransientError(f"{where} answered with something other than JSON") from None
        if not isinstance(reply, dict):
            raise TransientError(f"{where} answered with JSON that is not an object")
        return reply

    def _refusal(
        self, where: str, status: int, reply: dict[str, Any]
    ) -> AuthenticationError | TransientError:
        error = str(reply.get("error", ""))
        # The description is the provider's own text; it does not repeat the request.
        description = str(reply.get("error_description", ""))[:300]
        said = f"HTTP {status} {error} {description}".strip()
        if error in _REFUSALS or (status in (400, 401, 403) and not error):
            return AuthenticationError(
                f"{where} refused the refresh token ({said}); get a new refresh token "
                "(sign in again with the OAuth2 client) and update "
                f"{self._grant.refresh_token_file or 'the refresh token'}"
            )
        if status >= 500 or status == 429:
            return TransientError(f"{where} is unavailable ({said})")
        return AuthenticationError(f"{where} refused the request ({said}); check the oauth2 keys")

    def _keep_rotated(self, token: str) -> None:
        path = self._grant.refresh_token_file
        if path is None:
            _log.info("oauth2 refresh token rotated", login=self.name, kept="in memory only")
            return
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            _log.warning(
                "oauth2 refresh token rotated",
                login=self.name,
                kept="in memory only",
                reason=f"{path} is not writable; the previous token is used after a restart",
            )
            return
        try:
            # Replace, never truncate in place: a crash must not leave an empty file.
            fd, staging = tempfile.mkstemp(prefix=".refresh-", dir=path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(token + "\n")
            os.replace(staging, path)
        except OSError as exc:
            _log.warning(
                "oauth2 refresh token rotated",
                login=self.name,
                kept="in memory only",
                reason=f"writing {path} failed: {exc.strerror}",
            )
            return
        _log.info("oauth2 refresh token rotated", login=self.name, kept=str(path))


def _error_reply(exc: urllib.error.HTTPError) -> dict[str, Any]:
    """The JSON error object of a refused request (RFC 6749 section 5.2), or empty."""
    try:
        reply = json.loads(exc.read())
    except (ValueError, OSError):
        return {}
    return reply if isinstance(reply, dict) else {}
