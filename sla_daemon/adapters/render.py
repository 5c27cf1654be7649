"""Turns a decision into the email that carries it: Jinja2 templates -> ``EmailMessage``.

Each notice kind has a template pair, ``<kind>.txt.j2`` and ``<kind>.html.j2``. Both get
the same plain dict from :func:`notice_context` (``render_context``); docs/notices.md
lists its variables for anyone who overrides the templates (``templates_dir``). The
Jinja2 environment and the time formatting live in ``render_env``.

Everything a client controls (subject, display name, Message-IDs) is cleaned before it
enters a header, and the HTML templates autoescape, so a hostile subject can neither add
headers nor inject markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from sla_daemon.adapters.notice_headers import (
    message_id_token,
    notice_message_id,
    reply_subject,
    sanitize_header_text,
    set_text_header,
)
from sla_daemon.adapters.render_context import notice_context
from sla_daemon.adapters.render_env import (
    account_zone,
    build_environment,
    format_local_time,
    readable_duration,
    shipped_templates_dir,
    template_search_path,
)
from sla_daemon.core.model import (
    Account,
    ConversationStatus,
    Decision,
    MessageFacts,
    NoticeKind,
    Rules,
    Team,
)
from sla_daemon.errors import ConfigError

__all__ = [
    "NoticeRenderer",
    "format_local_time",
    "notice_context",
    "notice_message_id",
    "readable_duration",
    "reply_subject",
    "sanitize_header_text",
    "shipped_templates_dir",
]

_MAX_REFERENCES = 20
"""References kept in an auto-ack; RFC 5322 allows trimming all but the first and last."""


class NoticeRenderer:
    """Renders decisions into ready-to-send emails.

    ``templates_dir`` (the operator's overrides) is searched before the shipped
    templates, one file at a time, so overriding a single template is enough. Times are
    shown in the account's time zone: its policy's business calendar's zone, else
    ``timezone`` (an IANA name such as ``Europe/Berlin``). ``rules`` also give the
    markers that escalations tell the team to use; without them those steps are left out.
    """

    def __init__(
        self,
        templates_dir: Path | None,
        team: Team,
        timezone: str,
        *,
        rules: Rules | None = None,
    ) -> None:
        try:
            self._zone: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        self._team = team
        self._rules = rules
        self.search_path: tuple[Path, ...] = template_search_path(templates_dir)
        """The directories templates are looked up in, first match wins."""
        self._env = build_environment(templates_dir)

    def check_templates(self) -> None:
        """Load every template once; raise ``ConfigError`` naming each one that fails.

        Meant for ``check-config``, so that a broken override is found before a deadline.
        """
        problems = []
        names = [f"{kind}.{suffix}.j2" for kind in NoticeKind for suffix in ("txt", "html")]
        # The shared parts (_escalation, _client_draft, _layout) are only compiled when a
        # notice includes them, so they are loaded here by name as well.
        names += [n for n in self._env.list_templates(extensions=["j2"]) if n.startswith("_")]
        for name in names:
            try:
                self._env.get_template(name)
            except jinja2.TemplateError as exc:
                problems.append(f"template {name}: {exc}")
        if problems:
            raise ConfigError(problems)

    def render(
        self,
        decision: Decision,
        status: ConversationStatus,
        trigger: MessageFacts | None,
        account: Account | None,
        now: datetime,
        *,
        history: Sequence[MessageFacts] = (),
    ) -> EmailMessage:
        """Build the multipart/alternative email (text, then HTML) for ``decision``.

        ``trigger`` is the client message the notice is about (the auto-ack replies to
        it); ``history``, the conversation's stored messages, lets an escalation quote
        the client's latest words and name who acknowledged. Raises
        ``jinja2.TemplateError`` when a template is broken and ``ValueError`` when a
        recipient is not a valid address.
        """
        context = self._context(decision, status, trigger, account, now, history)
        text = self._env.get_template(f"{decision.kind}.txt.j2").render(context)
        html = self._env.get_template(f"{decision.kind}.html.j2").render(context)
        message = self._compose(
            decision.kind,
            decision.key,
            decision.recipients,
            self._subject(decision, context),
            now,
        )
        # A made-up id would thread the reply to nothing in the client's mailbox.
        if decision.kind is NoticeKind.AUTO_ACK and trigger and not trigger.synthetic_id:
            parent = message_id_token(trigger.message_id)
            chain = [message_id_token(r) for r in trigger.references] + [parent]
            if len(chain) > _MAX_REFERENCES:
                chain = [chain[0], *chain[-(_MAX_REFERENCES - 1) :]]
            message["In-Reply-To"] = parent
            message["References"] = " ".join(chain)
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        return message

    def render_digest(
        self,
        key: str,
        owner: str,
        items: Sequence[tuple[Decision, ConversationStatus, Account | None]],
        now: datetime,
    ) -> EmailMessage:
        """One summary for ``owner`` of breaches that existed before monitoring began.

        Used on a first start (or a newly added mailbox with history), so that the owner
        gets one mail listing every missed deadline instead of one mail each. The
        templates ``digest.txt.j2``/``digest.html.j2`` get ``owner``, ``count`` and
        ``items`` (each item is the context a breach notice would have had).
        """
        contexts = [
            self._context(decision, status, None, account, now, ())
            for decision, status, account in items
        ]
        context = {
            "kind": str(NoticeKind.DIGEST),
            "owner": owner,
            "count": len(contexts),
            "items": contexts,
            "team_name": self._team.name,
            "now": format_local_time(now, self._zone),
            "timezone": str(self._zone),
        }
        text = self._env.get_template("digest.txt.j2").render(context)
        html = self._env.get_template("digest.html.j2").render(context)
        plural = "s" if len(contexts) != 1 else ""
        subject = (
            f"[SLA summary] {len(contexts)} deadline{plural} already missed when monitoring began"
        )
        message = self._compose(NoticeKind.DIGEST, key, (owner,), subject, now)
        message.set_content(text, cte="quoted-printable")
        message.add_alternative(html, subtype="html", cte="quoted-printable")
        return message

    def _context(
        self,
        decision: Decision,
        status: ConversationStatus,
        trigger: MessageFacts | None,
        account: Account | None,
        now: datetime,
        history: Sequence[MessageFacts],
    ) -> dict[str, Any]:
        zone = account_zone(self._rules, account, self._zone)
        return notice_context(
            decision,
            status,
            trigger,
            account,
            now,
            self._team,
            zone,
            history=history,
            rules=self._rules,
        )

    def _compose(
        self,
        kind: NoticeKind,
        key: str,
        recipients: Sequence[str],
        subject: str,
        now: datetime,
    ) -> EmailMessage:
        """The headers every notice carries; the caller adds the body."""
        message = EmailMessage(policy=SMTP)
        sender = self._team.from_address
        message["From"] = HeaderAddress(
            display_name=sanitize_header_text(sender.name or self._team.name),
            addr_spec=sender.email,
        )
        message["To"] = [HeaderAddress(addr_spec=r.strip()) for r in recipients]
        message["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=UTC))
        message["Message-ID"] = notice_message_id(key, sender.domain)
        set_text_header(message, "Subject", subject)
        message["Auto-Submitted"] = (
            "auto-replied" if kind is NoticeKind.AUTO_ACK else "auto-generated"
        )
        message["X-Auto-Response-Suppress"] = "All"
        message["X-SLA-Daemon"] = str(kind)
        message["X-SLA-Notice-Key"] = sanitize_header_text(key, limit=500)
        return message

    @staticmethod
    def _subject(decision: Decision, context: dict[str, Any]) -> str:
        """The Subject header: a reply for the client, a one-line summary for the team."""
        subject = sanitize_header_text(context["subject"])
        if decision.kind is NoticeKind.AUTO_ACK:
            return reply_subject(subject)
        account = sanitize_header_text(context["account_name"], limit=60)
        if decision.kind is NoticeKind.FOLLOW_UP:
            return f'[SLA follow-up] {account}: ask whether the plan worked — "{subject}"'
        if decision.kind is NoticeKind.CHECK_IN:
            quiet = context["quiet_for"] or "a while"
            return f"[SLA check-in] {account}: no message to the client for {quiet}"
        what = context["clock_label"] or "deadline"
        if decision.kind is NoticeKind.WARNING:
            timing = f"due in {context['due_in']}" if context["due_in"] else "due soon"
            tag = "[SLA warning]"
        else:
            timing = f"{context['late_by']} late" if context["late_by"] else "missed"
            if decision.reminder:
                timing = f"still late, now by {context['late_by'] or 'a while'}"
            reminder = f", reminder {decision.reminder}" if decision.reminder else ""
            raised = ", escalated" if decision.level == "breach-2" else ""
            tag = f"[SLA breach{raised}{reminder}]"
        return f'{tag} {account}: {what} {timing} — "{subject}"'
