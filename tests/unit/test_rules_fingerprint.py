"""The rules fingerprint: what makes stored conversation summaries hold under a config."""

from __future__ import annotations

from datetime import date

from sla_daemon.config import parse_config
from sla_daemon.rules_from_config import rules_fingerprint
from tests.unit.test_config import VALID

TODAY = date(2026, 11, 24)
CONFIG = VALID
"""A valid configuration: one mailbox, SMTP, a standard policy, the account Globex."""


def _fingerprint(text: str, today: date = TODAY) -> str:
    return rules_fingerprint(parse_config(text, "config.yaml"), today)


def test_equal_configurations_have_equal_fingerprints() -> None:
    """The fingerprint depends on the configuration's values, not on the object read."""
    assert _fingerprint(CONFIG) == _fingerprint(CONFIG)


def test_a_changed_rule_changes_the_fingerprint() -> None:
    """A policy's ``within``, a new account and another year each give another fingerprint."""
    base = _fingerprint(CONFIG)
    assert _fingerprint(CONFIG.replace("within: 48h", "within: 24h")) != base
    added = (
        CONFIG + "  - name: Initech\n    domains: [initech.example]\n    owner: a@acme.example\n"
    )
    assert _fingerprint(added) != base
    assert _fingerprint(CONFIG, date(2027, 1, 1)) != base


def test_settings_outside_the_rules_leave_the_fingerprint() -> None:
    """SMTP and a mailbox's password source are not rules: the summaries still hold."""
    base = _fingerprint(CONFIG)
    assert _fingerprint(CONFIG.replace("smtp.acme.example", "mail.acme.example")) == base
    moved = CONFIG.replace("password_env: SLA_TEST_IMAP_PASSWORD", "password: s3cret")
    assert _fingerprint(moved) == base
