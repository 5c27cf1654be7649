"""TLS certificates are verified by default; ``ca_file`` trusts a private certificate.

End to end with ``run --once`` against the real self-signed Dovecot (implicit TLS) and
an aiosmtpd sink speaking STARTTLS with the same self-signed certificate.
"""

from __future__ import annotations

import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sla_daemon.config import parse_config
from sla_daemon.errors import ConfigError
from sla_daemon.tls import client_context
from tests.hostile.cli import Endpoints, run_cli, write_config
from tests.mailbuild import build_mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

pytestmark = pytest.mark.integration

PASSWORD = "Tls-Hostile-Password-7"


def _starttls_sink(server: DovecotServer) -> SmtpSink:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    assert server.root is not None
    context.load_cert_chain(server.certificate_path, server.root / "key.pem")
    return SmtpSink(tls_context=context, require_starttls=True)


def test_self_signed_servers_are_refused_by_default_and_trusted_with_ca_file(
    tls_dovecot_server: DovecotServer, tmp_path: Path
) -> None:
    """Without ca_file: IMAP is refused (exit 78, no login, no traceback), then SMTP.

    With ca_file on the mailbox only, mail is read but the auto-ack fails for good with
    the certificate named in ``status``; with ca_file on both, the auto-ack arrives.
    """
    server = tls_dovecot_server
    user = f"tls-e2e-{tmp_path.name[-12:].replace('_', '-')}"
    server.add_user(user, PASSWORD)
    now = datetime.now(UTC).replace(microsecond=0)
    mail = build_mail(
        "tls-1@globex.example", sender="Dana <dana@globex.example>", subject="Help", at=now
    )
    server.append(user, "INBOX", mail.as_bytes(), now - timedelta(minutes=1))
    certificate = server.certificate_path
    with _starttls_sink(server) as sink:
        ends = Endpoints(
            imap_host=server.host,
            imap_port=server.tls_port,
            imap_security="tls",
            imap_user=user,
            smtp_host=sink.host,
            smtp_port=sink.port,
            smtp_security="starttls",
        )

        logins = server.log_text().count(f"Login: user=<{user}>")  # the APPEND's
        untrusted = write_config(tmp_path / "untrusted.yaml", tmp_path / "s1", ends)
        refused = run_cli(untrusted, PASSWORD, "run", "--once")
        assert refused.returncode == 78, refused.stderr
        assert "did not verify" in refused.stderr and "ca_file" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert server.log_text().count(f"Login: user=<{user}>") == logins  # none tried

        imap_only = Endpoints(**{**ends.__dict__, "imap_ca_file": certificate})
        half = write_config(tmp_path / "half.yaml", tmp_path / "s2", imap_only)
        assert run_cli(half, PASSWORD, "run", "--once").returncode == 0
        assert sink.messages == []
        status = run_cli(half, PASSWORD, "status")
        assert "certificate" in status.stdout and "did not verify" in status.stdout

        both = Endpoints(**{**imap_only.__dict__, "smtp_ca_file": certificate})
        trusted = write_config(tmp_path / "trusted.yaml", tmp_path / "s3", both)
        run = run_cli(trusted, PASSWORD, "run", "--once")
        assert run.returncode == 0, run.stderr
        [ack] = sink.wait_for(1)
        assert ack.rcpt_tos == ("dana@globex.example",)
        assert server.log_text().count(f"Login: user=<{user}>") == logins + 2


def test_an_unusable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    """A missing ca_file or one without a certificate is a ConfigError naming the key."""
    with pytest.raises(ConfigError, match=r"smtp\.ca_file: cannot read .*missing\.pem"):
        client_context(tmp_path / "missing.pem", key="smtp.ca_file")
    empty = tmp_path / "empty.pem"
    empty.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"smtp\.ca_file: .* holds no usable PEM certificate"):
        client_context(empty, key="smtp.ca_file")


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("127.0.0.1.evil.example", False),
        ("localhost.evil.example", False),
        ("10.0.0.1", False),
        ("smtp.acme.example", False),
    ],
)
def test_plaintext_to_a_host_other_than_loopback_is_refused_for_imap_and_smtp(
    host: str, allowed: bool, tmp_path: Path
) -> None:
    """security: none is a configuration error for both servers unless the host is loopback.

    The host is never resolved: a name that merely starts like a loopback one is refused.
    """
    ends = Endpoints(host, 143, "none", "u", host, 25, "none")
    text = write_config(tmp_path / "c.yaml", tmp_path / "state", ends).read_text()
    if allowed:
        parse_config(text, "c.yaml")
        return
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "c.yaml")
    assert [p.split(": ")[1] for p in caught.value.problems] == [
        "mailboxes[0].security",
        "smtp.security",
    ]
