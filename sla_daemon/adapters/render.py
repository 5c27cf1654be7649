"""Turns a decision into the email that carries it: Jinja2 templates -> ``EmailMessage``.

Each notice kind has a template pair, ``<kind>.txt.j2`` and ``<kind>.html.j2``. Both get
the same plain dict from :func:`notice_context`, whose docstring is the reference for
anyone who overrides the templates (``templates_dir`` in the configuration).

Everything a client controls (subject, display name, Message-IDs) is cleaned before it
enters a header, and the HTML templates autoescape, so a hostile subject can neither add
headers nor inject markup.
"""

from __future__ import annotations

import importlib.resources
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
from sla_daemon.core.model import (
    Account,
    ClockName,
    ConversationStatus,
    Decision,
    MessageFacts,
    NoticeKind,
    Team,
)
from sla_daemon.errors import ConfigError
from sla_daemon.units import readable_duration

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

_CLOCK_LABELS = {
    ClockName.ACKNOWLEDGE: "acknowledgement",
    ClockName.ACTION_PLAN: "action plan",
}
_CLOCK_DESCRIPTIONS = {
    ClockName.ACKNOWLEDGE: "acknowledge the client's email",
    ClockName.ACTION_PLAN: "send findings and an action plan",
}


def format_local_time(moment: datetime, zone: tzinfo) -> str:
    """Print an instant in ``zone`` with the zone's abbreviation and UTC offset.

    Example: ``Tue 10 Mar 2026 14:05 CET (UTC+01:00)``. A naive datetime is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def notice_context(
    decision: Decision,
    status: ConversationStatus,
    trigger: MessageFacts | None,
    account: Account | None,
    now: datetime,
    team: Team,
    zone: tzinfo,
) -> dict[str, Any]:
    """Build the variables every notice template receives (one plain dict).

    Times are strings already formatted in the configured time zone, e.g.
    ``Tue 10 Mar 2026 14:05 CET (UTC+01:00)``; durations read like ``1d 2h`` or ``45m``.
    Variables that do not apply are ``None`` (test them with ``{% if ... %}``).

    - ``kind``: ``auto_ack``, ``warning``, ``breach``, ``follow_up`` or ``check_in``.
    - ``team_name``, ``team_address``: the team and the address notices come from.
    - ``account_name``: the client's account (``(no account)`` when unknown);
      ``account_owner``: its owner's address or ``None``; ``escalate_to``: list of the
      lead addresses that receive breaches.
    - ``client_name``: the client's display name (may be empty); ``client_email``: their
      address; ``client``: both together, e.g. ``Jane Roe <jane@globex.example>``.
    - ``subject``: the client's subject, on one line.
    - ``arrived_at``: when the client's message that opened the cycle arrived.
    - ``clock``: ``acknowledge`` or ``action_plan`` (or ``None``); ``clock_label``: the
      same in words (``acknowledgement``, ``action plan``); ``deadline_description``: what
      the team promised, as a verb phrase (``acknowledge the client's email``,
      ``send findings and an action plan``).
    - ``due_at``: when the deadline is or was due; ``due_in``: time left (warnings);
      ``late_by``: how late it is now (breaches).
    - ``repetition``: 0 for the first breach notice sent for a clock, then 1, 2, ... for
      each re-escalation that follows it; ``is_reminder``: whether it is above 0.
    - ``level``: the engine's name for the notice level (e.g. ``warn-14400s``).
    - ``conversation_id``, ``cycle``: what ``sla-daemon status`` shows.
    - ``recipients``: list of the addresses the notice goes to.
    - ``quiet_since``: follow-ups and check-ins: since when nobody wrote (follow-up: no
      message in the conversation; check-in: no team message to the client);
      ``quiet_for``: how long that was when the reminder fell due (e.g. ``7d``).
    - ``now``: when the notice was rendered; ``timezone``: the zone's name.
    """
    sender = trigger.sender if trigger is not None else None
    client_email = sender.email if sender is not None else (status.client or "")
    client_name = sanitize_header_text(sender.name) if sender is not None else ""
    client = f"{client_name} <{client_email}>" if client_name else client_email

    due_at = decision.due_at
    if due_at is None and decision.clock is ClockName.ACKNOWLEDGE:
        due_at = status.acknowledge_due
    elif due_at is None and decision.clock is ClockName.ACTION_PLAN:
        due_at = status.action_plan_due

    due_in = late_by = None
    if decision.kind in (NoticeKind.FOLLOW_UP, NoticeKind.CHECK_IN):
        due_at = None  # the moment a reminder fell due is no deadline of the client's
    elif due_at is not None and decision.kind is NoticeKind.WARNING:
        due_in = readable_duration(due_at - now)
    elif due_at is not None and decision.kind is NoticeKind.BREACH:
        late_by = readable_duration(now - due_at)

    opened_at = status.opened_at or (trigger.arrived_at if trigger is not None else None)
    account_name = account.name if account is not None else (status.account or "(no account)")
    subject = status.subject or (trigger.subject if trigger is not None else "")
    quiet_since = decision.quiet_since
    quiet_for = None
    if quiet_since is not None and decision.due_at is not None:
        quiet_for = readable_duration(decision.due_at - quiet_since)
    return {
        "kind": str(decision.kind),
        "team_name": team.name,
        "team_address": team.from_address.email,
        "account_name": account_name,
        "account_owner": account.owner if account is not None else None,
        "escalate_to": list(account.escalate_to) if account is not None else [],
        "client_name": client_name,
        "client_email": client_email,
        "client": client,
        "subject": sanitize_header_text(subject, limit=1000) or "(no subject)",
        "arrived_at": format_local_time(opened_at, zone) if opened_at else None,
        "clock": str(decision.clock) if decision.clock is not None else None,
        "clock_label": _CLOCK_LABELS.get(decision.clock) if decision.clock else None,
        "deadline_description": (
            _CLOCK_DESCRIPTIONS.get(decision.clock) if decision.clock else None
        ),
        "due_at": format_local_time(due_at, zone) if due_at is not None else None,
        "due_in": due_in,
        "late_by": late_by,
        "repetition": decision.reminder,
        "is_reminder": decision.reminder > 0,
        "level": decision.level,
        "conversation_id": decision.conversation_id,
        "cycle": decision.cycle,
        "recipients": list(decision.recipients),
        "quiet_since": format_local_time(quiet_since, zone) if quiet_since else None,
        "quiet_for": quiet_for,
        "now": format_local_time(now, zone),
        "timezone": str(zone),
    }


def shipped_templates_dir() -> Path:
    """Where the templates that come with the program are.

    An installed wheel carries them inside the package; a source checkout (editable
    install) keeps them in ``templates/`` at the repository root.
    """
    packaged = importlib.resources.files("sla_daemon") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


class NoticeRenderer:
    """Renders decisions into ready-to-send emails.

    ``templates_dir`` (the operator's overrides) is searched before the shipped
    templates, one file at a time, so overriding a single template is enough. Times are
    shown in ``timezone`` (an IANA name such as ``Europe/Berlin``).
    """

    def __init__(self, templates_dir: Path | None, team: Team, timezone: str) -> None:
        try:
            self._zone: tzinfo = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {timezone!r}") from exc
        self._team = team
        search_path = [shipped_templates_dir()]
        if templates_dir is not None:
            search_path.insert(0, templates_dir)
        self.search_path: tuple[Path, ...] = tuple(search_path)
        """The directories templates are looked up in, first match wins."""
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(search_path),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html.j2",), default_for_string=False, default=False
            ),
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )

    def check_templates(self) -> None:
        """Load every template once; raise ``ConfigError`` naming each one that fails.

        Meant for ``check-config``, so that a broken override is found before a deadline.
        """
        problems = []
        for kind in NoticeKind:
            for suffix in ("txt", "html"):
                name = f"{kind}.{suffix}.j2"
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
    ) -> EmailMessage:
        """Build the multipart/alternative email (text, then HTML) for ``decision``.

        ``trigger`` is the client message the notice is about (the auto-ack replies to
        it). Raises ``jinja2.TemplateError`` when a template is broken and ``ValueError``
        when a recipient is not a valid address.
        """
        context = notice_context(decision, status, trigger, account, now, self._team, self._zone)
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
            notice_context(decision, status, None, account, now, self._team, self._zone)
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
            reminder = f", reminder {decision.reminder}" if decision.reminder else ""
            raised = ", escalated" if decision.level == "breach-2" else ""
            tag = f"[SLA breach{raised}{reminder}]"
        return f'{tag} {account}: {what} {timing} — "{subject}"'
