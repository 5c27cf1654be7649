"""``report --format html``: one self-contained page with the tables and two SVG charts.

No external assets and no script: the charts (compliance per week and account, and the
distribution of time to action plan, laid out by ``report_charts``) are written here as
inline SVG. Every text that may
come from mail or configuration is escaped.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import tzinfo
from html import escape

from sla_daemon.core.report import Report, ReportRow
from sla_daemon.report_charts import (
    Bar,
    Chart,
    Dot,
    Line,
    Shape,
    compliance_shapes,
    histogram_bins,
    report_charts,
)
from sla_daemon.report_view import TEXT_COLUMNS, local_time, text_cells

__all__ = ["chart_svg", "compliance_chart", "histogram_bins", "report_html"]

_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
svg { border: 1px solid #ddd; background: #fff; }
"""


def _table(title: str, rows: tuple[ReportRow, ...]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in TEXT_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in text_cells(row)) + "</tr>"
        for row in rows
    )
    return f"<h2>{escape(title)}</h2><table><tr>{head}</tr>{body}</table>"


def _breached(report: Report, zone: tzinfo) -> str:
    rows = "".join(
        f"<tr><td>{escape(local_time(c.opened_at, zone))}</td><td>{escape(c.account)}</td>"
        f"<td>{escape(c.subject)}</td><td>{'late' if not c.acknowledge_within else ''}</td>"
        f"<td>{'late' if not c.action_plan_within else ''}</td></tr>"
        for c in report.cycles
        if c.breaches
    )
    if not rows:
        return "<p>No breaches.</p>"
    head = "<tr><th>opened</th><th>account</th><th>subject</th><th>acknowledge</th>"
    return f"<table>{head}<th>action plan</th></tr>{rows}</table>"


def _svg_shape(shape: Shape) -> str:
    if isinstance(shape, Line):
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in shape.points)
        return f'<polyline fill="none" stroke="{shape.colour}" points="{points}"/>'
    if isinstance(shape, Dot):
        return (
            f'<circle cx="{shape.x:.1f}" cy="{shape.y:.1f}" r="{shape.radius:g}" '
            f'fill="{shape.colour}"/>'
        )
    if isinstance(shape, Bar):
        return (
            f'<rect x="{shape.x:.1f}" y="{shape.y:.1f}" width="{shape.width:.1f}" '
            f'height="{shape.height:.1f}" fill="{shape.colour}">'
            f"<title>{escape(shape.tooltip)}</title></rect>"
        )
    return (
        f'<text x="{shape.x:.1f}" y="{shape.y:.1f}" font-size="{shape.size}" '
        f'fill="{shape.colour}" text-anchor="{shape.anchor}">{escape(shape.text)}</text>'
    )


def chart_svg(chart: Chart) -> str:
    """``chart`` as an inline SVG element."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{chart.name}" width="{chart.width}" '
        f'height="{chart.height}" viewBox="0 0 {chart.width} {chart.height}" role="img" '
        f'aria-label="{escape(chart.title)}">'
        + "".join(_svg_shape(shape) for shape in chart.shapes)
        + "</svg>"
    )


def compliance_chart(report: Report, zone: tzinfo, *, name: str = "compliance") -> str:
    """The compliance chart alone, as SVG with the id ``name`` (one page, several charts)."""
    return chart_svg(replace(compliance_shapes(report, zone), name=name))


def report_html(report: Report, zone: tzinfo, appendix: str = "") -> str:
    """The report as a self-contained HTML page: tables, the two charts, then ``appendix``.

    ``appendix`` is HTML the caller has escaped (``audit`` lists its notices there).
    """
    compliance, histogram = report_charts(report, zone)
    period = f"{local_time(report.since, zone)} to {local_time(report.until, zone)}"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>SLA report {escape(period)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>SLA report {escape(period)}</h1>"
        f"<p>As of {escape(local_time(report.as_of, zone))}. Durations are working time on each "
        "account's calendar, waiting-on-client pauses excluded.</p>"
        + _table("Accounts", report.accounts)
        + _table("Owners", report.owners)
        + "<h2>Breached cycles</h2>"
        + _breached(report, zone)
        + "<h2>Compliance over time</h2>"
        + chart_svg(compliance)
        + "<h2>Time to action plan</h2>"
        + chart_svg(histogram)
        + appendix
        + "</body></html>\n"
    )
