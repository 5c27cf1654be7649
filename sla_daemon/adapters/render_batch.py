"""The batch mail: several notices due together for one recipient, sent as one.

The batch uses the same templates directory, Jinja environment and headers as every
other notice (it extends :class:`~sla_daemon.adapters.render.NoticeRenderer`). The
templates ``batch.txt.j2`` and ``batch.html.j2`` get:

- ``recipient``: the address the batch goes to; ``count``: how many notices it holds;
- ``items``: one per notice, oldest decision first, each with ``key``, ``kind``,
  ``subject`` (the notice's own Subject) and ``text`` (its plain-text body);
- ``team_name``, ``now`` and ``timezone`` as in the other templates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage

from sla_daemon.adapters.render import NoticeRenderer, format_local_time
from sla_daemon.core.model import NoticeKind
from sla_daemon.ports import BatchedNotice

_KIND_WORDS = {
    NoticeKind.BREACH: ("breach", "breaches"),
    NoticeKind.WARNING: ("warning", "warnings"),
    NoticeKind.DIGEST: ("summary", "summaries"),
    NoticeKind.FOLLOW_UP: ("follow-up", "follow-ups"),
    NoticeKind.CHECK_IN: ("check-in", "check-ins"),
}


def batch_subject(notices: Sequence[BatchedNotice]) -> str:
    """``[SLA] 3 notices: 1 breach, 2 warnings`` (breaches named first)."""
    counts = Counter(notice.kind for notice in notices)
    parts = []
    for kind, (one, many) in _KIND_WORDS.items():
        if counts[kind]:
            parts.append(f"{counts[kind]} {one if counts[kind] == 1 else many}")
    return f"[SLA] {len(notices)} notices: {', '.join(parts)}"


class BatchingNoticeRenderer(NoticeRenderer):
    """A ``NoticeRenderer`` that also renders batch mails (``delivery.BatchRenderer``)."""

    def render_batch(
        self, key: str, recipient: str, notices: Sequence[BatchedNotice], now: datetime
    ) -> EmailMessage:
        """The batch mail for ``recipient``; its Message-ID depends only on ``key``."""
        context = {
            "kind": str(NoticeKind.BATCH),
            "recipient": recipient,
            "count": len(notices),
            "items": [
                {"key": n.key, "kind": str(n.kind), "subject": n.subject, "text": n.text}
                for n in notices
            ],
            "team_name": self._team.name,
            "now": format_local_time(now, self._zone),
            "timezone": str(self._zone),
        }
        text = self._env.get_template("batch.txt.j2").render(context)
        html = self._env.get_template("batch.html.j2").render(context)
        message = self._compose(NoticeKind.BATCH, key, (recipient,), batch_subject(notices), now)
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        return message
