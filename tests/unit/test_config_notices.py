"""The ``notices`` section: defaults, times of day, quiet hours and delivery checks."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from sla_daemon.config import parse_config
from sla_daemon.errors import ConfigError
from tests.unit.test_config import VALID


def test_notices_defaults() -> None:
    """Without a ``notices`` section: 3 auto-acks per sender a day, 5m batching, no briefing."""
    notices = parse_config(VALID, "config.yaml").notices
    assert notices.auto_ack_per_sender_per_day == 3
    assert notices.digest_window == timedelta(minutes=5)
    assert notices.quiet_hours == {} and notices.briefing_at is None
    assert notices.delivery.retry_first == timedelta(seconds=30)
    assert notices.delivery.give_up_after == timedelta(days=2)


def test_unquoted_time_of_day_is_read_as_written() -> None:
    """YAML reads ``08:00`` unquoted as a number; the briefing time is still 08:00."""
    text = VALID + "notices:\n  briefing_at: 08:00\n  quiet_hours:\n"
    text += '    alice@acme.example: {start: "20:00", end: "07:30", timezone: Europe/Berlin}\n'
    notices = parse_config(text, "config.yaml").notices
    assert notices.briefing_at == time(8, 0)
    quiet = notices.quiet_hours["alice@acme.example"]
    assert (quiet.start, quiet.end, quiet.timezone) == (time(20), time(7, 30), "Europe/Berlin")


def test_bad_notice_settings_name_line_and_key() -> None:
    """A bad time of day and a retry ceiling below the first wait are each reported."""
    text = VALID + 'notices:\n  briefing_at: "25:00"\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml")
    line = VALID.count("\n") + 2
    assert caught.value.problems == [
        f"config.yaml:{line}: notices.briefing_at: expected a time of day like 08:00, got '25:00'"
    ]
    text = VALID + "notices:\n  delivery: {retry_first: 10m, retry_max: 1m}\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "config.yaml")
    assert caught.value.problems == [
        f"config.yaml:{line}: notices.delivery.retry_max: must not be shorter than retry_first"
    ]
