"""The morning briefing as mail: ``briefing.txt.j2`` and ``briefing.html.j2``.

Uses the template environment, headers and time formatting of ``adapters.render``, so a
briefing looks like every other team notice (``templates_dir`` overrides apply too).
Times are shown in the owner's time zone, not the configured one.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sla_daemon.adapters.render import (
    NoticeRenderer,
    format_local_time,
    readable_duration,
    sanitize_header_text,
)
from sla_daemon.core.briefing import Briefing, BriefingItem
from sla_daemon.core.model import ClockName, NoticeKind

_CLOCK_LABELS = {ClockName.ACKNOWLEDGE: "acknowledgement", ClockName.ACTION_PLAN: "action plan"}


def briefing_subject(briefing: Briefing) -> str:
    """The Subject line, e.g. ``Your day: 2 late, 3 at risk, 5 due today``."""
    return (
        f"Your day: {len(briefing.late)} late, {len(briefing.at_risk)} at risk, "
        f"{len(briefing.due_today)} due today"
    )


def briefing_context(briefing: Briefing, now: datetime, team_name: str) -> dict[str, Any]:
    """The variables of the briefing templates (one plain dict).

    - ``owner``; ``day``: the owner's local date (``Tue 24 Nov 2026``); ``timezone``.
    - ``late``, ``at_risk``, ``due_today``: lists of items sorted by due time; each has
      ``conversation_id``, ``account_name``, ``client``, ``subject``, ``clock``,
      ``clock_label``, ``due_at`` (in the owner's zone), ``due_in`` (time left, or
      ``None`` when late) and ``late_by`` (how late, or ``None``).
    - ``counts``: ``{"late": n, "at_risk": n, "due_today": n}``; ``subject``.
    - ``team_name``; ``now``: when it was rendered, in the owner's zone.
    """

    def item(entry: BriefingItem) -> dict[str, Any]:
        late = entry.due_at <= now
        return {
            "conversation_id": entry.conversation_id,
            "account_name": entry.account,
            "client": entry.client or "(unknown client)",
            "subject": sanitize_header_text(entry.subject, limit=1000) or "(no subject)",
            "clock": str(entry.clock),
            "clock_label": _CLOCK_LABELS[entry.clock],
            "due_at": format_local_time(entry.due_at, briefing.zone),
            "due_in": None if late else readable_duration(entry.due_at - now),
            "late_by": readable_duration(now - entry.due_at) if late else None,
        }

    return {
        "kind": str(NoticeKind.BRIEFING),
        "owner": briefing.owner,
        "day": f"{briefing.day:%a %d %b %Y}",
        "timezone": str(briefing.zone),
        "late": [item(entry) for entry in briefing.late],
        "at_risk": [item(entry) for entry in briefing.at_risk],
        "due_today": [item(entry) for entry in briefing.due_today],
        "counts": {
            "late": len(briefing.late),
            "at_risk": len(briefing.at_risk),
            "due_today": len(briefing.due_today),
        },
        "subject": briefing_subject(briefing),
        "team_name": team_name,
        "now": format_local_time(now, briefing.zone),
    }


class BriefingRenderer(NoticeRenderer):
    """A ``NoticeRenderer`` that also renders morning briefings."""

    def render_briefing(self, key: str, briefing: Briefing, now: datetime) -> EmailMessage:
        """The multipart/alternative briefing (text, then HTML) to ``briefing.owner``.

        Its Message-ID derives from ``key``, so a briefing sent again after a crash is
        shown once. Raises ``jinja2.TemplateError`` when a template is broken.
        """
        context = briefing_context(briefing, now, self._team.name)
        text = self._env.get_template("briefing.txt.j2").render(context)
        html = self._env.get_template("briefing.html.j2").render(context)
        message = self._compose(
            NoticeKind.BRIEFING, key, (briefing.owner,), context["subject"], now
        )
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        return message
