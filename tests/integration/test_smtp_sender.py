"""SmtpSender against a real aiosmtpd server: delivery, and how every failure is sorted."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from structlog.testing import capture_logs

from sla_daemon.adapters.render import NoticeRenderer
from sla_daemon.adapters.smtp import SmtpSender
from sla_daemon.core.model import (
    Address,
    ClockName,
    ConversationState,
    ConversationStatus,
    Decision,
    MessageFacts,
    NoticeKind,
    Team,
)
from sla_daemon.errors import PermanentError, TransientError
from sla_daemon.hosts import is_loopback_host

pytestmark = pytest.mark.integration

HOST = "127.0.0.1"
USER = "notices@acme.example"
PASSWORD = "s3cret-Pa55word"


def free_port() -> int:
    """A loopback port nobody listens on right now (aiosmtpd cannot bind port 0)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    """One accepted mail: envelope and content."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes


@dataclass
class ScriptedHandler:
    """Accepts mail, or answers RCPT/DATA with a scripted reply."""

    data_reply: str | None = None
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        """Refuse the addresses listed in ``rcpt_replies``, accept the others."""
        reply = self.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Record the mail unless a DATA reply is scripted."""
        if self.data_reply is not None:
            return self.data_reply
        self.received.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content))
        )
        return "250 OK"


@contextmanager
def smtp_server(handler: ScriptedHandler, **smtp_kwargs: Any) -> Iterator[int]:
    """Run an aiosmtpd server on a free loopback port; yield the port."""
    port = free_port()
    controller = Controller(handler, hostname=HOST, port=port, **smtp_kwargs)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def accept_only(password: str) -> Any:
    """An aiosmtpd authenticator that accepts USER with ``password``."""

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == USER.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return authenticator


def notice(**recipients: str) -> EmailMessage:
    """A small notice addressed as given (To by default)."""
    message = EmailMessage()
    message["From"] = "Acme Support <support@acme.example>"
    for header, value in (recipients or {"To": "alice@acme.example"}).items():
        message[header] = value
    message["Subject"] = "[SLA warning] Globex: action plan due in 4h"
    message["Message-ID"] = "<0123abcd.sla@acme.example>"
    message.set_content("Globex is waiting for an action plan.\n")
    return message


def plain_sender(port: int, **options: Any) -> SmtpSender:
    """A sender without TLS to the loopback test server."""
    options.setdefault("username", None)
    options.setdefault("password", None)
    return SmtpSender(HOST, port, "none", timeout=5.0, local_hostname="localhost", **options)


def test_delivers_to_every_envelope_recipient_and_hides_bcc() -> None:
    """To, Cc and Bcc become envelope recipients; the Bcc header is not transmitted."""
    handler = ScriptedHandler()
    with smtp_server(handler) as port:
        plain_sender(port).send(
            notice(To="alice@acme.example", Cc="lead@acme.example", Bcc="audit@acme.example")
        )
    [mail] = handler.received
    assert mail.mail_from == "support@acme.example"
    assert sorted(mail.rcpt_tos) == [
        "alice@acme.example",
        "audit@acme.example",
        "lead@acme.example",
    ]
    assert b"Message-ID: <0123abcd.sla@acme.example>" in mail.content
    assert b"audit@acme.example" not in mail.content


@pytest.mark.parametrize(
    ("reply", "error"),
    [("451 4.3.0 Try again later", TransientError), ("550 5.7.1 Rejected", PermanentError)],
)
def test_data_reply_decides_between_retry_and_give_up(reply: str, error: type[Exception]) -> None:
    """A 4xx answer to DATA is transient, a 5xx answer permanent; the reply is quoted."""
    handler = ScriptedHandler(data_reply=reply)
    with smtp_server(handler) as port, pytest.raises(error, match=reply.split()[0]):
        plain_sender(port).send(notice())
    assert handler.received == []


@pytest.mark.parametrize(
    ("reply", "error"),
    [("450 4.2.1 Mailbox busy", TransientError), ("550 5.1.1 No such user", PermanentError)],
)
def test_every_recipient_refused_decides_by_the_reply_codes(
    reply: str, error: type[Exception]
) -> None:
    """All recipients refused: transient when every code is 4xx, permanent otherwise."""
    handler = ScriptedHandler(
        rcpt_replies={"alice@acme.example": reply, "lead@acme.example": reply}
    )
    with smtp_server(handler) as port, pytest.raises(error, match=r"alice@acme\.example"):
        plain_sender(port).send(notice(To="alice@acme.example, lead@acme.example"))


def test_mixed_refusals_of_every_recipient_are_permanent() -> None:
    """One 4xx and one 5xx refusal: retrying cannot reach everybody, so give up."""
    handler = ScriptedHandler(
        rcpt_replies={
            "alice@acme.example": "450 4.2.1 Mailbox busy",
            "lead@acme.example": "550 5.1.1 No such user",
        }
    )
    with smtp_server(handler) as port, pytest.raises(PermanentError):
        plain_sender(port).send(notice(To="alice@acme.example, lead@acme.example"))


def test_partly_refused_recipients_are_returned_and_the_rest_delivered() -> None:
    """Mail goes to the accepted recipients; each refused one is returned with its reply.

    The sender does not warn about them itself: the delivery code logs each refusal
    once, with the notice it belongs to and what happens next.
    """
    handler = ScriptedHandler(rcpt_replies={"gone@acme.example": "550 5.1.1 No such user"})
    with smtp_server(handler) as port, capture_logs() as logs:
        refused = plain_sender(port).send(notice(To="alice@acme.example, gone@acme.example"))
    assert [mail.rcpt_tos for mail in handler.received] == [["alice@acme.example"]]
    assert list(refused) == ["gone@acme.example"]
    code, reply = refused["gone@acme.example"]
    assert code == 550 and "No such user" in reply
    assert [entry for entry in logs if entry["log_level"] == "warning"] == []


def test_nobody_listening_is_transient() -> None:
    """A refused connection is worth retrying later."""
    with pytest.raises(TransientError, match=r"cannot reach SMTP server 127\.0\.0\.1"):
        plain_sender(free_port()).send(notice())


def test_a_server_that_never_greets_times_out_as_transient() -> None:
    """A hung server is given up on after the timeout, and retried later."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()
        port = listener.getsockname()[1]
        sender = SmtpSender(HOST, port, "none", None, None, timeout=0.5)
        with pytest.raises(TransientError):
            sender.send(notice())


def test_a_server_that_hangs_up_is_transient() -> None:
    """A connection closed before the greeting is a transient failure."""
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()

        def hang_up() -> None:
            connection, _ = listener.accept()
            connection.close()

        thread = threading.Thread(target=hang_up)
        thread.start()
        with pytest.raises(TransientError, match="closed the connection"):
            plain_sender(listener.getsockname()[1]).send(notice())
        thread.join()


def test_refused_login_is_permanent_and_never_shows_the_password() -> None:
    """A wrong password names the server and the user, and not the password."""
    handler = ScriptedHandler()
    with (
        smtp_server(handler, authenticator=accept_only("other"), auth_require_tls=False) as port,
        pytest.raises(PermanentError) as raised,
    ):
        plain_sender(port, username=USER, password=PASSWORD).send(notice())
    text = str(raised.value)
    assert f"127.0.0.1:{port}" in text and USER in text
    assert PASSWORD not in text
    assert PASSWORD not in repr(plain_sender(port, username=USER, password=PASSWORD))
    assert handler.received == []


def test_login_with_the_right_password_delivers() -> None:
    """With a username set the sender logs in before sending."""
    handler = ScriptedHandler()
    with smtp_server(handler, authenticator=accept_only(PASSWORD), auth_require_tls=False) as port:
        plain_sender(port, username=USER, password=PASSWORD).send(notice())
    assert len(handler.received) == 1


@pytest.mark.parametrize("host", ["smtp.acme.example", "192.0.2.10", "localhost.acme.example"])
def test_plaintext_is_refused_except_to_loopback(host: str) -> None:
    """Security "none" to another host is refused before any connection is made."""
    with pytest.raises(ValueError, match="loopback"):
        SmtpSender(host, 25, "none", None, None)
    assert not is_loopback_host(host)
    assert (
        is_loopback_host("localhost") and is_loopback_host("::1") and is_loopback_host("127.0.0.2")
    )


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key), made with openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The test server's TLS context."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def test_implicit_tls_verifies_the_certificate_by_default(
    certificate: tuple[Path, Path],
) -> None:
    """An untrusted certificate is a permanent error unless the context trusts it."""
    handler = ScriptedHandler()
    with smtp_server(handler, ssl_context=server_context(certificate)) as port:
        with pytest.raises(PermanentError, match="certificate"):
            SmtpSender(HOST, port, "tls", None, None, timeout=5.0).send(notice())
        trusting = ssl.create_default_context(cafile=str(certificate[0]))
        SmtpSender(HOST, port, "tls", None, None, timeout=5.0, ssl_context=trusting).send(notice())
    assert len(handler.received) == 1


def test_starttls_upgrades_before_logging_in(certificate: tuple[Path, Path]) -> None:
    """With starttls the login happens on the encrypted connection and mail is delivered."""
    handler = ScriptedHandler()
    trusting = ssl.create_default_context(cafile=str(certificate[0]))
    with smtp_server(
        handler,
        tls_context=server_context(certificate),
        require_starttls=True,
        authenticator=accept_only(PASSWORD),
    ) as port:
        with pytest.raises(PermanentError, match="certificate"):
            SmtpSender(HOST, port, "starttls", USER, PASSWORD, timeout=5.0).send(notice())
        SmtpSender(HOST, port, "starttls", USER, PASSWORD, timeout=5.0, ssl_context=trusting).send(
            notice()
        )
    assert len(handler.received) == 1


def test_a_message_without_recipients_is_permanent() -> None:
    """Nothing to deliver to is a mistake that retrying cannot fix; no connection is made."""
    message = notice()
    del message["To"]
    with pytest.raises(PermanentError, match="no recipients"):
        plain_sender(free_port()).send(message)


def test_a_rendered_notice_stored_as_bytes_arrives_intact() -> None:
    """Render, store as bytes, parse back, send: headers and a non-ASCII subject survive."""
    team = Team(name="Acme Services", from_address=Address("support@acme.example", "Acme"))
    opened = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    subject = "Überweisung fehlgeschlagen — 支付失败"
    client = MessageFacts(
        message_id="<m1@globex.example>",
        arrived_at=opened,
        subject=subject,
        sender=Address("jane@globex.example", "Jane Roe"),
    )
    status = ConversationStatus(
        id="conv-42",
        account=None,
        subject=subject,
        client="jane@globex.example",
        state=ConversationState.AWAITING_ACK,
        opened_at=opened,
        cycle=1,
        acknowledged_at=None,
        acknowledged_by=None,
        first_human_response_at=None,
        action_plan_at=None,
        acknowledge_due=None,
        action_plan_due=None,
        breaches=(),
        message_ids=("<m1@globex.example>",),
    )
    ack = Decision(
        key="conv-42/1/auto_ack",
        kind=NoticeKind.AUTO_ACK,
        conversation_id="conv-42",
        cycle=1,
        recipients=("jane@globex.example",),
        clock=ClockName.ACKNOWLEDGE,
    )
    rendered = NoticeRenderer(None, team, "UTC").render(ack, status, client, None, opened)
    stored = email.message_from_bytes(rendered.as_bytes(), policy=email.policy.default)
    assert isinstance(stored, EmailMessage)

    handler = ScriptedHandler()
    with smtp_server(handler) as port:
        plain_sender(port).send(stored)
    [mail] = handler.received
    assert mail.rcpt_tos == ["jane@globex.example"]
    arrived = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert arrived["Subject"] == f"Re: {subject}"
    assert arrived["Message-ID"] == rendered["Message-ID"]
    assert arrived["In-Reply-To"] == "<m1@globex.example>"
    assert arrived["Auto-Submitted"] == "auto-replied"
