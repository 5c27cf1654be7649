"""The shipped unit under a real systemd: start after READY, reload, clean stop, exit 78, 65.

The service manager is ``/lib/systemd/systemd`` as PID 1 of private namespaces
(``tests/servers/systemd_manager.py``). The install follows docs/operations.md: the
sysusers and tmpfiles files from ``deploy/systemd/`` applied by ``systemd-sysusers`` and
``systemd-tmpfiles``, ``/usr/local/bin/sla-daemon`` linked to the installed console script
(here the test environment's), the configuration in ``/etc/sla-daemon/config.yaml`` with
the IMAP password as the ``imap-support`` credential, and the unit file unchanged in
``/etc/systemd/system``. The mailbox and SMTP server are the real Dovecot and aiosmtpd
fixtures on loopback.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ImapUser
from tests.e2e.test_first_run import _config as first_run_config
from tests.e2e.test_first_run import _mail
from tests.operations_doc import shell_line
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink
from tests.servers.systemd_manager import SystemdManager, unavailable_reason

pytestmark = pytest.mark.integration

CHECKOUT = Path(__file__).parents[2]
SYSTEMD_DIR = CHECKOUT / "deploy" / "systemd"
UNIT = "sla-daemon.service"
CREDENTIALS = "/run/credentials/sla-daemon.service"
# As the example configuration writes it: systemd sets the variable for the service, and
# the documented check sets it to the directory the unit loads the credentials from.
CREDENTIALS_IN_CONFIG = "${CREDENTIALS_DIRECTORY}"
SHELL_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _config(tmp_path: Path, user: ImapUser, sink: SmtpSink, extra_mailbox: str = "") -> str:
    """The end-to-end configuration as installed: state and password where the unit has them."""
    text = first_run_config(tmp_path, user, sink).read_text()
    text = text.replace(f"state_dir: {tmp_path / 'state'}", "state_dir: /var/lib/sla-daemon")
    password = f"password_file: {CREDENTIALS_IN_CONFIG}/imap-support\n    poll_interval: 1s"
    text = text.replace("password_env: E2E_IMAP_PASSWORD", password)
    return text.replace("smtp:\n", extra_mailbox + "smtp:\n", 1)


def _drop_in() -> str:
    """What must differ from the shipped unit here, and nothing else.

    Only when the test's checkout or its Python interpreter (a venv links to the
    interpreter it was made with) lies under a home directory: ``ProtectHome=yes``
    would hide it, so ``ProtectHome=tmpfs`` (an empty home) with just those directories
    bound read-only into it; and when one lies under /tmp or /var/tmp (a fresh clone
    often does), which ``PrivateTmp=yes`` replaces: it is bound read-only into the
    private one. Every other line of the unit applies as shipped.
    """
    homes = ("/home", "/root", "/run/user")
    temporary = ("/tmp", "/var/tmp")
    needed = [CHECKOUT.resolve(), Path(sys.base_prefix).resolve()]
    in_home = [path for path in needed if any(path.is_relative_to(home) for home in homes)]
    in_tmp = [path for path in needed if any(path.is_relative_to(t) for t in temporary)]
    lines = ["[Service]"]
    if in_home:
        lines.append("ProtectHome=tmpfs")
    if in_home or in_tmp:
        lines.append("BindReadOnlyPaths=" + " ".join(map(str, in_home + in_tmp)))
    return "\n".join(lines) + "\n"


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[SystemdManager]:
    """A private systemd with journald running and sla-daemon installed as documented."""
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    with SystemdManager(tmp_path / "systemd") as manager:
        manager.systemctl("start", "systemd-journald.socket", "systemd-journald.service")
        for kind in ("sysusers", "tmpfiles"):
            text = (SYSTEMD_DIR / f"sla-daemon.{kind}.conf").read_text()
            manager.write(f"/etc/{kind}.d/sla-daemon.conf", text)
        manager.run("systemd-sysusers", "/etc/sysusers.d/sla-daemon.conf")
        manager.run("systemd-tmpfiles", "--create", "/etc/tmpfiles.d/sla-daemon.conf")
        console_script = Path(sys.executable).parent / "sla-daemon"
        manager.run("ln", "-s", str(console_script), "/usr/local/bin/sla-daemon")
        manager.write(f"/etc/systemd/system/{UNIT}", (SYSTEMD_DIR / UNIT).read_text())
        manager.write(f"/etc/systemd/system/{UNIT}.d/test.conf", _drop_in())
        yield manager


def _install_config(manager: SystemdManager, config: str, password: str) -> None:
    """Config readable by the service's group, passwords readable by root alone."""
    manager.write("/etc/sla-daemon/config.yaml", config, mode=0o640)
    manager.run("chgrp", "sla-daemon", "/etc/sla-daemon/config.yaml")
    manager.write("/etc/sla-daemon/secrets/imap-support", password, mode=0o600)
    # The sink needs no login; the unit still loads the credential, so it must exist.
    manager.write("/etc/sla-daemon/secrets/smtp", "unused", mode=0o600)
    manager.systemctl("daemon-reload")


def _status_text_until(manager: SystemdManager, wanted: str, timeout: float = 60) -> str:
    """Wait for the unit's ``StatusText=`` to contain ``wanted``; return the last seen."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = manager.properties(UNIT, "StatusText")["StatusText"]
        if wanted in text:
            return text
        time.sleep(0.2)
    return text


def _as_documented(manager: SystemdManager, containing: str) -> str:
    """Run the docs/operations.md command line containing ``containing``, as written."""
    return manager.run("env", SHELL_PATH, "sh", "-c", shell_line(containing)).stdout


def _journal(manager: SystemdManager) -> str:
    return manager.run("journalctl", "-u", UNIT, "--no-pager", "-o", "cat").stdout


def test_unit_starts_after_ready_reloads_and_stops_cleanly_under_systemd(
    systemd: SystemdManager,
    dovecot_server: DovecotServer,
    imap_user: ImapUser,
    smtp_sink: SmtpSink,
    tmp_path: Path,
) -> None:
    """`systemctl start` returns once READY (status line set), reload applies, stop is 0.

    Installed and checked as docs/operations.md says, the service (its hardening as
    loaded still rated OK by `systemd-analyze security`) auto-acknowledges a client's
    waiting request; the documented backup runs while it does; `systemctl reload` adds a
    second mailbox while the unit stays active; `systemctl stop` ends it with result
    `success` and exit status 0; restored from the backup, it starts again without
    sending the acknowledgement twice.
    """
    now = datetime.now(UTC).replace(microsecond=0)
    raw = _mail(
        "req@globex.example",
        "Dana <dana@globex.example>",
        "support@acme.example",
        "Help",
        "Hi",
        now,
    )
    dovecot_server.append(imap_user.username, "INBOX", raw, now)
    _install_config(systemd, _config(tmp_path, imap_user, smtp_sink), imap_user.password)
    systemd.run("systemd-analyze", "verify", f"/etc/systemd/system/{UNIT}")
    assert "configuration is valid" in _as_documented(systemd, "check-config")

    start = systemd.systemctl("start", UNIT, check=False)
    assert start.returncode == 0, start.stderr + _journal(systemd)
    started = systemd.properties(UNIT, "ActiveState", "SubState", "StatusText", "User")
    assert started["ActiveState"] == "active" and started["SubState"] == "running", started
    assert started["StatusText"].startswith("1 mailbox(es) synced"), started
    assert started["User"] == "sla-daemon"
    security = systemd.run("systemd-analyze", "security", UNIT).stdout
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", security)
    assert found is not None and float(found.group(1)) <= 2.0, security
    (ack,) = smtp_sink.wait_for(1, timeout=60)
    assert str(ack.message["Subject"]) == "Re: Help"
    _as_documented(systemd, '".backup ')  # while the service runs
    _as_documented(systemd, "mv /var/lib/sla-daemon/backup.sqlite3")
    (backup,) = systemd.run("sh", "-c", "ls /var/backups/sla-daemon-*.sqlite3").stdout.split()

    second = f"""\
  - name: archive
    host: {imap_user.host}
    port: {imap_user.port}
    security: none
    username: {imap_user.username}
    password_file: {CREDENTIALS_IN_CONFIG}/imap-support
    poll_interval: 1s
    folders: {{inbox: [INBOX], sent: [Sent]}}
"""
    systemd.write("/etc/sla-daemon/config.yaml", _config(tmp_path, imap_user, smtp_sink, second))
    systemd.systemctl("reload", UNIT)
    status = _status_text_until(systemd, "2 mailbox(es)")
    assert "2 mailbox(es)" in status, status + _journal(systemd)
    assert systemd.properties(UNIT, "ActiveState")["ActiveState"] == "active"
    assert "reload.applied" in _journal(systemd)

    systemd.systemctl("stop", UNIT)
    stopped = systemd.properties(UNIT, "ActiveState", "Result", "ExecMainStatus", "NRestarts")
    assert stopped == {
        "ActiveState": "inactive",
        "Result": "success",
        "ExecMainStatus": "0",
        "NRestarts": "0",
    }, stopped

    _as_documented(systemd, "rm -f /var/lib/sla-daemon/state.sqlite3-wal")
    restore = shell_line("install -m 0600 -o sla-daemon -g sla-daemon /var/backups/")
    systemd.run("sh", "-c", re.sub(r"/var/backups/\S+", backup, restore, count=1))
    systemd.systemctl("start", UNIT)
    assert systemd.properties(UNIT, "ActiveState")["ActiveState"] == "active"
    systemd.systemctl("stop", UNIT)
    # Neither the reload nor the restored backup decided the acknowledgement again.
    assert len(smtp_sink.messages) == 1


def test_a_configuration_error_fails_the_unit_with_78_and_no_restart(
    systemd: SystemdManager, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """An invalid configuration: `systemctl start` fails, status 78, no restart scheduled.

    With a restart pending the unit would be `activating (auto-restart)`, not `failed`.
    """
    broken = _config(tmp_path, imap_user, smtp_sink).replace("within: 1h", "within: soon")
    _install_config(systemd, broken, imap_user.password)

    result = systemd.systemctl("start", UNIT, check=False)
    assert result.returncode != 0
    failed = systemd.properties(
        UNIT, "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts"
    )
    assert failed["ActiveState"] == "failed" and failed["Result"] == "exit-code", failed
    assert failed["ExecMainStatus"] == "78" and failed["NRestarts"] == "0", failed
    assert "policies.standard.acknowledge.within" in _journal(systemd)


def test_a_damaged_state_database_fails_the_unit_with_65_and_no_restart(
    systemd: SystemdManager, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """Random bytes as the state database: status 65, no restart, the journal says restore.

    The file is the operator's to restore: the service leaves it byte for byte as it was.
    """
    _install_config(systemd, _config(tmp_path, imap_user, smtp_sink), imap_user.password)
    database = "/var/lib/sla-daemon/state.sqlite3"
    systemd.run(
        "sh",
        "-c",
        "install -d -m 0700 -o sla-daemon -g sla-daemon /var/lib/sla-daemon && "
        f"head -c 8192 /dev/urandom > {database} && chown sla-daemon: {database}",
    )
    before = systemd.run("sha256sum", database).stdout

    assert systemd.systemctl("start", UNIT, check=False).returncode != 0
    failed = systemd.properties(UNIT, "ActiveState", "ExecMainStatus", "NRestarts")
    assert failed["ActiveState"] == "failed", failed
    assert failed["ExecMainStatus"] == "65" and failed["NRestarts"] == "0", failed
    journal = _journal(systemd)
    assert f"{database} is not a usable sla-daemon state database" in journal
    assert "restore the latest backup" in journal
    assert systemd.run("sha256sum", database).stdout == before


def test_an_encrypted_credential_replaces_the_plain_file_as_documented(
    systemd: SystemdManager, imap_user: ImapUser, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    """The documented `systemd-creds encrypt` and drop-in: the service gets the plain text.

    The plain `smtp` file is removed first, so what the service finds as its `smtp`
    credential can only come from the encrypted file: the password that was encrypted.
    """
    _install_config(systemd, _config(tmp_path, imap_user, smtp_sink), imap_user.password)
    systemd.run("rm", "/etc/sla-daemon/secrets/smtp")
    encrypt = shell_line("systemd-creds encrypt")
    _, pipe, encrypt_only = encrypt.partition(" | ")
    assert pipe, encrypt  # the password comes from systemd-ask-password, typed at a prompt
    systemd.run("env", SHELL_PATH, "sh", "-c", f"printf %s smtp-secret | {encrypt_only}")
    _as_documented(systemd, "mkdir -p /etc/systemd/system/sla-daemon.service.d")
    _as_documented(systemd, "LoadCredentialEncrypted=")
    systemd.systemctl("daemon-reload")

    start = systemd.systemctl("start", UNIT, check=False)
    assert start.returncode == 0, start.stderr + _journal(systemd)
    main_pid = systemd.properties(UNIT, "MainPID")["MainPID"]
    credential = systemd.run("nsenter", "-t", main_pid, "-m", "cat", f"{CREDENTIALS}/smtp")
    assert credential.stdout == "smtp-secret"
    systemd.systemctl("stop", UNIT)
