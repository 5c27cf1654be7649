"""The weekly report: its schedule (pure) and the structure of its mail."""

from __future__ import annotations

import email
import email.policy
import io
import re
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from PIL import Image

from sla_daemon.adapters.render_report import weekly_report_charts
from sla_daemon.core.report import CycleFigures, Report
from sla_daemon.core.weekly_report import (
    WeeklySchedule,
    latest_week,
    next_report_at,
    skipped_week,
    weekly_report_due,
    weekly_report_key,
)
from sla_daemon.preview import preview_config, render_sample, sample_world
from sla_daemon.report_charts import HEIGHT, WIDTH, Bar, Dot, Label
from sla_daemon.report_png import SCALE

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY_8 = WeeklySchedule(0, time(8, 0), BERLIN)


def _never(key: str) -> bool:
    return False


def test_due_from_monday_8_local_for_the_seven_days_before() -> None:
    """At Monday 08:00 Berlin the report of the seven days before is due; at 07:59 the older one."""
    monday_8 = datetime(2026, 11, 23, 8, 0, tzinfo=BERLIN)
    week = weekly_report_due(monday_8, MONDAY_8, _never)
    assert week is not None
    assert week.until == monday_8
    assert week.since == datetime(2026, 11, 16, 8, 0, tzinfo=BERLIN)
    assert week.key == "weekly_report|2026-W48"
    before = weekly_report_due(monday_8 - timedelta(minutes=1), MONDAY_8, _never)
    assert before is not None and before.key == "weekly_report|2026-W47"


def test_not_due_again_once_decided() -> None:
    """Once the week's key is decided, nothing is due until the next Monday 08:00."""
    decided = {"weekly_report|2026-W48"}
    wednesday = datetime(2026, 11, 25, 12, 0, tzinfo=BERLIN)
    assert weekly_report_due(wednesday, MONDAY_8, decided.__contains__) is None
    assert next_report_at(wednesday, MONDAY_8) == datetime(2026, 11, 30, 8, 0, tzinfo=BERLIN)


def test_a_missed_week_is_skipped_and_only_the_latest_is_due() -> None:
    """Down from before W47's Monday until after W48's: only W48 is due; W47 is the skip."""
    last_decided = {"weekly_report|2026-W46"}
    back = datetime(2026, 11, 24, 10, 0, tzinfo=BERLIN)  # a Tuesday, one day late
    week = weekly_report_due(back, MONDAY_8, last_decided.__contains__)
    assert week is not None and week.key == "weekly_report|2026-W48"
    assert skipped_week(week, MONDAY_8).key == "weekly_report|2026-W47"


def test_dst_week_keeps_the_wall_clock_time_and_is_an_hour_longer() -> None:
    """Over the October change the report is still 08:00 local, after 169 hours."""
    after_change = datetime(2026, 10, 26, 8, 0, tzinfo=BERLIN)
    week = latest_week(after_change, MONDAY_8)
    assert week.until.astimezone(BERLIN).hour == 8
    assert week.since.astimezone(BERLIN).hour == 8
    assert week.until - week.since == timedelta(hours=169)
    assert week.until.astimezone(UTC).hour == 7  # CET; the week began in CEST (06:00 UTC)
    assert week.since.astimezone(UTC).hour == 6


def test_key_names_the_iso_week_even_across_the_new_year() -> None:
    """Monday 2026-12-28 belongs to ISO week 53 of 2026, Monday 2027-01-04 to 2027-W01."""
    assert weekly_report_key(date(2026, 12, 28)) == "weekly_report|2026-W53"
    assert weekly_report_key(date(2027, 1, 4)) == "weekly_report|2027-W01"


def _sample_mail() -> EmailMessage:
    config = preview_config(None)
    from sla_daemon.app import build_renderer
    from sla_daemon.rules_from_config import build_rules

    rules = build_rules(config)
    world = sample_world(rules, build_renderer(config, rules), datetime(2026, 11, 24, tzinfo=UTC))
    raw = render_sample("weekly_report", world).as_bytes()
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_mail_is_text_and_related_html_with_a_png_per_cid() -> None:
    """alternative(text/plain, related(text/html, image/png x2)); every cid: has its part."""
    message = _sample_mail()
    assert message.get_content_type() == "multipart/alternative"
    text, related = list(message.iter_parts())
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, *images = list(related.iter_parts())
    assert html.get_content_type() == "text/html"
    assert [image.get_content_type() for image in images] == ["image/png", "image/png"]
    body = html.get_content()
    cids = re.findall(r'src="cid:([^"]+)"', body)
    assert sorted(cids) == sorted(str(image["Content-ID"]).strip("<>") for image in images)
    assert "<svg" not in body and "data:" not in body
    for tag in re.findall(r"<img [^>]*>", body):
        assert f'width="{WIDTH}"' in tag and f'height="{HEIGHT}"' in tag
        assert re.search(r'alt="Chart: [^"]+"', tag)
    assert "Accounts" in text.get_content() and "Breached cycles" in text.get_content()


def test_chart_parts_are_png_images_of_the_chart_size() -> None:
    """Each image part starts with the PNG signature and decodes to the chart's pixel size."""
    images = [part for part in _sample_mail().walk() if part.get_content_type() == "image/png"]
    assert len(images) == 2
    for part in images:
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(data)) as picture:
            assert picture.format == "PNG"
            assert picture.size == (WIDTH * SCALE, HEIGHT * SCALE)
        assert part.get_content_disposition() == "inline"


def _cycle(opened_at: datetime, hours_to_plan: float) -> CycleFigures:
    return CycleFigures(
        conversation_id=f"c-{opened_at.isoformat()}",
        subject="Export fails",
        account="Globex",
        owner="alice@acme.example",
        number=1,
        opened_at=opened_at,
        acknowledged_by=None,
        time_to_acknowledge=timedelta(minutes=5),
        time_to_action_plan=timedelta(hours=hours_to_plan),
        acknowledge_within=True,
        action_plan_within=True,
        acknowledge_open=False,
        action_plan_open=False,
    )


def test_mail_charts_show_the_trend_weeks_and_the_reported_weeks_plans() -> None:
    """Compliance has a point per trend week; the histogram counts the reported week only."""
    until = datetime(2026, 11, 23, 8, tzinfo=UTC)
    week_since = until - timedelta(days=7)
    older = tuple(_cycle(until - timedelta(days=7 * n + 3), 40.0) for n in range(1, 8))
    this_week = (_cycle(week_since + timedelta(days=1), 2.0),)
    week = Report(week_since, until, until, (), (), this_week)
    trend = Report(until - timedelta(weeks=8), until, until, (), (), older + this_week)
    compliance, histogram = weekly_report_charts(week, UTC, trend)
    dates = [s for s in compliance.shapes if isinstance(s, Label) and s.text[:2] == "20"]
    assert len(dates) == 8
    assert len([s for s in compliance.shapes if isinstance(s, Dot)]) == 8
    assert sum(int(s.tooltip.split()[0]) for s in histogram.shapes if isinstance(s, Bar)) == 1
    alone, _ = weekly_report_charts(week, UTC)
    assert len([s for s in alone.shapes if isinstance(s, Dot)]) == 1
