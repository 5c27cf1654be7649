"""The report's text, JSON, CSV and HTML forms, from the figures of ``test_report``."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sla_daemon.core.report import Report, build_report
from sla_daemon.errors import ConfigError
from sla_daemon.report_cli import parse_moment
from sla_daemon.report_html import histogram_bins, report_html
from sla_daemon.report_view import CSV_COLUMNS, report_csv, report_json, report_text
from tests.unit.builders import NOW
from tests.unit.test_report import _rules, statuses

HOSTILE = '<script>alert("x")</script> & <img src=x onerror=y>'


def _report() -> Report:
    hostile = [replace(s, subject=HOSTILE) if s.id == "c" else s for s in statuses()]
    return build_report(hostile, _rules(), (), NOW - timedelta(days=30), NOW, NOW)


def test_csv_parses_back_with_a_header_and_one_row_per_account_and_owner() -> None:
    """The header is CSV_COLUMNS; Globex, Initech, then alice; durations in seconds."""
    rows = list(csv.DictReader(io.StringIO(report_csv(_report()))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["group"], r["name"]) for r in rows] == [
        ("account", "Globex"),
        ("account", "Initech"),
        ("owner", "alice@acme.example"),
    ]
    globex = rows[0]
    assert globex["cycles"] == "4"
    assert globex["ack_median_s"] == "120"
    assert globex["ack_auto_median_s"] == "90"
    assert globex["ack_human_median_s"] == "1800"
    assert globex["plan_p90_s"] == str(10 * 3600)
    assert globex["ack_share_within"] == "0.75"
    assert (globex["plan_open"], globex["breaches"]) == ("2", "2")
    assert rows[1]["ack_median_s"] == rows[1]["ack_share_within"] == ""


def test_json_has_stable_keys_iso_times_and_seconds() -> None:
    """Top-level keys, one row's keys and one cycle's keys are the documented ones."""
    document = json.loads(report_json(_report()))
    assert list(document) == [
        "since",
        "until",
        "as_of",
        "durations",
        "accounts",
        "owners",
        "cycles",
    ]
    assert document["as_of"] == NOW.isoformat()
    globex = document["accounts"][0]
    assert list(globex) == [
        "name",
        "owner",
        "conversations",
        "cycles",
        "time_to_acknowledge",
        "time_to_action_plan",
        "acknowledge",
        "action_plan",
        "breaches",
        "follow_ups",
        "check_ins",
    ]
    assert globex["time_to_acknowledge"]["human"] == {
        "count": 1,
        "median_seconds": 1800,
        "p90_seconds": 1800,
    }
    assert globex["action_plan"] == {
        "cycles": 4,
        "within": 3,
        "breached": 1,
        "open": 2,
        "share_within": 0.75,
    }
    first = document["cycles"][0]
    assert (first["conversation_id"], first["cycle"], first["acknowledged_by"]) == ("a", 1, "human")
    assert first["opened_at"] == (NOW - timedelta(hours=100)).isoformat()
    assert first["time_to_action_plan_seconds"] == 10 * 3600


def test_text_is_an_aligned_table_per_group() -> None:
    """Header and rows line up: each column starts at the same offset on every line."""
    lines = report_text(_report(), UTC).splitlines()
    start = lines.index("Accounts")
    header, globex = lines[start + 1], lines[start + 2]
    assert globex.startswith("Globex")
    assert header.index("cycles") == globex.index("4  ")
    assert "75% (1 open)" in globex
    assert "Owners" in lines


def test_html_is_self_contained_with_an_svg_per_chart_and_escapes_mail() -> None:
    """Two inline SVGs, no script or external reference; the hostile subject is escaped."""
    page = report_html(_report(), UTC)
    assert page.count("<svg") == 2
    assert 'id="compliance"' in page and 'id="time-to-action-plan"' in page
    assert "<script" not in page
    assert "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;img" in page
    assert not re.search(r"(src|href)=\"?(https?:|//)", page)


def test_histogram_bins_cover_every_action_plan() -> None:
    """Plans after 5h and 10h fall into ten 1h bins: one at 5h, one in the last (9h)."""
    bins = histogram_bins(_report().cycles)
    assert len(bins) == 10
    assert sum(count for _, count in bins) == 2
    assert dict(bins)[5.0] == 1
    assert bins[-1] == (9.0, 1)


def test_period_dates_are_midnights_in_the_zone_and_bad_ones_are_refused() -> None:
    """A date is its local midnight, a bare time is local, an offset is kept; junk errs."""
    zone = ZoneInfo("Europe/Berlin")
    assert parse_moment("--since", "2026-11-01", zone) == datetime(2026, 11, 1, tzinfo=zone)
    assert parse_moment("--until", "2026-11-01T09:30", zone) == datetime(
        2026, 11, 1, 9, 30, tzinfo=zone
    )
    assert parse_moment("--until", "2026-11-01T09:30+00:00", zone) == datetime(
        2026, 11, 1, 9, 30, tzinfo=UTC
    )
    with pytest.raises(ConfigError, match="--since: expected a date"):
        parse_moment("--since", "last week", zone)
