"""A state database the daemon cannot use ends the command with one clear line, never a traceback.

Every case is a real file in a real state directory, and the real ``sla-daemon`` command
(a subprocess) or ``main`` is run on it: the exit status is the documented one
(docs/operations.md, "Exit status"), stderr names the file, what is wrong and what to do,
and the file is left exactly as it was. The mailbox is a local Maildir and nothing is
sent, so no server is needed; the whole module takes about 20 s.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sla_daemon.adapters.schema import SCHEMA_VERSION
from sla_daemon.cli import main
from sla_daemon.errors import EX_CANTCREAT, EX_DATAERR, EX_STATE_BUSY
from tests.daemon_process import DaemonProcess
from tests.mailbuild import build_mail
from tests.servers.dovecot import free_port

SLA_DAEMON = str(Path(sys.executable).parent / "sla-daemon")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration on an empty local Maildir, its state in ``tmp_path/state``."""
    maildir = tmp_path / "Maildir"
    for part in ("cur", "new", "tmp"):
        (maildir / part).mkdir(parents=True)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
state_dir: {tmp_path / "state"}
team: {{name: Acme Support, domains: [acme.example], from: "Support <support@acme.example>"}}
mailboxes:
  - {{name: support, path: {maildir}, format: maildir, poll_interval: 1s}}
smtp: {{host: 127.0.0.1, port: {free_port()}, security: none}}
notices: {{digest_window: 0s}}
accounts:
  - {{name: Globex, domains: [globex.example], owner: alice@acme.example}}
""",
        encoding="utf-8",
    )
    return path


def database(config: Path) -> Path:
    """The state database of ``config``."""
    return config.parent / "state" / "state.sqlite3"


def sla_daemon(
    config: Path, *args: str, read_only: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sla-daemon --config CONFIG ARGS``, with ``read_only`` on a read-only mount.

    As root (CI) permissions do not stop a write, so ``read_only`` is bind-mounted
    read-only in a private mount namespace: a real read-only file system. Otherwise its
    write permissions are taken away for the run.
    """
    command = [SLA_DAEMON, "--config", str(config), *args]
    if read_only is not None and os.geteuid() == 0:
        mount = 'mount --bind -o ro "$0" "$0" && exec "$@"'
        command = ["unshare", "--mount", "sh", "-c", mount, str(read_only), *command]
    elif read_only is not None:
        read_only.chmod(0o500 if read_only.is_dir() else 0o400)
    try:
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin"},
            timeout=120,
        )
    finally:
        if read_only is not None and os.geteuid() != 0:
            read_only.chmod(0o700 if read_only.is_dir() else 0o600)


def made_database(config: Path) -> Path:
    """The state database after one successful ``run --once``."""
    done = sla_daemon(config, "run", "--once")
    assert done.returncode == 0, done.stderr
    return database(config)


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one error the command logged (JSON on stderr), with no traceback around it."""
    assert "Traceback" not in done.stderr, done.stderr
    [error] = [
        json.loads(line)
        for line in done.stderr.splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "error"
    ]
    assert error["event"] == "state.unusable" and error["exit_status"] == done.returncode
    return str(error["error"])


def test_garbage_bytes_stop_run_with_65_and_are_left_as_they_are(config: Path) -> None:
    """A database of random bytes: `run` exits 65, names it, says restore; bytes unchanged."""
    path = database(config)
    path.parent.mkdir(mode=0o700)
    garbage = os.urandom(8192)
    path.write_bytes(garbage)
    done = sla_daemon(config, "run", "--once")
    assert done.returncode == EX_DATAERR
    message = refusal(done)
    assert str(path) in message and "file is not a database" in message
    assert "restore the latest backup" in message and '"Backups"' in message
    assert path.read_bytes() == garbage
    assert sorted(p.name for p in path.parent.iterdir()) == ["daemon.lock", "state.sqlite3"]


def test_a_truncated_database_stops_status_with_65(config: Path) -> None:
    """A database cut to half its size: `status` exits 65 with SQLite's "malformed"."""
    path = made_database(config)
    size = path.stat().st_size
    assert size >= 8192  # more than one page, so that the cut loses some
    os.truncate(path, size // 2)
    done = sla_daemon(config, "status")
    assert done.returncode == EX_DATAERR
    message = refusal(done)
    assert str(path) in message and "malformed" in message and "truncated" in message
    assert path.stat().st_size == size // 2


def test_a_file_that_is_not_sqlite_stops_report_with_65(config: Path) -> None:
    """A text file where the database should be: `report` exits 65 and leaves it alone."""
    path = database(config)
    path.parent.mkdir(mode=0o700)
    path.write_text("state_dir: /var/lib/sla-daemon\n" * 200, encoding="utf-8")
    done = sla_daemon(config, "report")
    assert done.returncode == EX_DATAERR
    message = refusal(done)
    assert str(path) in message and "not a usable sla-daemon state database" in message
    assert path.read_text(encoding="utf-8").startswith("state_dir:")


def test_a_damaged_database_fails_check_config_with_65(config: Path) -> None:
    """`check-config` reads the database too: a damaged one is reported, exit 65."""
    path = database(config)
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"\0" * 100 + os.urandom(4000))
    done = sla_daemon(config, "check-config")
    assert done.returncode == EX_DATAERR
    assert str(path) in refusal(done)


def test_check_config_reports_a_sound_database(config: Path) -> None:
    """A sound database is one line of `check-config`'s summary; the exit status is 0."""
    made_database(config)
    done = sla_daemon(config, "check-config")
    assert done.returncode == 0, done.stderr
    assert f"state database: schema version {SCHEMA_VERSION}, readable" in done.stdout


def test_a_newer_schema_stops_run_and_status_with_65_and_says_upgrade(config: Path) -> None:
    """A database of a newer sla-daemon: both exit 65 saying "upgrade"; it is not migrated."""
    path = made_database(config)
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 99")
    connection.close()
    for command in (["run", "--once"], ["status"]):
        done = sla_daemon(config, *command)
        assert done.returncode == EX_DATAERR, command
        message = refusal(done)
        assert str(path) in message and "schema version 99" in message
        assert "upgrade sla-daemon" in message
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (99,)
    connection.close()


def test_a_read_only_state_directory_stops_run_with_73(config: Path) -> None:
    """A state directory on a read-only mount: `run` exits 73 and says it must be writable."""
    path = made_database(config)
    before = path.read_bytes()
    done = sla_daemon(config, "run", "--once", read_only=path.parent)
    assert done.returncode == EX_CANTCREAT
    message = refusal(done)
    assert str(path.parent) in message and "writable by the user sla-daemon runs as" in message
    assert path.read_bytes() == before


def test_a_read_only_database_file_stops_run_with_73(config: Path) -> None:
    """Only the database file read-only: `run` exits 73 naming that file."""
    path = made_database(config)
    done = sla_daemon(config, "run", "--once", read_only=path)
    assert done.returncode == EX_CANTCREAT
    message = refusal(done)
    assert f"cannot open or write {path}:" in message


@pytest.fixture
def running_daemon(config: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    """``sla-daemon run`` on ``config``, past its first cycle and holding its state directory."""
    daemon = DaemonProcess(config, {}, tmp_path / "daemon.log")
    daemon.start()
    try:
        # After its first cycle it holds the lock and has made the database.
        daemon.wait_for_cycles(1, timeout=60)
        yield daemon
    finally:
        daemon.ensure_dead()


def test_a_second_run_on_a_running_daemons_state_is_refused_with_75(
    config: Path, running_daemon: DaemonProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    """While one daemon runs, a second `run` exits 75 naming it; `status` still reads.

    Once the first has stopped, or been killed, the directory is free again: the lock
    goes with its process, so a crash leaves nothing to clean up.
    """
    process = running_daemon.process
    assert process is not None
    assert main(["--config", str(config), "run", "--once"]) == EX_STATE_BUSY
    stderr = capsys.readouterr().err
    assert "Traceback" not in stderr
    assert f"another sla-daemon (process {process.pid}) is running" in stderr
    assert "send every notice twice" in stderr
    assert main(["--config", str(config), "status"]) == 0
    running_daemon.sigkill()
    assert main(["--config", str(config), "run", "--once"]) == 0


def damaged_database(config: Path) -> Path:
    """A state database with stored mail whose header is sound but whose tables are not.

    Thirty client requests are read into it by ``run --once``; then the root page of
    the ``messages`` table is overwritten with zeros. The file still opens (its first
    page, with the schema and version, is intact) and ``PRAGMA quick_check`` fails.
    """
    maildir = config.parent / "Maildir"
    arrived = datetime.now(UTC) - timedelta(hours=3)  # read, but too old for an auto-ack
    for number in range(30):
        mail = build_mail(
            f"request-{number}@globex.example",
            sender="dana@globex.example",
            subject=f"Request {number}",
            at=arrived,
            body="Our invoices are missing.\n" * 40,
        )
        (maildir / "cur" / f"request-{number}:2,").write_bytes(mail.as_bytes())
    path = made_database(config)
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        [(root,)] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'messages'")
        [(page_size,)] = db.execute("PRAGMA page_size")
    assert root > 1
    with path.open("r+b") as handle:
        handle.seek((root - 1) * page_size)
        handle.write(bytes(page_size))
    assert quick_check(path) != "ok"
    return path


def quick_check(path: Path) -> str:
    """What ``PRAGMA quick_check`` says of ``path`` ("ok" when sound), read-only.

    The header is read first: the schema version must still be there to see.
    """
    with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        try:
            return "\n".join(str(row[0]) for row in db.execute("PRAGMA quick_check"))
        except sqlite3.DatabaseError as exc:  # the damage may stop the check itself
            return str(exc)


def test_damage_found_after_the_database_opened_stops_status_and_run_once_with_65(
    config: Path,
) -> None:
    """Damaged table pages: `status` and `run --once` exit 65 naming the file; it is unchanged.

    The database opens (its header is sound); the damage is found by the queries
    themselves, and each command ends with the same one line as a damaged file found
    at open: no traceback, no `cycle.failed`.
    """
    path = damaged_database(config)
    before = path.read_bytes()
    for command in (["status"], ["run", "--once"]):
        done = sla_daemon(config, *command)
        assert done.returncode == EX_DATAERR, (command, done.stderr)
        message = refusal(done)
        assert str(path) in message and "malformed" in message, command
        assert "restore the latest backup" in message, command
        assert "cycle.failed" not in done.stderr, command
        assert path.read_bytes() == before, command


def test_a_running_daemon_that_finds_damage_exits_65(config: Path, tmp_path: Path) -> None:
    """`run` (the daemon, not --once) stops at the damage with 65 instead of retrying."""
    path = damaged_database(config)
    before = path.read_bytes()
    daemon = DaemonProcess(config, {}, tmp_path / "daemon.log")
    daemon.start()
    try:
        assert daemon.process is not None
        assert daemon.process.wait(timeout=60) == EX_DATAERR, daemon.tail()
    finally:
        daemon.ensure_dead()
    assert '"state.unusable"' in daemon.log_text() and "Traceback" not in daemon.log_text()
    assert path.read_bytes() == before
