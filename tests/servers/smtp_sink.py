"""An SMTP server for tests that keeps every mail it receives, on a free loopback port."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, AuthResult, LoginPassword

from tests.servers.dovecot import free_port


@dataclass(frozen=True)
class ReceivedMail:
    """One mail as the sink received it: the envelope, the parsed message and its bytes."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    raw: bytes
    login: str | None = None  # the user that logged in, when the client did


def _reply(server: Any, reply: str) -> str:
    """Give ``reply``; a 421 also hangs up after it, as a server shutting down does."""
    if reply.startswith("421"):
        asyncio.get_running_loop().call_soon(server.transport.close)
    return reply


class _Handler:
    """aiosmtpd handler that records accepted mail on its sink, or gives scripted replies."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Answer the next scripted reply for ``address``, or accept it."""
        reply = self._sink._next_reply(self._sink.rcpt_replies.get(address.lower()))
        if reply is not None:
            return _reply(server, reply)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the mail, or answer with a scripted or ``respond_with`` reply instead."""
        refusal = self._sink._next_reply(self._sink.data_replies) or self._sink.respond_with
        if refusal is not None:
            return _reply(server, refusal)
        raw = bytes(envelope.original_content or envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        self._sink._record(
            ReceivedMail(
                mail_from=str(envelope.mail_from),
                rcpt_tos=tuple(str(rcpt) for rcpt in envelope.rcpt_tos),
                message=message,
                raw=raw,
                login=_login(session.auth_data),
            )
        )
        return "250 OK"


class _OAuth2Handler(_Handler):
    """A handler that also takes AUTH XOAUTH2, checking the token with ``user_of``."""

    def __init__(self, sink: SmtpSink, user_of: Callable[[str], str | None]) -> None:
        super().__init__(sink)
        self._user_of = user_of

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Refuse mail from a client that has not logged in."""
        if not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def auth_XOAUTH2(self, server: Any, args: list[str]) -> AuthResult:
        r"""Accept ``user=U\x01auth=Bearer T\x01\x01`` when T is U's valid token."""
        answer = await server.challenge_auth("") if len(args) == 1 else _b64(args[1])
        if answer is MISSING or answer is None:
            return AuthResult(success=False, handled=False)
        fields = dict(part.split("=", 1) for part in answer.decode().split("\x01") if "=" in part)
        user, bearer = fields.get("user", ""), fields.get("auth", "")
        if bearer.startswith("Bearer ") and self._user_of(bearer[7:]) == user:
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        # As Gmail does: the reason in a 334 challenge, answered by an empty line.
        await server.challenge_auth('{"status":"401","schemes":"Bearer"}')
        return AuthResult(success=False, handled=False)


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _login(auth_data: Any) -> str | None:
    """The user name an authenticator recorded, if it recorded one."""
    login = getattr(auth_data, "login", None)
    return login.decode() if isinstance(login, bytes) else login


class SmtpSink:
    """An aiosmtpd server on 127.0.0.1 that collects mail in ``messages``.

    Set ``respond_with`` (e.g. ``"451 4.3.0 Try again later"``) to refuse DATA with that
    reply instead of accepting. For a script, append replies to ``data_replies`` (used
    one per DATA, then mail is accepted again) or to ``rcpt_replies[address]`` (one per
    RCPT of that lower-cased address); a reply of ``None`` in a script accepts that
    once. A 421 reply also closes the connection. ``stop`` and ``start`` again listen
    on the same port. With ``oauth2_user_of`` (an access token -> its user, or None) the
    sink takes AUTH XOAUTH2 in plaintext and refuses mail sent without logging in.
    Extra keyword arguments go to aiosmtpd's ``SMTP`` (for example
    ``authenticator`` and ``auth_require_tls``).
    reply instead of accepting. ``on_receive``, when set, is called with each mail once it
    is recorded and before the client is answered (a crash test kills the sender there).
    Extra keyword arguments go to aiosmtpd's ``SMTP`` (for example ``authenticator`` and
    ``auth_require_tls``).
    """

    host = "127.0.0.1"

    def __init__(
        self, *, oauth2_user_of: Callable[[str], str | None] | None = None, **smtp_kwargs: Any
    ) -> None:
        self.port = 0
        self._oauth2_user_of = oauth2_user_of
        self.respond_with: str | None = None
        self.data_replies: list[str | None] = []
        self.rcpt_replies: dict[str, list[str | None]] = {}
        self.on_receive: Callable[[ReceivedMail], None] | None = None
        self._smtp_kwargs = smtp_kwargs
        self._messages: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start listening: on a free port the first time, on the same port after ``stop``."""
        # aiosmtpd's Controller cannot listen on port 0: it checks readiness by
        # connecting to the port it was given, so a real port is picked beforehand.
        if not self.port:
            self.port = free_port(self.host)
        handler = _Handler(self)
        settings = dict(self._smtp_kwargs)
        if self._oauth2_user_of is not None:
            handler = _OAuth2Handler(self, self._oauth2_user_of)
            settings.setdefault("auth_require_tls", False)
        self._controller = Controller(handler, hostname=self.host, port=self.port, **settings)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening (received mail stays in ``messages``)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.stop()

    @property
    def messages(self) -> list[ReceivedMail]:
        """Everything received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget everything received so far."""
        with self._lock:
            self._messages.clear()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        """Return ``messages`` once there are at least ``count``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            received = self.messages
            if len(received) >= count or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        if len(received) < count:
            raise AssertionError(
                f"expected {count} mail(s) at the SMTP sink within {timeout}s, got {len(received)}"
            )
        return received

    def _next_reply(self, script: list[str | None] | None) -> str | None:
        """Take the next reply off ``script`` (None: accept)."""
        with self._lock:
            return script.pop(0) if script else None

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._messages.append(mail)
        hook = self.on_receive
        if hook is not None:
            hook(mail)
