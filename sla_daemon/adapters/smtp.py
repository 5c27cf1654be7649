"""Delivers notices over SMTP with smtplib, and sorts every failure into retry or give up.

The sorting is the point of this module: the outbox retries a ``TransientError`` later
(network trouble, timeouts, a server that hung up, 4xx replies) and records a
``PermanentError`` for a person to look at (5xx replies, refused credentials, a
certificate that does not verify).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Literal

import structlog

from sla_daemon.adapters.oauth2 import AccessTokens, xoauth2_string
from sla_daemon.errors import AuthenticationError, PermanentError, TransientError
from sla_daemon.hosts import is_loopback_host

Security = Literal["tls", "starttls", "none"]
"""How the connection is protected: implicit TLS, STARTTLS, or not at all (loopback)."""

_log = structlog.get_logger(__name__)


def _reply_text(raw: bytes | str) -> str:
    """A server reply as text, whatever encoding the server used."""
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


class SmtpSender:
    """A ``NoticeSender`` that opens one SMTP connection per message.

    Certificates are verified against the system trust store unless ``ssl_context``
    says otherwise. ``security="none"`` is refused (``ValueError``) unless ``host`` is a
    loopback address. The login happens only when ``username`` is set: with ``tokens``
    (``auth: oauth2``) by XOAUTH2 with a fresh access token, else with the password.
    """

    def __init__(
        self,
        host: str,
        port: int,
        security: Security,
        username: str | None,
        password: str | None,
        timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
        tokens: AccessTokens | None = None,
    ) -> None:
        if security not in ("tls", "starttls", "none"):
            raise ValueError(f"unknown SMTP security {security!r} (tls, starttls or none)")
        if security == "none" and not is_loopback_host(host):
            raise ValueError(
                f"refusing an unencrypted SMTP connection to {host}: "
                "security none is only allowed to a loopback address"
            )
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self._ssl_context = ssl_context or ssl.create_default_context()
        self._local_hostname = local_hostname
        self._tokens = tokens

    def __repr__(self) -> str:
        # Spelled out so that the password can never reach a log line through repr().
        return (
            f"SmtpSender(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r})"
        )

    @property
    def _server(self) -> str:
        return f"{self.host}:{self.port}"

    def send(
        self, message: EmailMessage, recipients: Sequence[str] | None = None
    ) -> dict[str, tuple[int, str]]:
        """Deliver ``message`` to ``recipients``, by default those of its To/Cc/Bcc headers.

        The headers are sent as they are, so a notice tried again for one recipient
        still shows everyone it was for. Returns the recipients the server refused while
        accepting others (reply code and text; not logged here). Raises
        ``TransientError`` or ``PermanentError``, with the server's ``reply_code`` when
        it answered, and ``refusals`` per recipient when it refused every one.
        """
        if not recipients and not any(message.get_all(name) for name in ("To", "Cc", "Bcc")):
            raise PermanentError("the message has no recipients (To, Cc and Bcc are empty)")
        token = self._access_token()
        try:
            refused = self._deliver(message, list(recipients) if recipients else None, token)
        except smtplib.SMTPAuthenticationError as exc:
            if token is not None and self._tokens is not None:
                self._tokens.forget(token)  # the next attempt presents a new one
            raise self._login_error(exc, token) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise self._recipients_error(exc.recipients) from exc
        except smtplib.SMTPResponseException as exc:
            text = f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
            error: TransientError | PermanentError
            if 400 <= exc.smtp_code < 500:
                error = TransientError(f"SMTP server {self._server} deferred: {text}")
            else:
                error = PermanentError(f"SMTP server {self._server} refused: {text}")
            error.reply_code = exc.smtp_code
            raise error from exc
        except smtplib.SMTPServerDisconnected as exc:
            raise TransientError(
                f"SMTP server {self._server} closed the connection: {exc}"
            ) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(
                f"SMTP server {self._server} does not support what the configuration needs: {exc}"
            ) from exc
        except smtplib.SMTPException as exc:
            raise PermanentError(f"SMTP with {self._server} failed: {exc}") from exc
        except ssl.SSLCertVerificationError as exc:
            # Retrying will not make the certificate valid; a person has to look.
            raise PermanentError(
                f"the TLS certificate of SMTP server {self._server} did not verify: "
                f"{exc.verify_message or exc}"
            ) from exc
        except OSError as exc:  # refused, reset, unreachable, timed out
            raise TransientError(f"cannot reach SMTP server {self._server}: {exc}") from exc
        # Refused recipients are not logged here, at any level: the caller records each
        # with its notice and the next step (retry or give up) and logs it there, once.
        _log.debug("smtp_sent", server=self._server, message_id=message.get("Message-ID"))
        return {address: (code, _reply_text(reply)) for address, (code, reply) in refused.items()}

    def _access_token(self) -> str | None:
        """The OAuth2 token for this delivery, None with a password.

        A refused refresh token fails the notice like a refused password does (recorded
        for a person, the daemon goes on); an unreachable token endpoint is retried later.
        """
        if self._tokens is None or not self.username:
            return None
        try:
            return self._tokens.access_token()
        except AuthenticationError as exc:
            raise PermanentError(f"SMTP login of user {self.username!r}: {exc}") from None

    def _deliver(
        self, message: EmailMessage, recipients: list[str] | None, token: str | None
    ) -> dict[str, tuple[int, bytes]]:
        """Connect, secure, log in and hand the message over; return refused recipients."""
        connection = self._connect()
        try:
            if self.security == "starttls":
                connection.starttls(context=self._ssl_context)
            if token is not None and self.username:
                # smtplib's auth() neither says EHLO first nor checks what is offered.
                connection.ehlo_or_helo_if_needed()
                offered = connection.esmtp_features.get("auth", "").upper().split()
                if "XOAUTH2" not in offered:
                    raise smtplib.SMTPNotSupportedError("AUTH XOAUTH2 is not offered")
                response = xoauth2_string(self.username, token)
                # On a refusal XOAUTH2 servers send a 334 with details: answer it empty.
                connection.auth(
                    "XOAUTH2",
                    lambda challenge=None: "" if challenge is not None else response,
                    initial_response_ok=True,
                )
            elif self.username:
                connection.login(self.username, self._password or "")
            return connection.send_message(message, to_addrs=recipients)
        finally:
            # Once the message is accepted a failing QUIT must not turn success into an
            # error, or the outbox would send the notice twice.
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def _connect(self) -> smtplib.SMTP:
        if self.security == "tls":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=self._local_hostname,
                timeout=self.timeout,
                context=self._ssl_context,
            )
        return smtplib.SMTP(
            self.host, self.port, local_hostname=self._local_hostname, timeout=self.timeout
        )

    def _login_error(
        self, exc: smtplib.SMTPAuthenticationError, token: str | None = None
    ) -> TransientError | PermanentError:
        """Describe a refused login by server and user; never repeat the password or token."""
        reply = _reply_text(exc.smtp_error)
        for secret in (self._password, token):
            if secret:
                reply = reply.replace(secret, "[redacted]")
        text = (
            f"SMTP server {self._server} refused the login of user {self.username!r}: "
            f"{exc.smtp_code} {reply}"
        )
        error: TransientError | PermanentError
        if 400 <= exc.smtp_code < 500:
            error = TransientError(text)
        else:
            what = "oauth2 settings and the token's scope" if token else "password"
            error = PermanentError(text + f" (check the SMTP username and {what})")
        error.reply_code = exc.smtp_code
        return error

    def _recipients_error(
        self, recipients: dict[str, tuple[int, bytes]]
    ) -> TransientError | PermanentError:
        """All recipients were refused: retry only if every refusal was temporary."""
        details = "; ".join(
            f"{address}: {code} {_reply_text(reply)}"
            for address, (code, reply) in recipients.items()
        )
        text = f"SMTP server {self._server} refused every recipient ({details})"
        error: TransientError | PermanentError
        if recipients and all(400 <= code < 500 for code, _ in recipients.values()):
            error = TransientError(text)
        else:
            error = PermanentError(text)
        error.refusals = {
            address: (code, _reply_text(reply)) for address, (code, reply) in recipients.items()
        }
        return error
