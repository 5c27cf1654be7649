"""The core's rules from the configuration: calendars, policies, accounts and markers.

A plain conversion, no I/O beyond the ``holidays`` package's tables: the composition root
(``app``) and the tests build ``Rules`` with it.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, date, datetime
from email.utils import parseaddr
from importlib.metadata import version

import holidays
import orjson

import sla_daemon
from sla_daemon.config import (
    AccountConfig,
    ClockOverride,
    Config,
    MarkersConfig,
    MarkerSetConfig,
)
from sla_daemon.config_calendars import CalendarConfig
from sla_daemon.core.calendar import BusinessCalendar, Calendar
from sla_daemon.core.model import (
    Account,
    Address,
    ClockPolicy,
    CourtesyRule,
    Markers,
    MarkerSet,
    Policy,
    Rules,
    SecondLevel,
    Team,
)

# A calendar's country holidays cover the current year, the two before and the three after
# (docs/sla.md, "Calendars"); the daemon expands them again at every start.
HOLIDAY_YEARS_BEFORE = 2
HOLIDAY_YEARS_AFTER = 3


def build_calendar(name: str, section: CalendarConfig, today: date) -> BusinessCalendar:
    """The core calendar for one validated ``calendars`` entry.

    Country (and subdivision) holidays are expanded here into plain dates, for the years
    from ``today.year - HOLIDAY_YEARS_BEFORE`` to ``today.year + HOLIDAY_YEARS_AFTER``.
    """
    weekly, half_days, _ = section.parsed()
    country, subdivision, _ = section.holiday_region()
    closed = set(section.holidays.dates)
    if country is not None:
        years = range(today.year - HOLIDAY_YEARS_BEFORE, today.year + HOLIDAY_YEARS_AFTER + 1)
        closed.update(holidays.country_holidays(country, subdiv=subdivision, years=years))
    return BusinessCalendar(
        name=name,
        timezone=section.timezone,
        weekly=weekly,
        holidays=closed,
        half_days=half_days,
    )


def build_rules(config: Config, *, today: date | None = None) -> Rules:
    """Translate the validated configuration into the core's plain rules.

    ``today`` (default: the current UTC date) centres the span of country holidays.
    """
    today = today or datetime.now(UTC).date()
    calendars: dict[str, Calendar] = {
        name: build_calendar(name, section, today) for name, section in config.calendars.items()
    }
    from_name, from_email = parseaddr(config.team.from_)
    team = Team(
        name=config.team.name,
        from_address=Address(from_email.lower(), from_name),
        domains=tuple(d.lower() for d in config.team.domains),
        addresses=tuple(a.lower() for a in config.team.addresses),
    )
    policies = {
        name: Policy(
            name=name,
            acknowledge=ClockPolicy(
                policy.acknowledge.within, tuple(policy.acknowledge.warn_before)
            ),
            action_plan=ClockPolicy(
                policy.action_plan.within, tuple(policy.action_plan.warn_before)
            ),
            auto_ack=policy.auto_ack,
            counts_auto_ack=policy.acknowledge.counts_auto_ack,
            re_escalate_every=policy.re_escalate_every,
            calendar=policy.calendar,
            follow_up_after=policy.follow_up_after,
            close_after=policy.close_after,
            second_level=(
                SecondLevel(
                    policy.escalate_after_breach.after, tuple(policy.escalate_after_breach.to)
                )
                if policy.escalate_after_breach is not None
                else None
            ),
        )
        for name, policy in config.policies.items()
    }
    for account in config.accounts:
        if account.acknowledge is not None or account.action_plan is not None:
            policies[account_policy_name(account)] = _with_overrides(
                policies[account.policy], account
            )
    accounts = tuple(
        Account(
            name=account.name,
            policy=account_policy_name(account),
            owner=account.owner,
            domains=tuple(d.lower() for d in account.domains),
            addresses=tuple(a.lower() for a in account.addresses),
            escalate_to=tuple(account.escalate_to),
            check_in_every=account.check_in_every,
        )
        for account in config.accounts
    )
    return Rules(
        team=team,
        accounts=accounts,
        policies=policies,
        markers=build_markers(config.markers),
        auto_ack_max_age=config.ingest.auto_ack_max_age,
        default_account=config.default_account,
        auto_ack_per_sender_per_day=config.notices.auto_ack_per_sender_per_day,
        calendars=calendars,
    )


def rules_fingerprint(config: Config, today: date) -> str:
    """A digest of everything ``build_rules(config, today=today)`` depends on.

    Two configurations with the same fingerprint give the same rules, so a conversation
    summary made under one holds under the other. It covers exactly the sections
    ``build_rules`` reads, the year that centres the holidays, and the versions of
    sla-daemon and of ``holidays``; never the mailboxes or SMTP (their secrets).
    """
    sections = {
        "calendars": {n: c.model_dump(mode="json") for n, c in config.calendars.items()},
        "team": config.team.model_dump(mode="json"),
        "policies": {n: p.model_dump(mode="json") for n, p in config.policies.items()},
        "accounts": [account.model_dump(mode="json") for account in config.accounts],
        "markers": config.markers.model_dump(mode="json"),
        "auto_ack_max_age": config.ingest.auto_ack_max_age.total_seconds(),
        "default_account": config.default_account,
        "auto_ack_per_sender_per_day": config.notices.auto_ack_per_sender_per_day,
        "year": today.year,
        "sla_daemon": sla_daemon.__version__,
        "holidays": version("holidays"),
    }
    return hashlib.sha256(orjson.dumps(sections, option=orjson.OPT_SORT_KEYS)).hexdigest()


def account_policy_name(account: AccountConfig) -> str:
    """The policy an account is on: its named policy, or that policy with its overrides."""
    if account.acknowledge is None and account.action_plan is None:
        return account.policy
    return f"{account.policy} (as set for {account.name})"


def _with_overrides(policy: Policy, account: AccountConfig) -> Policy:
    """``policy`` with the account's own clock targets in place of the policy's."""

    def clock(base: ClockPolicy, override: ClockOverride | None) -> ClockPolicy:
        if override is None:
            return base
        return ClockPolicy(
            within=override.within if override.within is not None else base.within,
            warn_before=(
                tuple(override.warn_before)
                if override.warn_before is not None
                else base.warn_before
            ),
        )

    return replace(
        policy,
        name=account_policy_name(account),
        acknowledge=clock(policy.acknowledge, account.acknowledge),
        action_plan=clock(policy.action_plan, account.action_plan),
    )


def build_markers(markers: MarkersConfig) -> Markers:
    """The core's markers from the ``markers`` section (or its defaults), as tuples."""

    def marker_set(section: MarkerSetConfig) -> MarkerSet:
        return MarkerSet(
            subject_tags=tuple(section.subject_tags),
            body_patterns=tuple(section.body_patterns),
            imap_keywords=tuple(section.imap_keywords),
            headers=tuple(section.headers),
        )

    return Markers(
        action_plan=marker_set(markers.action_plan),
        waiting_on_client=marker_set(markers.waiting_on_client),
        courtesy=CourtesyRule(
            patterns=tuple(markers.courtesy.patterns),
            request_patterns=tuple(markers.courtesy.request_patterns),
            max_words=markers.courtesy.max_words,
        ),
    )
