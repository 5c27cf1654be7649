"""The one renderer the daemon builds: every kind of notice from one set of templates."""

from __future__ import annotations

from sla_daemon.adapters.render_batch import BatchingNoticeRenderer
from sla_daemon.adapters.render_briefing import BriefingRenderer
from sla_daemon.adapters.render_report import WeeklyReportRenderer


class NoticeMailRenderer(BriefingRenderer, BatchingNoticeRenderer, WeeklyReportRenderer):
    """Single notices, first-start summaries, briefings, batch mails, the weekly report.

    Each kind's rendering lives in its own module; they share ``NoticeRenderer``'s
    environment, headers and time zones, so a template override applies to all of them.
    """
