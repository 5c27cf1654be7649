"""The Jinja2 environment of the notice templates and the formatting they share.

Every notice renderer (single notices, summaries, anything that sends a templated mail)
builds its environment here, so that all of them look templates up the same way (the
operator's ``templates_dir`` first, file by file, then the shipped ones), refuse unknown
variables, escape HTML, and run operator templates in Jinja2's sandbox.
"""

from __future__ import annotations

import importlib.resources
from datetime import UTC, datetime, tzinfo
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from sla_daemon.core.calendar import BusinessCalendar
from sla_daemon.core.model import Account, Rules
from sla_daemon.units import readable_duration

__all__ = [
    "account_zone",
    "build_environment",
    "format_local_time",
    "readable_duration",
    "shipped_templates_dir",
    "template_search_path",
]


def shipped_templates_dir() -> Path:
    """Where the templates that come with the program are.

    An installed wheel carries them inside the package; a source checkout (editable
    install) keeps them in ``templates/`` at the repository root.
    """
    packaged = importlib.resources.files("sla_daemon") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "templates"


def template_search_path(templates_dir: Path | None) -> tuple[Path, ...]:
    """The directories templates are looked up in, first match wins."""
    shipped = shipped_templates_dir()
    return (templates_dir, shipped) if templates_dir is not None else (shipped,)


def build_environment(templates_dir: Path | None) -> SandboxedEnvironment:
    """The environment every notice template is rendered in.

    The sandbox matters because ``templates_dir`` is operator-supplied: a template can
    format the variables it is given but cannot reach into Python objects. Unknown
    variables raise (``StrictUndefined``) so that a typo in an override is an error, not
    an empty field; ``*.html.j2`` templates autoescape.
    """
    return SandboxedEnvironment(
        loader=jinja2.FileSystemLoader(template_search_path(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), default_for_string=False, default=False
        ),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def format_local_time(moment: datetime, zone: tzinfo) -> str:
    """Print an instant in ``zone`` with the zone's abbreviation and UTC offset.

    Example: ``Tue 10 Mar 2026 14:05 CET (UTC+01:00)``. A naive datetime is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(zone)
    offset = local.strftime("%z")
    return f"{local:%a %d %b %Y %H:%M} {local.tzname()} (UTC{offset[:3]}:{offset[3:]})"


def account_zone(rules: Rules | None, account: Account | None, default: tzinfo) -> tzinfo:
    """The time zone an account's notices show times in.

    The zone of the business calendar the account's policy counts on (the hours the
    team promised are wall-clock hours there); ``default`` (the top-level ``timezone``)
    for a ``24x7`` policy, an unknown account or when no rules are given.
    """
    if rules is None or account is None:
        return default
    policy = rules.policies.get(account.policy)
    if policy is None:
        return default
    try:
        calendar = rules.calendar_for(policy)
    except KeyError:
        return default
    return calendar.zone if isinstance(calendar, BusinessCalendar) else default
