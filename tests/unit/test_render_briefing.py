"""The briefing mail: subject, headers, sections and times in the owner's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sla_daemon.adapters.render_briefing import BriefingRenderer
from sla_daemon.core.briefing import Briefing, BriefingItem, BriefingSection
from sla_daemon.core.model import ClockName
from tests.unit.builders import TEAM

NOW = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)  # 08:00 in Berlin, 02:00 in New York
KEY = "briefing|alice@acme.example|2026-11-24"


def _item(section: BriefingSection, name: str, due_at: datetime) -> BriefingItem:
    return BriefingItem(
        section=section,
        conversation_id=f"c-{name}",
        account="Globex",
        client="dana@globex.example",
        subject=f"Subject {name}",
        clock=ClockName.ACTION_PLAN,
        due_at=due_at,
    )


def _briefing(**sections: tuple[BriefingItem, ...]) -> Briefing:
    return Briefing(
        owner="alice@acme.example",
        day=date(2026, 11, 24),
        zone=ZoneInfo("Europe/Berlin"),
        **sections,
    )


def _parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_subject_counts_each_section_and_headers_are_those_of_team_notices() -> None:
    """'Your day: 1 late, 2 at risk, 0 due today', auto-generated, to the owner only."""
    briefing = _briefing(
        late=(_item(BriefingSection.LATE, "a", NOW - timedelta(hours=2)),),
        at_risk=(
            _item(BriefingSection.AT_RISK, "b", NOW + timedelta(hours=1)),
            _item(BriefingSection.AT_RISK, "c", NOW + timedelta(hours=3)),
        ),
    )
    message = BriefingRenderer(None, TEAM, "UTC").render_briefing(KEY, briefing, NOW)
    assert message["Subject"] == "Your day: 1 late, 2 at risk, 0 due today"
    assert message["To"] == "alice@acme.example"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-SLA-Daemon"] == "briefing"
    assert message["X-SLA-Notice-Key"] == KEY
    assert message["In-Reply-To"] is None


def test_message_id_depends_only_on_the_key() -> None:
    """Rendering the same day's briefing again (after a crash) gives the same Message-ID."""
    renderer = BriefingRenderer(None, TEAM, "UTC")
    first = renderer.render_briefing(KEY, _briefing(), NOW)
    again = renderer.render_briefing(KEY, _briefing(), NOW + timedelta(minutes=5))
    other_day = renderer.render_briefing(KEY.replace("24", "25"), _briefing(), NOW)
    assert first["Message-ID"] == again["Message-ID"] != other_day["Message-ID"]
    assert str(first["Message-ID"]).endswith("@acme.example>")


def test_times_are_in_the_owners_zone_and_items_keep_their_order() -> None:
    """A Berlin owner reads 'CET' times although the configured zone is New York."""
    briefing = _briefing(
        late=(_item(BriefingSection.LATE, "late", NOW - timedelta(hours=2)),),
        due_today=(_item(BriefingSection.DUE_TODAY, "evening", NOW + timedelta(hours=12)),),
    )
    renderer = BriefingRenderer(None, TEAM, "America/New_York")
    text, html = _parts(renderer.render_briefing(KEY, briefing, NOW))
    assert "Tue 24 Nov 2026 06:00 CET (UTC+01:00) (2h late)" in text
    assert "Tue 24 Nov 2026 20:00 CET (UTC+01:00) (in 12h)" in text
    assert "Nothing is at risk." in text
    assert text.index("Subject late") < text.index("Subject evening")
    assert "Times are in Europe/Berlin" in text and "EST" not in text
    assert "Subject evening" in html and "Nothing is at risk." in html


def test_html_escapes_what_a_client_wrote() -> None:
    """A subject with markup is shown as text in the HTML part."""
    item = BriefingItem(
        section=BriefingSection.LATE,
        conversation_id="c-x",
        account="Globex",
        client="dana@globex.example",
        subject="<script>alert(1)</script>",
        clock=ClockName.ACKNOWLEDGE,
        due_at=NOW - timedelta(minutes=30),
    )
    _, html = _parts(
        BriefingRenderer(None, TEAM, "UTC").render_briefing(KEY, _briefing(late=(item,)), NOW)
    )
    assert "<script>" not in html and "&lt;script&gt;" in html
