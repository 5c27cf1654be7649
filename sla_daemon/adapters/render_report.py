"""The weekly report as mail: ``weekly_report.txt.j2`` and ``weekly_report.html.j2``.

Mail clients (Gmail, Outlook) show neither SVG nor ``data:`` images, so the charts travel
as PNG parts of a ``multipart/related`` around the HTML, which names them by
``cid:``::

    multipart/alternative
        text/plain                  the report's tables as text
        multipart/related
            text/html               tables, and <img src="cid:..."> per chart
            image/png               compliance over time
            image/png               time to action plan

Content-IDs and the Message-ID derive from the outbox key, so a report sent again after a
crash is the same mail.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, tzinfo
from email.message import EmailMessage
from typing import Any

from sla_daemon.adapters.render import NoticeRenderer, sanitize_header_text
from sla_daemon.core.model import NoticeKind
from sla_daemon.core.report import Report
from sla_daemon.report_charts import Chart, compliance_shapes, histogram_shapes
from sla_daemon.report_png import chart_png
from sla_daemon.report_view import TEXT_COLUMNS, local_time, report_text, text_cells


def weekly_report_subject(report: Report, zone: tzinfo) -> str:
    """The Subject line, e.g. ``SLA report 2026-11-16 to 2026-11-23: 12 cycles, 1 breach``."""
    cycles = sum(row.cycles for row in report.accounts)
    breaches = sum(row.breaches for row in report.accounts)
    plural = "" if breaches == 1 else "es"
    return (
        f"SLA report {local_time(report.since, zone)[:10]} to "
        f"{local_time(report.until, zone)[:10]}: {cycles} cycles, {breaches} breach{plural}"
    )


def content_id(key: str, chart: str, domain: str) -> str:
    """The Content-ID of ``chart`` in the report with outbox key ``key`` (with ``<>``)."""
    digest = hashlib.sha256(f"{key}|{chart}".encode()).hexdigest()[:24]
    return f"<{chart}.{digest}@{domain}>"


def weekly_report_context(
    report: Report, zone: tzinfo, team_name: str, images: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The variables of the weekly report templates (one plain dict).

    - ``period_start``, ``period_end``, ``as_of``: local times; ``timezone``.
    - ``columns``: the table header; ``accounts``, ``owners``: rows of cells (text).
    - ``tables_text``: the text report's aligned tables (``report_view.report_text``).
    - ``breached``: cycles with a late clock, each ``opened``, ``account``, ``subject``,
      ``acknowledge_late``, ``action_plan_late``.
    - ``charts``: each ``cid`` (without ``<>``), ``alt``, ``width``, ``height``.
    - ``subject``, ``team_name``.
    """
    return {
        "kind": str(NoticeKind.WEEKLY_REPORT),
        "period_start": local_time(report.since, zone),
        "period_end": local_time(report.until, zone),
        "as_of": local_time(report.as_of, zone),
        "timezone": str(zone),
        "columns": list(TEXT_COLUMNS),
        "accounts": [text_cells(row) for row in report.accounts],
        "owners": [text_cells(row) for row in report.owners],
        "tables_text": report_text(report, zone),
        "breached": [
            {
                "opened": local_time(cycle.opened_at, zone),
                "account": cycle.account,
                "subject": sanitize_header_text(cycle.subject, limit=1000) or "(no subject)",
                "acknowledge_late": not cycle.acknowledge_within,
                "action_plan_late": not cycle.action_plan_within,
            }
            for cycle in report.cycles
            if cycle.breaches
        ],
        "charts": list(images),
        "subject": weekly_report_subject(report, zone),
        "team_name": team_name,
    }


def weekly_report_charts(
    report: Report, zone: tzinfo, trend: Report | None = None
) -> tuple[Chart, Chart]:
    """The mail's two charts, compliance first, then the time to action plan.

    Compliance is drawn per week over ``trend`` (``report`` when None); the time to
    action plan counts ``report``'s cycles only.
    """
    return compliance_shapes(trend or report, zone), histogram_shapes(report)


class WeeklyReportRenderer(NoticeRenderer):
    """A ``NoticeRenderer`` that also renders the weekly report with its charts."""

    def render_weekly_report(
        self,
        key: str,
        report: Report,
        zone: tzinfo,
        recipients: Sequence[str],
        now: datetime,
        trend: Report | None = None,
    ) -> EmailMessage:
        """The weekly report mail to ``recipients`` (structure: the module docstring).

        The compliance chart is drawn from ``trend`` (the same figures over more weeks)
        when given, from ``report`` otherwise. Raises ``jinja2.TemplateError`` when a
        template is broken.
        """
        domain = self._team.from_address.domain
        charts = weekly_report_charts(report, zone, trend)
        images = [
            {
                "cid": content_id(key, chart.name, domain)[1:-1],
                "alt": f"Chart: {chart.title}",
                "width": chart.width,
                "height": chart.height,
                "name": chart.name,
            }
            for chart in charts
        ]
        context = weekly_report_context(report, zone, self._team.name, images)
        text = self._env.get_template("weekly_report.txt.j2").render(context)
        html = self._env.get_template("weekly_report.html.j2").render(context)
        message = self._compose(NoticeKind.WEEKLY_REPORT, key, recipients, context["subject"], now)
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        html_part = list(message.iter_parts())[1]  # text/plain, then text/html
        assert isinstance(html_part, EmailMessage)
        for chart, image in zip(charts, images, strict=True):
            html_part.add_related(
                chart_png(chart),
                maintype="image",
                subtype="png",
                cid=f"<{image['cid']}>",
                disposition="inline",
                filename=f"{chart.name}.png",
            )
        return message
