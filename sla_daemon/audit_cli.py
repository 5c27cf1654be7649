"""``sla-daemon audit``: the period, the replay, one format out (text, JSON or HTML)."""

from __future__ import annotations

import json
import sys
from datetime import tzinfo
from html import escape
from pathlib import Path
from zoneinfo import ZoneInfo

from sla_daemon.audit import WouldSend
from sla_daemon.clock import SystemClock
from sla_daemon.config import Config
from sla_daemon.errors import ConfigError
from sla_daemon.report_cli import parse_moment
from sla_daemon.report_view import local_time

_COLUMNS = ("decided", "kind", "conversation", "recipients", "subject")


def _cells(notice: WouldSend, zone: tzinfo) -> list[str]:
    subject = notice.subject if notice.suppressed is None else f"(not sent: {notice.suppressed})"
    return [
        local_time(notice.decided_at, zone),
        notice.kind,
        notice.conversation_id or "-",
        ", ".join(notice.recipients),
        subject,
    ]


def notices_text(notices: list[WouldSend], zone: tzinfo) -> str:
    """The notices the daemon would have sent, one a line."""
    lines = [f"What the daemon would have sent ({len(notices)} notices)", ""]
    rows = [list(_COLUMNS), *(_cells(n, zone) for n in notices)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS) - 1)]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + row[-1])
    return "\n".join(line.rstrip() for line in lines)


def notices_html(notices: list[WouldSend], zone: tzinfo) -> str:
    """The notices as an HTML section (every cell escaped)."""
    head = "".join(f"<th>{escape(c)}</th>" for c in _COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in _cells(n, zone)) + "</tr>"
        for n in notices
    )
    return f"<h2>What the daemon would have sent</h2><table><tr>{head}</tr>{body}</table>"


def run_audit(config: Config, path: Path, since: str | None, until: str | None, output: str) -> int:
    """Replay the export at ``path`` and print the report and the notices; 0."""
    from sla_daemon.app_exports import audit_export
    from sla_daemon.report_html import report_html
    from sla_daemon.report_view import report_json, report_text

    if not path.exists():
        raise ConfigError([f"{path}: no such file or directory"])
    zone = ZoneInfo(config.timezone)
    end = SystemClock().now() if until is None else parse_moment("--until", until, zone)
    start = None if since is None else parse_moment("--since", since, zone)
    if start is not None and start >= end:
        raise ConfigError([f"--since ({start.isoformat()}) must be before --until"])
    report, notices = audit_export(config, path, start, end)
    if output == "json":
        document = json.loads(report_json(report))
        document["would_send"] = [
            {
                "decided_at": n.decided_at.isoformat(),
                "kind": n.kind,
                "conversation_id": n.conversation_id,
                "recipients": list(n.recipients),
                "subject": n.subject,
                "suppressed": n.suppressed,
            }
            for n in notices
        ]
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    elif output == "html":
        sys.stdout.write(report_html(report, zone, notices_html(notices, zone)))
    else:
        sys.stdout.write(report_text(report, zone) + "\n\n" + notices_text(notices, zone) + "\n")
    return 0
