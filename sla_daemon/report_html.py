"""``report --format html``: one self-contained page with the tables and two SVG charts.

No external assets and no script: the charts (compliance per week and account, and the
distribution of time to action plan) are drawn here as inline SVG. Every text that may
come from mail or configuration is escaped.
"""

from __future__ import annotations

import math
from datetime import timedelta, tzinfo
from html import escape

from sla_daemon.core.report import CycleFigures, Report, ReportRow, weekly_compliance
from sla_daemon.report_view import TEXT_COLUMNS, local_time, text_cells

WIDTH = 640
HEIGHT = 240
MARGIN = 40
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")

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


def compliance_chart(report: Report, zone: tzinfo, *, name: str = "compliance") -> str:
    """An SVG line per account: share of cycles with both clocks within target, per week.

    ``name`` is the SVG's id (a page with several charts gives each its own).
    """
    series = weekly_compliance(report.cycles, report.since, report.until)
    weeks = max((len(points) for points in series.values()), default=0)
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = inner_w / max(weeks - 1, 1)
    parts = [_axes("share of cycles within target, per week")]
    for fraction in (0.0, 0.5, 1.0):
        y = MARGIN + inner_h * (1 - fraction)
        parts.append(f'<text x="4" y="{y:.1f}" font-size="10">{fraction:.0%}</text>')
    for index, (account, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        coords = [
            (MARGIN + i * step, MARGIN + inner_h * (1 - share))
            for i, (_, share) in enumerate(points)
            if share is not None
        ]
        if len(coords) > 1:
            line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
            parts.append(f'<polyline fill="none" stroke="{colour}" points="{line}"/>')
        for x, y in coords:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>')
        parts.append(
            f'<text x="{WIDTH - MARGIN}" y="{MARGIN + 12 * index}" font-size="10" '
            f'fill="{colour}" text-anchor="end">{escape(account)}</text>'
        )
    if series:
        first = next(iter(series.values()))
        for i, (week, _) in enumerate(first):
            x = MARGIN + i * step
            label = escape(local_time(week, zone)[:10])
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="9" '
                f'text-anchor="middle">{label}</text>'
            )
    return _svg(name, parts)


def histogram_bins(cycles: tuple[CycleFigures, ...], bins: int = 10) -> list[tuple[float, int]]:
    """Time to action plan in hours, as ``bins`` equal bins: (lower edge, count) each."""
    hours = [
        c.time_to_action_plan / timedelta(hours=1)
        for c in cycles
        if c.time_to_action_plan is not None
    ]
    if not hours:
        return []
    width = max(math.ceil(max(hours) / bins), 1)
    counts = [0] * bins
    for value in hours:
        counts[min(int(value // width), bins - 1)] += 1
    return [(float(i * width), count) for i, count in enumerate(counts)]


def action_plan_histogram(report: Report) -> str:
    """An SVG histogram of the time to action plan of the cycles that have one."""
    bins = histogram_bins(report.cycles)
    parts = [_axes("cycles by time to action plan (working hours)")]
    if not bins:
        parts.append(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}">no action plans</text>')
        return _svg("time-to-action-plan", parts)
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    tallest = max(count for _, count in bins)
    bar_w = inner_w / len(bins)
    for i, (lower, count) in enumerate(bins):
        height = inner_h * count / tallest
        x = MARGIN + i * bar_w
        y = MARGIN + inner_h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{height:.1f}" '
            f'fill="#1f77b4"><title>{count} from {lower:g}h</title></rect>'
        )
        parts.append(
            f'<text x="{x + bar_w / 2:.1f}" y="{HEIGHT - MARGIN + 14}" font-size="9" '
            f'text-anchor="middle">{lower:g}h</text>'
        )
        if count:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" font-size="9" '
                f'text-anchor="middle">{count}</text>'
            )
    return _svg("time-to-action-plan", parts)


def _axes(title: str) -> str:
    bottom = HEIGHT - MARGIN
    return (
        f'<text x="{MARGIN}" y="16" font-size="12">{escape(title)}</text>'
        f'<line x1="{MARGIN}" y1="{MARGIN}" x2="{MARGIN}" y2="{bottom}" stroke="#888"/>'
        f'<line x1="{MARGIN}" y1="{bottom}" x2="{WIDTH - MARGIN}" y2="{bottom}" stroke="#888"/>'
    )


def _svg(name: str, parts: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" id="{name}" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">' + "".join(parts) + "</svg>"
    )


def report_html(report: Report, zone: tzinfo) -> str:
    """The report as a self-contained HTML page: tables, then the two charts."""
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
        + compliance_chart(report, zone)
        + "<h2>Time to action plan</h2>"
        + action_plan_histogram(report)
        + "</body></html>\n"
    )
