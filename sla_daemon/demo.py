"""``sla-daemon demo``: the real pipeline on a sample mailbox, with nothing to set up.

It writes a small Maildir (a few clients, conversations of different ages, one team
reply with an action plan, an out-of-office reply and a newsletter), starts an in-process
SMTP sink, runs one cycle of the same service and engine as ``run`` and prints the status
table and every notice the sink received.
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import socket
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sla_daemon.clock import SystemClock
from sla_daemon.config import parse_config

TIMEZONE = "Europe/Berlin"


@dataclass
class _Sink:
    """Collects the mail the demo sends, in memory."""

    received: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 Message accepted for delivery"


def _free_port() -> int:
    # aiosmtpd cannot bind port 0 itself, so ask the kernel for a free one first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _mail(
    sender: str,
    to: str,
    subject: str,
    body: str,
    at: datetime,
    *,
    reply_to: EmailMessage | None = None,
    extra: dict[str, str] | None = None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">"))
    if reply_to is not None:
        message["In-Reply-To"] = reply_to["Message-ID"]
        message["References"] = reply_to["Message-ID"]
    for name, value in (extra or {}).items():
        message[name] = value
    message.set_content(body)
    return message


def write_sample_mailbox(path: Path, now: datetime) -> None:
    """Write the demo's Maildir (INBOX plus a ``.Sent`` folder) at ``path``."""
    inbox = mailbox.Maildir(path, create=True)
    sent = inbox.add_folder("Sent")
    support = "Acme Support <support@acme.example>"

    fresh = _mail(
        "Dana Lee <dana@globex.example>",
        support,
        "Checkout page returns 500 since this morning",
        "Hi,\n\nour checkout fails with an error 500 for every customer. Can you look?\n\nDana",
        now - timedelta(minutes=4),
    )
    aging = _mail(
        "Peter Gibbons <peter@initech.example>",
        support,
        "Invoice export is missing October",
        "Hello, the invoice export stops at September. We need October for the audit.",
        now - timedelta(hours=46),
    )
    aging_ack = _mail(
        "Bob Porter <bob@acme.example>",
        "peter@initech.example",
        "Re: Invoice export is missing October",
        "Thanks Peter, we are looking into it and will come back to you.\n\nBob",
        now - timedelta(hours=45, minutes=45),
        reply_to=aging,
    )
    late = _mail(
        "Ray Stantz <ray@globex.example>",
        support,
        "Nightly data sync stalled",
        "The nightly sync to the warehouse has not run since Sunday.",
        now - timedelta(hours=51),
    )
    late_ack = _mail(
        "Alice Smith <alice@acme.example>",
        "ray@globex.example",
        "Re: Nightly data sync stalled",
        "Hi Ray, thanks, we are on it.\n\nAlice",
        now - timedelta(hours=50, minutes=40),
        reply_to=late,
    )
    planned = _mail(
        "Jill Valentine <jill@umbrella.example>",
        support,
        "Dashboard slow for EU users",
        "Since Tuesday the dashboard takes 20 seconds to load from Europe.",
        now - timedelta(hours=30),
    )
    planned_ack = _mail(
        "Carol Diaz <carol@acme.example>",
        "jill@umbrella.example",
        "Re: Dashboard slow for EU users",
        "Hi Jill, thanks for the report; we are measuring from our EU probes now.\n\nCarol",
        now - timedelta(hours=29, minutes=40),
        reply_to=planned,
    )
    plan = _mail(
        "Carol Diaz <carol@acme.example>",
        "jill@umbrella.example",
        "Re: Dashboard slow for EU users [Action Plan]",
        "Hi Jill,\n\nfindings: the EU cache node lost its warm-up job.\n\n"
        "Action plan: restore the warm-up job today, add an alert on cache hit rate "
        "tomorrow, report back on Friday.\n\nCarol",
        now - timedelta(hours=26),
        reply_to=planned_ack,
    )
    out_of_office = _mail(
        "Ray Stantz <ray@globex.example>",
        support,
        "Automatic reply: Re: Nightly data sync stalled",
        "I am out of the office until Monday.",
        now - timedelta(hours=2),
        reply_to=late_ack,
        extra={"Auto-Submitted": "auto-replied"},
    )
    newsletter = _mail(
        "Vendor News <news@vendor.example>",
        support,
        "Our November product update",
        "Lots of new features!",
        now - timedelta(hours=1),
        extra={"List-Id": "<news.vendor.example>", "Precedence": "bulk"},
    )
    for message in (fresh, aging, late, planned, out_of_office, newsletter):
        inbox.add(message)
    for message in (aging_ack, late_ack, planned_ack, plan):
        sent.add(message)


def _config_text(directory: Path, smtp_port: int) -> str:
    return f"""\
# Written by `sla-daemon demo`. Try: sla-daemon --config {directory}/config.yaml status
state_dir: {directory}/state
timezone: {TIMEZONE}
team:
  name: Acme Support
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: demo
    path: {directory}/mail
    format: maildir
    folders: {{inbox: [INBOX], sent: [Sent]}}
smtp:
  host: 127.0.0.1
  port: {smtp_port}
  security: none
notices:
  digest_window: 0s  # the demo runs one cycle: team notices go out at once
policies:
  standard:
    acknowledge: {{within: 1h, warn_before: [15m]}}
    action_plan: {{within: 48h, warn_before: [24h, 4h]}}
    re_escalate_every: 24h
accounts:
  - name: Globex
    domains: [globex.example]
    owner: alice@acme.example
    escalate_to: [lead@acme.example]
  - name: Initech
    domains: [initech.example]
    owner: bob@acme.example
    escalate_to: [lead@acme.example]
  - name: Umbrella
    domains: [umbrella.example]
    owner: carol@acme.example
    escalate_to: [lead@acme.example]
"""


def demo_config_text(directory: Path, smtp_port: int) -> str:
    """The demo's configuration (team, three accounts, one policy) for ``directory``."""
    return _config_text(directory, smtp_port)


def run_demo(directory: Path | None) -> int:
    """Run the demo in ``directory`` (a new temporary one when None); return 0."""
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        print("the demo needs aiosmtpd: pip install 'sla-daemon[demo]'")
        return 1
    from sla_daemon.app import build_service
    from sla_daemon.app_queries import conversation_statuses
    from sla_daemon.status_view import status_table

    directory = directory or Path(tempfile.mkdtemp(prefix="sla-daemon-demo-"))
    directory.mkdir(parents=True, exist_ok=True)
    now = SystemClock().now()
    if not (directory / "mail").exists():
        write_sample_mailbox(directory / "mail", now)
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config_path = directory / "config.yaml"
        config_path.write_text(_config_text(directory, port), encoding="utf-8")
        config = parse_config(config_path.read_text(encoding="utf-8"), str(config_path))
        service = build_service(config)
        report = service.run_cycle()
        suppressed = [e for e in service.store.outbox() if e.status == "suppressed"]
        service.store.close()
    finally:
        controller.stop()

    zone = ZoneInfo(TIMEZONE)
    print(f"\nSample mailbox: {directory / 'mail'} (Maildir, INBOX and Sent)")
    print(
        f"One cycle: {report.stored} messages stored, {report.sent} notices sent, "
        f"{report.suppressed} decided against, each with its reason:"
    )
    for entry in suppressed:
        print(f"  - no {entry.kind.value} to {', '.join(entry.recipients)}: {entry.reason}")
    print()
    statuses = conversation_statuses(config, SystemClock().now().astimezone(UTC)) or []
    print(status_table(statuses, SystemClock().now(), zone))
    print(f"\nNotices received by the SMTP sink ({len(sink.received)}):")
    for message in sink.received:
        print("\n" + "=" * 78)
        for name in ("From", "To", "Subject", "Auto-Submitted", "In-Reply-To"):
            if message[name]:
                print(f"{name}: {message[name]}")
        body = message.get_body(("plain",))
        if body is not None and isinstance(body, EmailMessage):
            print("\n" + body.get_content().strip())
    print("\n" + "=" * 78)
    print(f"Run it again and nothing is sent twice: sla-daemon demo --dir {directory}")
    print(f"Look around: sla-daemon --config {directory}/config.yaml status --json")
    return 0
