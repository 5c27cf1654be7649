"""Checks of the configuration that span several keys (one key alone validates in pydantic).

Each problem names the key path to fix; ``config.parse_config`` turns them into
``file:line: key.path: problem`` lines.
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from typing import TYPE_CHECKING

from sla_daemon.config_oauth2 import oauth2_problems
from sla_daemon.hosts import is_loopback_host, listen_address
from sla_daemon.yamlpos import KeyPath

if TYPE_CHECKING:
    from sla_daemon.config import Config, MarkerSetConfig


def cross_checks(config: Config) -> list[tuple[KeyPath, str]]:
    """Checks that span several keys; each problem names the key to fix (empty: none)."""
    problems: list[tuple[KeyPath, str]] = []
    if not parseaddr(config.team.from_)[1] or "@" not in parseaddr(config.team.from_)[1]:
        problems.append((("team", "from"), f"expected a mail address, got {config.team.from_!r}"))
    names: set[str] = set()
    for index, mailbox in enumerate(config.mailboxes):
        where: KeyPath = ("mailboxes", index)
        if mailbox.name in names:
            problems.append(((*where, "name"), f"mailbox name {mailbox.name!r} is used twice"))
        names.add(mailbox.name)
        if (mailbox.host is None) == (mailbox.path is None):
            problems.append((where, "give either host (IMAP) or path (Maildir/mbox)"))
        if mailbox.host is not None:
            if mailbox.username is None:
                problems.append(((*where, "username"), "an IMAP mailbox needs a username"))
            if mailbox.auth == "password" and not mailbox.secret_sources():
                problems.append(
                    (where, "an IMAP mailbox needs password, password_file or password_env")
                )
            if mailbox.security == "none" and not is_loopback_host(mailbox.host):
                problems.append(
                    ((*where, "security"), "none sends the password in clear; loopback only")
                )
        if len(mailbox.secret_sources()) > 1:
            problems.append((where, "give only one of " + ", ".join(mailbox.secret_sources())))
    if config.smtp.security == "none" and not is_loopback_host(config.smtp.host):
        problems.append((("smtp", "security"), "none is only allowed to a loopback host"))
    if len(config.smtp.secret_sources()) > 1:
        problems.append((("smtp",), "give only one of " + ", ".join(config.smtp.secret_sources())))
    for index, account in enumerate(config.accounts):
        if account.policy not in config.policies:
            known = ", ".join(sorted(config.policies)) or "none"
            problems.append(
                (
                    ("accounts", index, "policy"),
                    f"no policy named {account.policy!r} (defined: {known})",
                )
            )
    problems += _calendar_problems(config)
    problems += oauth2_problems(config)
    problems += notice_problems(config)
    problems += http_problems(config)
    if config.default_account is not None and config.default_account not in {
        a.name for a in config.accounts
    }:
        problems.append((("default_account",), f"no account named {config.default_account!r}"))
    for kind in ("action_plan", "waiting_on_client"):
        marker_set: MarkerSetConfig = getattr(config.markers, kind)
        for index, pattern in enumerate(marker_set.body_patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(
                    (("markers", kind, "body_patterns", index), f"not a regular expression: {exc}")
                )
    for key in ("patterns", "request_patterns"):
        for index, pattern in enumerate(getattr(config.markers.courtesy, key)):
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(
                    (("markers", "courtesy", key, index), f"not a regular expression: {exc}")
                )
    return problems


def _calendar_problems(config: Config) -> list[tuple[KeyPath, str]]:
    """Problems of the ``calendars`` section and of the calendars policies name."""
    problems: list[tuple[KeyPath, str]] = []
    for name, calendar in config.calendars.items():
        if name == "24x7":
            problems.append((("calendars", name), "24x7 is built in; give this calendar a name"))
        found = calendar.parsed()[2] + calendar.holiday_region()[2]
        problems += [(("calendars", name, *where), message) for where, message in found]
    for name, policy in config.policies.items():
        if policy.calendar != "24x7" and policy.calendar not in config.calendars:
            known = ", ".join(["24x7", *sorted(config.calendars)])
            problems.append(
                (
                    ("policies", name, "calendar"),
                    f"no calendar named {policy.calendar!r} (defined: {known})",
                )
            )
    return problems


def notice_problems(config: Config) -> list[tuple[KeyPath, str]]:
    """Problems of the ``notices`` section (a delivery policy that cannot work)."""
    problems: list[tuple[KeyPath, str]] = []
    delivery = config.notices.delivery
    if delivery.retry_max < delivery.retry_first:
        problems.append(
            (("notices", "delivery", "retry_max"), "must not be shorter than retry_first")
        )
    for address, quiet in config.notices.quiet_hours.items():
        if quiet.start == quiet.end:
            problems.append((("notices", "quiet_hours", address, "end"), "equals start"))
    return problems


def http_problems(config: Config) -> list[tuple[KeyPath, str]]:
    """Problems of the ``http`` section: an address that cannot be listened on.

    The listener has no authentication, so an address other than loopback must be
    asked for explicitly (``allow_remote``).
    """
    if config.http is None:
        return []
    try:
        host, _port = listen_address(config.http.listen)
    except ValueError as exc:
        return [(("http", "listen"), str(exc))]
    if not config.http.allow_remote and not is_loopback_host(host):
        return [
            (
                ("http", "listen"),
                f"{host} is not a loopback address; set allow_remote: true to expose "
                "/metrics and /healthz (no authentication) beyond this machine",
            )
        ]
    return []
