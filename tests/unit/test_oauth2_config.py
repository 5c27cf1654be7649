"""The ``auth: oauth2`` keys: what validates, and the errors that name the key to fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sla_daemon.config import parse_config
from sla_daemon.config_oauth2 import MICROSOFT_DEFAULT_SCOPE
from sla_daemon.errors import EX_CONFIG, ConfigError

HEAD = """\
state_dir: /tmp/sla-state
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
smtp:
  host: smtp.acme.example
"""


def _with_mailbox(mailbox: str) -> str:
    indented = "".join(f"    {line}\n" for line in mailbox.strip().splitlines())
    return HEAD + "mailboxes:\n  - name: support\n    host: imap.acme.example\n" + indented


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml")
    return caught.value.problems


def test_password_stays_the_default_login() -> None:
    """A mailbox without ``auth`` logs in with its password, as before."""
    config = parse_config(_with_mailbox("username: s@acme.example\npassword_env: X"), "config.yaml")
    assert config.mailboxes[0].auth == "password" and config.mailboxes[0].oauth2 is None


def test_token_command_as_list_or_shell_line() -> None:
    """``token_command`` is read as a list (no shell) or a string (a shell line)."""
    listed = parse_config(
        _with_mailbox(
            "username: s@acme.example\nauth: oauth2\n"
            "oauth2: {token_command: [oauth2-helper, --user, s], token_lifetime: 30m}"
        ),
        "config.yaml",
    )
    oauth2 = listed.mailboxes[0].oauth2
    assert oauth2 is not None and oauth2.token_command == ["oauth2-helper", "--user", "s"]
    assert oauth2.token_lifetime.total_seconds() == 1800
    line = parse_config(
        _with_mailbox(
            "username: s@acme.example\nauth: oauth2\noauth2: {token_command: 'pass show x'}"
        ),
        "config.yaml",
    )
    assert line.mailboxes[0].oauth2 is not None
    assert line.mailboxes[0].oauth2.token_command == "pass show x"


def test_providers_fill_in_their_token_endpoint() -> None:
    """The Google and Microsoft providers know their endpoints; Microsoft gets tenant and scope."""
    google = (
        parse_config(
            _with_mailbox(
                "username: s@acme.example\nauth: oauth2\n"
                "oauth2: {provider: google, client_id: cid, refresh_token_env: RT}"
            ),
            "config.yaml",
        )
        .mailboxes[0]
        .oauth2
    )
    assert google is not None
    assert google.endpoint() == "https://oauth2.googleapis.com/token"
    assert google.effective_scope() is None
    microsoft = (
        parse_config(
            _with_mailbox(
                "username: s@acme.example\nauth: oauth2\n"
                "oauth2: {provider: microsoft, tenant: acme.example, client_id: cid,"
                " refresh_token_file: /run/credentials/rt}"
            ),
            "config.yaml",
        )
        .mailboxes[0]
        .oauth2
    )
    assert microsoft is not None
    assert microsoft.endpoint() == (
        "https://login.microsoftonline.com/acme.example/oauth2/v2.0/token"
    )
    assert microsoft.effective_scope() == MICROSOFT_DEFAULT_SCOPE


@pytest.mark.parametrize(
    ("mailbox", "expected"),
    [
        (
            "username: s\nauth: oauth2",
            "config.yaml:11: mailboxes[0].auth: auth: oauth2 needs an oauth2 section",
        ),
        (
            "username: s\nauth: oauth2\n"
            "oauth2: {token_command: x, provider: google, client_id: c, refresh_token_env: R}",
            "config.yaml:12: mailboxes[0].oauth2: give either token_command or the refresh flow, "
            "not both (found token_command and provider, client_id, refresh_token_env)",
        ),
        (
            "username: s\nauth: oauth2\npassword_env: P\noauth2: {token_command: x}",
            "config.yaml:12: mailboxes[0].password_env: a password is not used with "
            "auth: oauth2; remove it",
        ),
        (
            "username: s\nauth: oauth2\noauth2: {provider: custom, client_id: c,"
            " refresh_token_env: R}",
            "config.yaml:12: mailboxes[0].oauth2.token_endpoint: provider custom needs a "
            "token_endpoint",
        ),
        (
            "username: s\nauth: oauth2\noauth2: {provider: custom, client_id: c,"
            " refresh_token_env: R, token_endpoint: 'http://auth.example/token'}",
            "config.yaml:12: mailboxes[0].oauth2.token_endpoint: expected an https:// URL "
            "(http only to loopback), got 'http://auth.example/token'",
        ),
        (
            "username: s\nauth: oauth2\noauth2: {provider: google, client_id: c}",
            "config.yaml:12: mailboxes[0].oauth2: give exactly one of refresh_token_file, "
            "refresh_token_env",
        ),
        (
            "username: s\nauth: oauth2\noauth2: {client_id: c, refresh_token_env: R}",
            "config.yaml:12: mailboxes[0].oauth2: give token_command, or provider "
            "(google, microsoft, custom)",
        ),
        (
            "username: s\npassword_env: P\noauth2: {token_command: x}",
            "config.yaml:12: mailboxes[0].oauth2: is used only with auth: oauth2",
        ),
    ],
)
def test_keys_that_do_not_fit_together_are_named(mailbox: str, expected: str) -> None:
    """Each mistake is one line naming the file, the line and the key to fix."""
    assert expected in _problems(_with_mailbox(mailbox))


def test_smtp_oauth2_is_checked_the_same_way() -> None:
    """``smtp`` takes ``auth: oauth2`` too, and needs its username and oauth2 section."""
    maildir = "mailboxes:\n  - {name: s, path: /tmp/maildir}\n"
    no_section = HEAD.replace("smtp.acme.example\n", "smtp.acme.example\n  auth: oauth2\n")
    assert _problems(no_section + maildir) == [
        "config.yaml:7: smtp.auth: auth: oauth2 needs an oauth2 section",
    ]
    no_user = HEAD.replace(
        "smtp.acme.example\n", "smtp.acme.example\n  auth: oauth2\n  oauth2: {token_command: t}\n"
    )
    assert _problems(no_user + maildir) == [
        "config.yaml:5: smtp.username: auth: oauth2 needs the username",
    ]


def test_missing_refresh_token_file_fails_check_config_with_78(tmp_path: Path) -> None:
    """check-config reads the refresh token file: a missing one exits 78 and says which."""
    path = tmp_path / "config.yaml"
    path.write_text(
        _with_mailbox(
            "username: s@acme.example\nauth: oauth2\n"
            f"oauth2: {{provider: google, client_id: c, refresh_token_file: {tmp_path}/none}}"
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "sla_daemon", "--config", str(path), "check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == EX_CONFIG
    assert f"refresh_token_file {tmp_path}/none: cannot read it" in done.stderr


def test_check_config_shows_no_secret(tmp_path: Path) -> None:
    """check-config of a valid oauth2 file prints neither the client secret nor the token."""
    path = tmp_path / "config.yaml"
    path.write_text(
        _with_mailbox(
            "username: s@acme.example\nauth: oauth2\n"
            "oauth2: {provider: microsoft, client_id: c, client_secret: inline-s3cret,"
            " refresh_token_env: SLA_TEST_REFRESH}"
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "sla_daemon", "--config", str(path), "check-config"],
        capture_output=True,
        text=True,
        check=False,
        env={"SLA_TEST_REFRESH": "rt-from-env", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert "configuration is valid" in done.stdout
    assert "inline-s3cret" not in done.stdout + done.stderr
    assert "rt-from-env" not in done.stdout + done.stderr
