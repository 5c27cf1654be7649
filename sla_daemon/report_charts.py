"""The report's two charts as plain shapes, drawn once and written out twice.

The figures come from ``core.report`` (``weekly_compliance``) and ``histogram_bins``;
this module lays them out as lines, dots, bars and labels on a ``WIDTH`` x ``HEIGHT``
canvas. ``report_html`` writes the shapes as inline SVG (``report --format html``) and
``report_png`` as PNG images (the weekly report mail, as mail clients show no SVG), so
both show the same numbers in the same places.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Literal

from sla_daemon.core.report import CycleFigures, Report, weekly_compliance
from sla_daemon.report_view import local_time

WIDTH = 640
HEIGHT = 240
MARGIN = 40
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")
AXIS_COLOUR = "#888888"
TEXT_COLOUR = "#222222"
BAR_COLOUR = "#1f77b4"

Point = tuple[float, float]
Anchor = Literal["start", "middle", "end"]


@dataclass(frozen=True)
class Line:
    """A polyline through ``points``."""

    points: tuple[Point, ...]
    colour: str


@dataclass(frozen=True)
class Dot:
    """A filled circle of ``radius`` around ``(x, y)``."""

    x: float
    y: float
    radius: float
    colour: str


@dataclass(frozen=True)
class Bar:
    """A filled rectangle from its top-left corner; ``tooltip`` names what it counts."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    tooltip: str


@dataclass(frozen=True)
class Label:
    """Text whose baseline starts, is centred or ends at ``(x, y)``."""

    x: float
    y: float
    text: str
    size: int
    anchor: Anchor = "start"
    colour: str = TEXT_COLOUR


Shape = Line | Dot | Bar | Label


@dataclass(frozen=True)
class Chart:
    """One chart: its id, what it shows (also the images' alt text) and its shapes."""

    name: str
    title: str
    shapes: tuple[Shape, ...]
    width: int = WIDTH
    height: int = HEIGHT


def _axes(title: str) -> list[Shape]:
    bottom = HEIGHT - MARGIN
    return [
        Label(MARGIN, 16, title, 12),
        Line(((MARGIN, MARGIN), (MARGIN, bottom)), AXIS_COLOUR),
        Line(((MARGIN, bottom), (WIDTH - MARGIN, bottom)), AXIS_COLOUR),
    ]


def compliance_shapes(report: Report, zone: tzinfo) -> Chart:
    """A line per account: share of cycles with both clocks within target, per week."""
    title = "share of cycles within target, per week"
    series = weekly_compliance(report.cycles, report.since, report.until)
    weeks = max((len(points) for points in series.values()), default=0)
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    step = inner_w / max(weeks - 1, 1)
    shapes = _axes(title)
    for fraction in (0.0, 0.5, 1.0):
        shapes.append(Label(4, MARGIN + inner_h * (1 - fraction), f"{fraction:.0%}", 10))
    for index, (account, points) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        coords = tuple(
            (MARGIN + i * step, MARGIN + inner_h * (1 - share))
            for i, (_, share) in enumerate(points)
            if share is not None
        )
        if len(coords) > 1:
            shapes.append(Line(coords, colour))
        shapes += [Dot(x, y, 3, colour) for x, y in coords]
        shapes.append(Label(WIDTH - MARGIN, MARGIN + 12 * index, account, 10, "end", colour))
    if series:
        first = next(iter(series.values()))
        for i, (week, _) in enumerate(first):
            label = local_time(week, zone)[:10]
            shapes.append(Label(MARGIN + i * step, HEIGHT - MARGIN + 14, label, 9, "middle"))
    return Chart("compliance", title, tuple(shapes))


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


def histogram_shapes(report: Report) -> Chart:
    """A histogram of the time to action plan of the cycles that have one."""
    title = "cycles by time to action plan (working hours)"
    bins = histogram_bins(report.cycles)
    shapes = _axes(title)
    if not bins:
        shapes.append(Label(WIDTH / 2, HEIGHT / 2, "no action plans", 12))
        return Chart("time-to-action-plan", title, tuple(shapes))
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    tallest = max(count for _, count in bins)
    bar_w = inner_w / len(bins)
    for i, (lower, count) in enumerate(bins):
        height = inner_h * count / tallest
        x = MARGIN + i * bar_w
        y = MARGIN + inner_h - height
        shapes.append(Bar(x, y, bar_w - 2, height, BAR_COLOUR, f"{count} from {lower:g}h"))
        shapes.append(Label(x + bar_w / 2, HEIGHT - MARGIN + 14, f"{lower:g}h", 9, "middle"))
        if count:
            shapes.append(Label(x + bar_w / 2, y - 3, str(count), 9, "middle"))
    return Chart("time-to-action-plan", title, tuple(shapes))


def report_charts(report: Report, zone: tzinfo) -> tuple[Chart, Chart]:
    """Both charts of ``report``: compliance over time, then time to action plan."""
    return compliance_shapes(report, zone), histogram_shapes(report)
