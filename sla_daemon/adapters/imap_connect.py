"""Opening an IMAP connection: TCP, TLS or STARTTLS, and the login.

Shared by the polling connection and every IDLE watcher, so all of them verify
certificates, refuse plaintext off loopback and report a refused login the same way.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
import tenacity
from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, IMAPClientError, LoginError

from sla_daemon.adapters.imapwire import describe, login_refusal_is_temporary, server_reply
from sla_daemon.adapters.oauth2 import AccessTokens
from sla_daemon.errors import (
    AuthenticationError,
    ConfigError,
    TransientError,
    UntrustedServerError,
)

_log = structlog.get_logger()


def quiet_wire_trace(client: IMAPClient) -> None:
    """Switch off imaplib's trace of every line on the wire, which imapclient switches on.

    imapclient sets imaplib's debug level to 5 and sends the trace to the
    ``imapclient.imaplib`` logger at DEBUG. imaplib formats each traced line (the
    ``repr`` of every fetched message, whole) before the logger decides to drop it:
    about a fifth of the CPU a first sync spends reading the socket. The trace would
    also copy client mail into the log at debug level. The daemon logs its own IMAP
    events; the command lines imapclient logs itself are kept.
    """
    client._imap.debug = 0  # imapclient offers no setting for it


def discard(client: IMAPClient) -> None:
    """Close a connection without a word to the server (it may be gone already)."""
    with contextlib.suppress(Exception):
        client.shutdown()


@dataclass(frozen=True)
class ImapLogin:
    """Where and as whom to log in; ``name`` is the mailbox, for messages."""

    name: str
    host: str
    port: int
    security: str
    username: str
    password: str = field(repr=False)
    timeout: float
    ssl_context: ssl.SSLContext | None
    connect_attempts: int
    retry_wait: tuple[float, float]
    tokens: AccessTokens | None = field(default=None, repr=False)  # auth: oauth2

    @property
    def server(self) -> str:
        """``host:port``, as shown in messages."""
        return f"{self.host}:{self.port}"

    def connect(self) -> IMAPClient:
        """Connect and log in, retrying a transient failure ``connect_attempts`` times."""
        low, high = self.retry_wait
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.connect_attempts),
            wait=tenacity.wait_exponential(multiplier=low, min=low, max=high),
            retry=tenacity.retry_if_exception_type(TransientError),
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self.connect_once)
        except TransientError as exc:
            raise TransientError(
                f"{exc} (gave up after {self.connect_attempts} attempts)"
            ) from exc.__cause__

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        _log.warning(
            "imap connect failed, retrying",
            mailbox=self.name,
            server=self.server,
            attempt=state.attempt_number,
            retry_in_s=round(state.upcoming_sleep, 2),
            error=str(error),
        )

    def connect_once(self) -> IMAPClient:
        """Connect and log in once.

        Raises ``TransientError`` (try again later), ``AuthenticationError`` (the
        credentials were refused; ``UntrustedServerError``: the certificate did not verify)
        or ``ConfigError`` (no STARTTLS where it is required).
        """
        if self.tokens is not None:
            return self._connect_with_token(self.tokens)
        client = self._open()
        try:
            client.login(self.username, self.password)
        except LoginError as exc:
            discard(client)
            server_text = self.redact(server_reply(exc))
            if isinstance(exc.__context__, (imaplib.IMAP4.abort, OSError)):
                # imapclient reports a connection lost mid-LOGIN (a server killed or
                # restarting) as a LoginError: that says nothing about the password.
                raise TransientError(
                    f"mailbox {self.name!r}: connection to IMAP server {self.server} was "
                    f"lost while logging in: {server_text}"
                ) from None
            raise self._refusal(server_text, "login", "check the username and password") from None
        except (OSError, IMAPClientError) as exc:
            discard(client)
            raise TransientError(
                f"mailbox {self.name!r}: connection to IMAP server {self.server} failed "
                f"while logging in: {self.redact(describe(exc))}"
            ) from exc
        return self._logged_in(client)

    def _refusal(
        self, server_text: str, what: str, advice: str
    ) -> TransientError | AuthenticationError:
        """A refused login: transient when the server says so, else one for a person."""
        if login_refusal_is_temporary(server_text):
            return TransientError(
                f"mailbox {self.name!r}: IMAP server {self.server} cannot log in "
                f"user {self.username!r} right now: {server_text}"
            )
        return AuthenticationError(
            f"mailbox {self.name!r}: IMAP server {self.server} refused the {what} of "
            f"user {self.username!r} ({server_text}); {advice}"
        )

    def _logged_in(self, client: IMAPClient) -> IMAPClient:
        # Aware datetimes in the server's zone instead of naive local time.
        client.normalise_times = False
        _log.info("imap connected", mailbox=self.name, server=self.server, user=self.username)
        return client

    def _connect_with_token(self, tokens: AccessTokens) -> IMAPClient:
        """Connect and log in with an OAuth2 access token (XOAUTH2, else OAUTHBEARER)."""
        token = tokens.access_token()  # before connecting: a refused refresh is no I/O here
        client = self._open()
        try:
            mechanism = oauth2_mechanism(client.capabilities())
            if mechanism is None:
                raise AuthenticationError(
                    f"mailbox {self.name!r}: IMAP server {self.server} offers neither "
                    "AUTH=XOAUTH2 nor AUTH=OAUTHBEARER; use auth: password there"
                )
            try:
                token_login(client, mechanism, self.username, token)
            except LoginError:
                # A token the server no longer takes (revoked early, clocks apart): one more
                # try with a new one before calling it a refusal.
                tokens.forget(token)
                token = tokens.access_token()
                token_login(client, mechanism, self.username, token)
        except LoginError as exc:
            discard(client)
            tokens.forget(token)
            raise self._refusal(
                server_reply(exc).replace(token, "***"),
                f"OAuth2 ({mechanism}) login",
                "check the username and that the token's scope grants IMAP access",
            ) from None
        except (OSError, IMAPClientError) as exc:
            discard(client)
            raise TransientError(
                f"mailbox {self.name!r}: connection to IMAP server {self.server} failed "
                f"while logging in: {describe(exc).replace(token, '***')}"
            ) from None
        except BaseException:
            discard(client)
            raise
        return self._logged_in(client)

    def _open(self) -> IMAPClient:
        """Connect and, for ``starttls``, switch to TLS; nothing is sent in the clear."""
        try:
            client = IMAPClient(
                self.host,
                port=self.port,
                ssl=self.security == "tls",
                ssl_context=self._tls_context() if self.security == "tls" else None,
                timeout=self.timeout,
            )
        except ssl.SSLCertVerificationError as exc:
            raise self._untrusted(exc) from None
        except (OSError, IMAPClientError) as exc:
            raise TransientError(
                f"mailbox {self.name!r}: cannot reach IMAP server {self.server}: {describe(exc)}"
            ) from exc
        quiet_wire_trace(client)
        if self.security != "starttls":
            return client
        try:
            client.starttls(self._tls_context())
        except CapabilityError as exc:
            discard(client)
            raise ConfigError(
                [
                    f"mailbox {self.name!r}: IMAP server {self.server} does not offer "
                    f"STARTTLS ({server_reply(exc)}); use security tls on its TLS port"
                ]
            ) from None
        except ssl.SSLCertVerificationError as exc:
            discard(client)
            raise self._untrusted(exc) from None
        except (OSError, IMAPClientError) as exc:
            discard(client)
            raise TransientError(
                f"mailbox {self.name!r}: TLS with IMAP server {self.server} failed "
                f"(STARTTLS): {describe(exc)}"
            ) from exc
        return client

    def _untrusted(self, exc: ssl.SSLCertVerificationError) -> UntrustedServerError:
        return UntrustedServerError(
            f"mailbox {self.name!r}: the TLS certificate of IMAP server {self.server} did "
            f"not verify ({exc.verify_message or exc}); nothing was sent. Trust its CA "
            "with ca_file, or fix the server's certificate"
        )

    def _tls_context(self) -> ssl.SSLContext:
        return self.ssl_context or ssl.create_default_context()

    def redact(self, text: str) -> str:
        """``text`` with the password replaced by ``***``."""
        # Servers do not echo passwords, but a message that reaches an operator's
        # terminal or a log must not depend on that.
        return text.replace(self.password, "***") if self.password else text


def oauth2_mechanism(capabilities: Iterable[bytes]) -> str | None:
    """The SASL mechanism to present a token with, None when the server offers none.

    XOAUTH2 when offered, as mail clients prefer it; else OAUTHBEARER (RFC 7628).
    """
    offered = {capability.upper() for capability in capabilities}
    for mechanism in ("XOAUTH2", "OAUTHBEARER"):
        if f"AUTH={mechanism}".encode() in offered:
            return mechanism
    return None


def token_login(client: IMAPClient, mechanism: str, username: str, token: str) -> None:
    """Log ``client`` in as ``username`` with ``token`` by XOAUTH2 or OAUTHBEARER."""
    if mechanism == "XOAUTH2":
        client.oauth2_login(username, token, mech="XOAUTH2")
    else:
        client.oauthbearer_login(username, token)
