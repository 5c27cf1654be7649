"""The status page as HTML: ``templates/status_page.html.j2`` over a ``StatusPage``.

Drawn in the notices' sandboxed Jinja2 environment with autoescape, so a client's
subject or name can never become markup; the only text let through unescaped is the
compliance SVG, which ``report_html`` escapes as it draws it. The page is one document
with its style and script inline (a nonce each time, named by the response's
Content-Security-Policy), so it loads nothing from anywhere and works offline.
"""

from __future__ import annotations

import secrets
from typing import Any

from markupsafe import Markup

from sla_daemon.adapters.render_env import build_environment
from sla_daemon.status_page import ConversationRow, StatusPage, Urgency

TEMPLATE = "status_page.html.j2"

URGENCY_LABELS = {
    Urgency.LATE: "Late",
    Urgency.AT_RISK: "At risk",
    Urgency.ON_TRACK: "On track",
    Urgency.PAUSED: "Paused",
}


def _millis(row: ConversationRow) -> dict[str, int | None]:
    def ms(value: Any) -> int | None:
        return None if value is None else int(value.timestamp() * 1000)

    return {"due_ms": ms(row.due_at), "warn_ms": ms(row.warn_at)}


class StatusPageRenderer:
    """Draws status pages; one per listener, used from any of its threads."""

    def __init__(self) -> None:
        # Shipped template only: the page is part of the program, not a notice to restyle.
        self._template = build_environment(None).get_template(TEMPLATE)

    def render(self, page: StatusPage | None) -> tuple[str, str]:
        """The page's HTML and the script/style nonce it was drawn with.

        ``None`` (no cycle has run yet) draws a page that says so.
        """
        nonce = secrets.token_urlsafe(16)
        context: dict[str, Any] = {"page": page, "nonce": nonce, "labels": URGENCY_LABELS}
        if page is not None:
            context["rows"] = [{"row": row, **_millis(row)} for row in page.rows]
            context["charts"] = [(chart, Markup(chart.svg)) for chart in page.charts]
            context["now_ms"] = int(page.now.timestamp() * 1000)
            context["counts"] = {u.value: n for u, n in page.counts.items()}
        return self._template.render(context), nonce
