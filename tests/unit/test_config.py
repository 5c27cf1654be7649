"""Loading the configuration: defaults, validation, and errors a person can act on."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from sla_daemon.config import load_config, parse_config
from sla_daemon.errors import EX_CONFIG, ConfigError
from sla_daemon.rules_from_config import build_rules

VALID = """\
state_dir: /tmp/sla-state
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: imap.acme.example
    username: support@acme.example
    password_env: SLA_TEST_IMAP_PASSWORD
smtp:
  host: smtp.acme.example
policies:
  standard:
    acknowledge: {within: 1h}
    action_plan:
      within: 48h
      warn_before: [24h, 4h]
accounts:
  - name: Globex
    domains: [globex.example]
    owner: alice@acme.example
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml")
    return caught.value.problems


def test_valid_file_gets_defaults() -> None:
    """A minimal file validates; unspecified keys take their documented defaults."""
    config = parse_config(VALID, "config.yaml")
    mailbox = config.mailboxes[0]
    assert mailbox.security == "tls" and mailbox.effective_port == 993
    assert mailbox.folders.inbox == ["INBOX"] and mailbox.folders.sent == ["Sent"]
    assert config.smtp.effective_port == 587
    assert config.policies["standard"].action_plan.warn_before == [
        timedelta(hours=24),
        timedelta(hours=4),
    ]
    assert config.ingest.auto_ack_max_age == timedelta(hours=1)
    assert config.ingest.max_body_bytes == 256 * 1024
    assert config.accounts[0].policy == "standard"


def test_bad_duration_names_file_line_and_key_path() -> None:
    """A wrong duration is reported as file:line: key.path: what was expected and got."""
    text = VALID.replace("within: 48h", "within: two days")
    assert _problems(text) == [
        "config.yaml:16: policies.standard.action_plan.within: "
        "expected a duration like 48h, got 'two days'"
    ]


def test_every_problem_is_reported_one_per_line() -> None:
    """Several mistakes give several lines, each with its own line number."""
    text = VALID.replace("warn_before: [24h, 4h]", "warn_before: [24h, soon]").replace(
        "    username: support@acme.example\n", "    username: support@acme.example\n    tls: yes\n"
    )
    problems = _problems(text)
    assert "config.yaml:9: mailboxes[0].tls: unknown key" in problems
    assert any(
        p.startswith("config.yaml:18: policies.standard.action_plan.warn_before[1]")
        for p in problems
    )
    assert len(problems) == 2


def test_missing_required_key() -> None:
    """A missing required key is named with the line of the section it belongs in."""
    text = VALID.replace('  from: "Acme Support <support@acme.example>"\n', "")
    assert _problems(text) == ["config.yaml:2: team.from: required key is missing"]


def test_plaintext_refused_except_to_loopback() -> None:
    """security: none to a remote host is refused; to 127.0.0.1 it is accepted."""
    remote = VALID.replace("    username: support", "    security: none\n    username: support")
    assert any("mailboxes[0].security" in p for p in _problems(remote))
    local = remote.replace("imap.acme.example", "127.0.0.1")
    assert parse_config(local, "config.yaml").mailboxes[0].security == "none"


def test_account_policy_must_exist() -> None:
    """An account naming an unknown policy is an error on that account's line."""
    text = VALID + "    policy: gold\n"
    assert _problems(text) == [
        "config.yaml:22: accounts[0].policy: no policy named 'gold' (defined: standard)"
    ]


def test_only_one_password_source() -> None:
    """Giving both password and password_env is refused."""
    text = VALID.replace("password_env: X", "").replace(
        "    password_env: SLA_TEST_IMAP_PASSWORD\n",
        "    password_env: SLA_TEST_IMAP_PASSWORD\n    password: hunter2\n",
    )
    problems = _problems(text)
    assert any("give only one of password, password_env" in p for p in problems)
    assert all("hunter2" not in p for p in problems)


def test_yaml_syntax_error_names_the_line() -> None:
    """Broken YAML is reported with its line, not a traceback."""
    [problem] = _problems("team:\n  from: [unclosed\nsmtp: {}\n")
    assert problem.startswith("config.yaml:")
    assert "not valid YAML" in problem


def test_secrets_resolve_from_file_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """password_file is read (stripped) and password_env looked up when asked."""
    secret = tmp_path / "imap"
    secret.write_text("s3cret\n")
    config = parse_config(
        VALID.replace("password_env: SLA_TEST_IMAP_PASSWORD", f"password_file: {secret}"),
        "config.yaml",
    )
    assert config.mailboxes[0].resolve_password() == "s3cret"
    monkeypatch.setenv("SLA_TEST_IMAP_PASSWORD", "from-env")
    assert parse_config(VALID, "c.yaml").mailboxes[0].resolve_password() == "from-env"
    monkeypatch.delenv("SLA_TEST_IMAP_PASSWORD")
    with pytest.raises(ConfigError, match="SLA_TEST_IMAP_PASSWORD"):
        parse_config(VALID, "c.yaml").mailboxes[0].resolve_password()


def test_secret_files_under_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """${CREDENTIALS_DIRECTORY} in password_file is the directory systemd names, or an error."""
    (tmp_path / "imap-support").write_text("from-credential\n")
    config = parse_config(
        VALID.replace(
            "password_env: SLA_TEST_IMAP_PASSWORD",
            "password_file: ${CREDENTIALS_DIRECTORY}/imap-support",
        ),
        "config.yaml",
    )
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert config.mailboxes[0].resolve_password() == "from-credential"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY is not set"):
        config.mailboxes[0].resolve_password()


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A configuration file that does not exist is a ConfigError naming the path."""
    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "nope.yaml")


def test_check_config_exits_78_with_the_problem_on_stderr(tmp_path: Path) -> None:
    """The command line turns a bad file into exit status 78 and one line per problem."""
    path = tmp_path / "config.yaml"
    path.write_text(VALID.replace("within: 48h", "within: two days"))
    result = subprocess.run(
        [sys.executable, "-m", "sla_daemon", "--config", str(path), "check-config"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == EX_CONFIG
    assert f"{path}:16: policies.standard.action_plan.within: expected a duration" in result.stderr


def test_check_config_summarises_a_valid_file(tmp_path: Path) -> None:
    """check-config prints mailboxes, folders, accounts and policies and exits 0."""
    path = tmp_path / "config.yaml"
    path.write_text(VALID)
    result = subprocess.run(
        [sys.executable, "-m", "sla_daemon", "--config", str(path), "check-config"],
        capture_output=True,
        text=True,
        check=False,
        env={"SLA_TEST_IMAP_PASSWORD": "x", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    for expected in (
        "support: imap imap.acme.example:993 (tls)",
        "inbox INBOX",
        "sent found by SPECIAL-USE \\Sent",
        "Globex",
        "standard: acknowledge within 1h, action plan within 2d",
    ):
        assert expected in result.stdout


def test_shipped_example_configuration_is_valid() -> None:
    """deploy/config.example.yaml validates, so operators start from a working file."""
    example = Path(__file__).resolve().parents[2] / "deploy" / "config.example.yaml"
    config = load_config(example)
    assert config.accounts[0].escalate_to == ["lead@acme.example"]


def test_courtesy_patterns_have_defaults_and_are_checked() -> None:
    """markers.courtesy has default patterns; a broken one is named with its line."""
    config = parse_config(VALID, "config.yaml")
    assert config.markers.courtesy.max_words == 12
    assert any("thank" in p for p in config.markers.courtesy.patterns)
    broken = VALID + "markers:\n  courtesy:\n    patterns: ['(thanks']\n"
    [problem] = _problems(broken)
    assert problem.startswith("config.yaml:24: markers.courtesy.patterns[0]: not a regular")


def test_an_impossible_date_is_reported_with_its_line() -> None:
    """'2026-13-01' is a config error naming file, line and key, not a crash."""
    text = VALID + "calendars:\n  office:\n    holidays: {dates: [2026-13-01]}\n"
    [problem] = _problems(text)
    assert problem.startswith("config.yaml:24: calendars.office.holidays.dates[0]:")


def test_an_account_may_override_one_clock_target() -> None:
    """A premium account's action_plan.within: 24h applies to it alone; the rest is kept."""
    text = VALID + "    action_plan: {within: 24h}\n"
    text += "  - name: Initech\n    domains: [initech.example]\n    owner: bob@acme.example\n"
    rules = build_rules(parse_config(text, "config.yaml"))
    globex = rules.account_named("Globex")
    initech = rules.account_named("Initech")
    assert globex is not None and initech is not None
    premium, standard = rules.policy_for(globex), rules.policy_for(initech)
    assert premium.action_plan.within == timedelta(hours=24)
    assert premium.action_plan.warn_before == standard.action_plan.warn_before
    assert premium.acknowledge == standard.acknowledge
    assert standard.action_plan.within == timedelta(hours=48)


def test_second_escalation_level_is_read() -> None:
    """escalate_after_breach: {after, to} becomes the policy's second level."""
    text = VALID.replace(
        "      warn_before: [24h, 4h]\n",
        "      warn_before: [24h, 4h]\n"
        "    escalate_after_breach: {after: 24h, to: [director@acme.example]}\n",
    )
    policy = build_rules(parse_config(text, "config.yaml")).policies["standard"]
    assert policy.second_level is not None
    assert policy.second_level.after == timedelta(hours=24)
    assert policy.second_level.to == ("director@acme.example",)
    broken = text.replace("after: 24h", "after: soon")
    [problem] = _problems(broken)
    assert "policies.standard.escalate_after_breach.after: expected a duration" in problem
