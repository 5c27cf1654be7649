"""``report`` as text, JSON and CSV (the HTML page is in ``report_html``).

JSON and CSV give times in ISO 8601 and durations in seconds; their keys and columns are
stable. Every row is an account or an owner (``group``).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, tzinfo
from typing import Any

from sla_daemon.core.report import ClockFigures, CycleFigures, Durations, Report, ReportRow
from sla_daemon.units import format_duration

CSV_COLUMNS = (
    "group",
    "name",
    "owner",
    "conversations",
    "cycles",
    "ack_count",
    "ack_median_s",
    "ack_p90_s",
    "ack_auto_count",
    "ack_auto_median_s",
    "ack_auto_p90_s",
    "ack_human_count",
    "ack_human_median_s",
    "ack_human_p90_s",
    "plan_count",
    "plan_median_s",
    "plan_p90_s",
    "ack_within",
    "ack_breached",
    "ack_open",
    "ack_share_within",
    "plan_within",
    "plan_breached",
    "plan_open",
    "plan_share_within",
    "breaches",
    "follow_ups",
    "check_ins",
)
"""The CSV header, in order: one row per account, then one per owner."""


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else round(value.total_seconds())


def _durations_json(value: Durations) -> dict[str, Any]:
    return {
        "count": value.count,
        "median_seconds": _seconds(value.median),
        "p90_seconds": _seconds(value.p90),
    }


def _clock_json(value: ClockFigures) -> dict[str, Any]:
    return {
        "cycles": value.cycles,
        "within": value.within,
        "breached": value.breached,
        "open": value.open,
        "share_within": value.share_within,
    }


def row_json(row: ReportRow) -> dict[str, Any]:
    """One account's or owner's figures as a JSON object."""
    return {
        "name": row.name,
        "owner": row.owner,
        "conversations": row.conversations,
        "cycles": row.cycles,
        "time_to_acknowledge": {
            "all": _durations_json(row.acknowledge_all),
            "auto": _durations_json(row.acknowledge_auto),
            "human": _durations_json(row.acknowledge_human),
        },
        "time_to_action_plan": _durations_json(row.action_plan),
        "acknowledge": _clock_json(row.acknowledge),
        "action_plan": _clock_json(row.action_plan_clock),
        "breaches": row.breaches,
        "follow_ups": row.follow_ups,
        "check_ins": row.check_ins,
    }


def cycle_json(cycle: CycleFigures) -> dict[str, Any]:
    """One cycle opened in the period as a JSON object."""
    by = cycle.acknowledged_by
    return {
        "conversation_id": cycle.conversation_id,
        "cycle": cycle.number,
        "subject": cycle.subject,
        "account": cycle.account,
        "owner": cycle.owner,
        "opened_at": cycle.opened_at.isoformat(),
        "acknowledged_by": None if by is None else by.value,
        "time_to_acknowledge_seconds": _seconds(cycle.time_to_acknowledge),
        "time_to_action_plan_seconds": _seconds(cycle.time_to_action_plan),
        "acknowledge_within": cycle.acknowledge_within,
        "action_plan_within": cycle.action_plan_within,
        "acknowledge_open": cycle.acknowledge_open,
        "action_plan_open": cycle.action_plan_open,
    }


def report_json(report: Report) -> str:
    """The report as one JSON document."""
    return json.dumps(
        {
            "since": report.since.isoformat(),
            "until": report.until.isoformat(),
            "as_of": report.as_of.isoformat(),
            "durations": "working time on the account's calendar, pauses excluded",
            "accounts": [row_json(row) for row in report.accounts],
            "owners": [row_json(row) for row in report.owners],
            "cycles": [cycle_json(cycle) for cycle in report.cycles],
        },
        indent=2,
    )


def _csv_values(row: ReportRow) -> list[object]:
    values: list[object] = [row.group, row.name, row.owner, row.conversations, row.cycles]
    for durations in (
        row.acknowledge_all,
        row.acknowledge_auto,
        row.acknowledge_human,
        row.action_plan,
    ):
        values += [durations.count, _seconds(durations.median), _seconds(durations.p90)]
    for clock in (row.acknowledge, row.action_plan_clock):
        share = clock.share_within
        values += [clock.within, clock.breached, clock.open, "" if share is None else share]
    values += [row.breaches, row.follow_ups, row.check_ins]
    return ["" if v is None else v for v in values]


def report_csv(report: Report) -> str:
    """The report as CSV: a header row, then one row per account and one per owner."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in (*report.accounts, *report.owners):
        writer.writerow(_csv_values(row))
    return out.getvalue()


def _duration(value: timedelta | None) -> str:
    return (
        "-" if value is None else format_duration(timedelta(seconds=round(value.total_seconds())))
    )


def _share(clock: ClockFigures) -> str:
    share = clock.share_within
    if share is None:
        return "-"
    text = f"{share:.0%}"
    return f"{text} ({clock.open} open)" if clock.open else text


TEXT_COLUMNS = (
    "name",
    "conv",
    "cycles",
    "ack med/p90",
    "auto med",
    "human med",
    "plan med/p90",
    "ack within",
    "plan within",
    "breaches",
    "follow-ups",
    "check-ins",
)
"""The columns of the text and HTML tables."""


def text_cells(row: ReportRow) -> list[str]:
    """One row's cells under ``TEXT_COLUMNS`` (text and HTML tables)."""
    return [
        row.name,
        str(row.conversations),
        str(row.cycles),
        f"{_duration(row.acknowledge_all.median)}/{_duration(row.acknowledge_all.p90)}",
        _duration(row.acknowledge_auto.median),
        _duration(row.acknowledge_human.median),
        f"{_duration(row.action_plan.median)}/{_duration(row.action_plan.p90)}",
        _share(row.acknowledge),
        _share(row.action_plan_clock),
        str(row.breaches),
        str(row.follow_ups),
        str(row.check_ins),
    ]


def _table(title: str, rows: list[list[str]]) -> list[str]:
    table = [list(TEXT_COLUMNS), *rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(TEXT_COLUMNS))]
    lines = [title]
    for line in table:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    return lines


def local_time(value: datetime, zone: tzinfo) -> str:
    """``YYYY-MM-DD HH:MM`` in ``zone``."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def report_text(report: Report, zone: tzinfo) -> str:
    """The report as aligned tables: accounts, then owners."""
    lines = [
        f"SLA report {local_time(report.since, zone)} to {local_time(report.until, zone)} "
        f"(as of {local_time(report.as_of, zone)}; durations in working time, pauses excluded)",
        "",
        *_table("Accounts", [text_cells(row) for row in report.accounts]),
        "",
        *_table("Owners", [text_cells(row) for row in report.owners]),
    ]
    return "\n".join(lines)
