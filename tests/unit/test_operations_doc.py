"""docs/operations.md against the program: its commands exist, its install steps work."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sla_daemon.cli import _parser
from tests.operations_doc import (
    inline_commands,
    shell_line,
    shell_lines,
    sla_daemon_invocations,
)

CHECKOUT = Path(__file__).parents[2]


def _parse(arguments: list[str]) -> tuple[int, str]:
    """Exit status of argparse on ``arguments`` (0 when it parses) and what it printed."""
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            _parser().parse_args(arguments)
    except SystemExit as exit_:
        return int(exit_.code or 0), output.getvalue()
    return 0, output.getvalue()


def test_every_sla_daemon_command_in_the_shell_blocks_is_accepted_by_the_cli() -> None:
    """Each `sla-daemon …` run in a fenced `sh` block parses: subcommands and flags exist."""
    invocations = [args for line in shell_lines() for args in sla_daemon_invocations(line)]
    for arguments in invocations:
        status, output = _parse(arguments)
        assert status == 0, f"sla-daemon {' '.join(arguments)}: {output}"
    used = {word for arguments in invocations for word in arguments}
    assert {"check-config", "status", "report", "--version"} <= used


def test_every_command_quoted_in_the_prose_names_a_real_subcommand_and_flags() -> None:
    """Each backticked `sla-daemon SUBCOMMAND --flag …` names an existing one with its flags."""
    quoted = inline_commands()
    assert quoted
    for command in quoted:
        subcommand, *rest = command.split()
        status, help_text = _parse([subcommand, "--help"])
        assert status == 0, f"sla-daemon {command}: {help_text}"
        for flag in (word for word in rest if word.startswith("--")):
            assert flag in help_text, f"sla-daemon {command}: no {flag}"


def test_a_misspelt_flag_would_be_caught() -> None:
    """The check above fails on a flag the CLI lacks (so it can catch a drifting doc)."""
    (arguments,) = sla_daemon_invocations("runuser -u sla-daemon -- sla-daemon status --jsn")
    assert arguments == ["status", "--jsn"]
    assert _parse(arguments)[0] == 2


def _require(command: str) -> None:
    """Skip without ``command`` on a workstation; fail in CI, where a skip would hide it."""
    if shutil.which(command) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{command} is missing (package systemd)")
        pytest.skip(f"needs {command}")


def test_install_steps_make_the_user_and_the_configuration_directories(tmp_path: Path) -> None:
    """Step 2 of the walk-through, into an empty root: user, group and 0750 directories."""
    _require("systemd-sysusers")
    for kind in ("sysusers", "tmpfiles"):
        line = shell_line(f"deploy/systemd/sla-daemon.{kind}.conf")
        *command, destination = line.split()
        target = tmp_path / destination.lstrip("/")
        target.parent.mkdir(parents=True)
        subprocess.run([*command, str(target)], cwd=CHECKOUT, check=True)
    assert shell_line("systemd-sysusers ") == "systemd-sysusers /etc/sysusers.d/sla-daemon.conf"
    # With --root both read every file in that root's sysusers.d / tmpfiles.d.
    subprocess.run(["systemd-sysusers", f"--root={tmp_path}"], check=True)
    subprocess.run(["systemd-tmpfiles", f"--root={tmp_path}", "--create"], check=True)

    (user,) = [
        line.split(":")
        for line in (tmp_path / "etc" / "passwd").read_text().splitlines()
        if line.startswith("sla-daemon:")
    ]
    assert user[5:] == ["/var/lib/sla-daemon", "/usr/sbin/nologin"]
    for directory in ("etc/sla-daemon", "etc/sla-daemon/secrets"):
        stat = (tmp_path / directory).stat()
        assert (stat.st_mode & 0o7777, stat.st_uid, stat.st_gid) == (0o750, 0, int(user[3]))
