"""The configuration file: YAML into typed, validated settings.

Every key has a default where a sensible one exists and a comment saying what it does;
docs/configuration.md is the reference. A file that does not validate raises
``ConfigError`` with one line per problem, naming the file, the line and the key path::

    config.yaml:14: policies.standard.action_plan.within: expected a duration like 48h, ...
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from sla_daemon.config_calendars import CalendarConfig
from sla_daemon.config_checks import cross_checks
from sla_daemon.config_notices import NoticesConfig
from sla_daemon.config_oauth2 import OAuth2Config
from sla_daemon.config_reports import ReportsConfig
from sla_daemon.config_types import (
    ByteSize,
    Duration,
    SecretSource,
    Section,
    Security,
    TimeZoneName,
)
from sla_daemon.errors import ConfigError
from sla_daemon.yamlpos import KeyPath, compose_with_lines, describe_path, line_for

DEFAULT_CONFIG_PATH = Path("/etc/sla-daemon/config.yaml")
CONFIG_ENV = "SLA_DAEMON_CONFIG"


class FoldersConfig(Section):
    """Which folders of a mailbox hold received mail and the team's sent mail."""

    inbox: list[str] = ["INBOX"]  # read for client mail
    sent: list[str] = ["Sent"]  # read for the team's replies


class MailboxConfig(SecretSource):
    """One mailbox: an IMAP account, or a local Maildir/mbox standing in for one."""

    name: str  # a short label used in logs, status and the state database
    host: str | None = None  # IMAP server; leave out when `path` is given
    port: int | None = None  # default: 993 for tls, 143 otherwise
    security: Security = "tls"  # none is refused unless host is a loopback address
    ca_file: Path | None = None  # PEM certificates to trust instead of the system's store
    username: str | None = None  # IMAP login
    auth: Literal["password", "oauth2"] = "password"  # oauth2: XOAUTH2/OAUTHBEARER login
    oauth2: OAuth2Config | None = None  # where the access token comes from (auth: oauth2)
    folders: FoldersConfig = FoldersConfig()
    idle: bool = True  # use IMAP IDLE where the server offers it
    idle_renew: Duration = timedelta(minutes=25)  # re-issue IDLE this often (at most 29m)
    reconnect_max: Duration = timedelta(seconds=60)  # longest wait between IDLE reconnects
    poll_interval: Duration = timedelta(seconds=60)  # how often to look for new mail
    timeout: Duration = timedelta(seconds=30)  # socket timeout for IMAP commands
    path: Path | None = None  # a Maildir folder or a directory of mbox files instead of IMAP
    format: Literal["maildir", "mbox"] = "maildir"  # layout of `path`

    @field_validator("reconnect_max")
    @classmethod
    def _reconnect_max_in_range(cls, value: timedelta) -> timedelta:
        # Reconnects start one second apart and double up to this ceiling.
        if not timedelta(seconds=1) <= value <= timedelta(hours=1):
            raise PydanticCustomError(
                "duration", "expected a duration from 1s to 1h, got {got}", {"got": value}
            )
        return value

    @field_validator("idle_renew")
    @classmethod
    def _idle_renew_in_range(cls, value: timedelta) -> timedelta:
        # RFC 2177 lets a server log out a client that has been idle for 30 minutes.
        if not timedelta(0) < value <= timedelta(minutes=29):
            raise PydanticCustomError(
                "duration", "expected a duration above 0 and at most 29m, got {got}", {"got": value}
            )
        return value

    @property
    def effective_port(self) -> int:
        """The configured port, or the standard one for the security mode."""
        if self.port is not None:
            return self.port
        return 993 if self.security == "tls" else 143

    @property
    def sent_folders(self) -> list[str] | None:
        r"""``folders.sent`` when the file gives it, else None: find it by SPECIAL-USE \Sent.

        Gmail's ``[Gmail]/Sent Mail`` and Outlook's ``Sent Items`` are found that way
        without configuration. ``folders.sent: []`` reads no sent folder at all.
        """
        return self.folders.sent if "sent" in self.folders.model_fields_set else None


class SmtpConfig(SecretSource):
    """Where notices are sent from."""

    host: str  # SMTP server
    port: int | None = None  # default: 465 for tls, 587 for starttls, 25 for none
    security: Security = "starttls"  # none is refused unless host is a loopback address
    ca_file: Path | None = None  # PEM certificates to trust instead of the system's store
    username: str | None = None  # leave out for an unauthenticated relay
    auth: Literal["password", "oauth2"] = "password"  # oauth2: XOAUTH2 login
    oauth2: OAuth2Config | None = None  # where the access token comes from (auth: oauth2)
    timeout: Duration = timedelta(seconds=30)  # socket timeout

    @property
    def effective_port(self) -> int:
        """The configured port, or the standard one for the security mode."""
        if self.port is not None:
            return self.port
        return {"tls": 465, "starttls": 587, "none": 25}[self.security]


class TeamConfig(Section):
    """Who the team is: their mail never opens a conversation and is never auto-acked."""

    name: str = "Support"  # shown in notices
    domains: list[str] = []  # every address at these domains is the team
    addresses: list[str] = []  # further team addresses outside those domains
    from_: str = Field(alias="from")  # sender of every notice, e.g. "Acme <support@acme.example>"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ClockConfig(Section):
    """The target of one SLA clock and when to warn before it."""

    within: Duration  # the deadline, counted from the client's message
    warn_before: list[Duration] = []  # warn the owner this long before the deadline


class AcknowledgeConfig(ClockConfig):
    """The acknowledge clock."""

    within: Duration = timedelta(hours=1)
    counts_auto_ack: bool = True  # does the automatic acknowledgement stop this clock?


class ActionPlanConfig(ClockConfig):
    """The action-plan clock."""

    within: Duration = timedelta(hours=48)


class PolicyConfig(Section):
    """A set of promises; accounts name the policy they are on."""

    calendar: str = "24x7"  # 24x7, or a key of `calendars`: durations are counted on it
    acknowledge: AcknowledgeConfig = AcknowledgeConfig()
    action_plan: ActionPlanConfig = ActionPlanConfig()
    auto_ack: bool = True  # send the client an automatic acknowledgement
    re_escalate_every: Duration | None = None  # repeat a breach notice while it lasts
    escalate_after_breach: SecondLevelConfig | None = None  # a second escalation level
    follow_up_after: Duration | None = None  # quiet after the plan: owner asks if it worked
    close_after: Duration | None = None  # quiet after the plan: closed (None: never)


class SecondLevelConfig(Section):
    """Who hears of a breach that has lasted ``after`` (a director, a head of service)."""

    after: Duration  # how long after the deadline the breach goes one level up
    to: list[str] = Field(min_length=1)  # added to the owner and escalate_to from then on


class ClockOverride(Section):
    """One account's own target for a clock; what is left out comes from the policy."""

    within: Duration | None = None  # e.g. 24h for a premium client
    warn_before: list[Duration] | None = None  # replaces the policy's offsets when given


class AccountConfig(Section):
    """A client organisation."""

    name: str  # shown in notices and status
    domains: list[str] = []  # mail from these domains (and their subdomains) is this client
    addresses: list[str] = []  # further client addresses outside those domains
    policy: str = "standard"  # a key of `policies`
    owner: str  # the account manager: gets warnings and breaches
    escalate_to: list[str] = []  # also gets breaches
    acknowledge: ClockOverride | None = None  # this account's own acknowledge target
    action_plan: ClockOverride | None = None  # this account's own action-plan target
    check_in_every: Duration | None = None  # no team mail to the client: owner checks in


class MarkerSetConfig(Section):
    """How a team message says it carries a marker."""

    subject_tags: list[str] = []  # e.g. "[Action Plan]" anywhere in the subject
    body_patterns: list[str] = []  # Python regular expressions searched in the new text
    imap_keywords: list[str] = []  # e.g. "$ActionPlan" set on the message in Sent
    headers: list[str] = []  # header names whose value "yes"/"true"/"1" marks the message


class CourtesyConfig(Section):
    """A client's short thanks that is recorded but opens no new cycle (docs/sla.md)."""

    # Case-insensitive regular expressions; one must match the reply's new text.
    patterns: list[str] = [
        r"(?i)\b(thanks?|thank you|thx|cheers|much appreciated|appreciate it)\b",
        r"(?i)\b(ok|okay|great|perfect|awesome|excellent|got it|sounds good|works|worked)\b",
        r"(?i)\b(danke|vielen dank|merci|gracias|grazie|bedankt|dank je|perfekt|parfait)\b",
    ]
    # None of these may match: they turn a thank-you into a new request.
    request_patterns: list[str] = [
        r"(?i)\b(but|however|still|again|not working|doesn'?t|does not|isn'?t|won'?t|error|"
        r"fails?|failed|broken|issue|problem|please|can you|could you|need|urgent)\b",
        r"(?i)\b(aber|noch|bitte|funktioniert nicht|mais|encore|pero|todav[ií]a|ancora)\b",
    ]
    max_words: int = Field(default=12, ge=1)  # longer replies are never a mere courtesy


class MarkersConfig(Section):
    """The markers the team uses."""

    action_plan: MarkerSetConfig = MarkerSetConfig(
        subject_tags=["[Action Plan]"],
        body_patterns=[r"(?im)^\s*action plan\s*:"],
        imap_keywords=["$ActionPlan"],
        headers=["X-SLA-Action-Plan"],
    )
    waiting_on_client: MarkerSetConfig = MarkerSetConfig(imap_keywords=["$WaitingOnClient"])
    courtesy: CourtesyConfig = CourtesyConfig()


class IngestConfig(Section):
    """How mail is read."""

    backfill: Duration = timedelta(days=14)  # on first start, read back this far
    auto_ack_max_age: Duration = timedelta(hours=1)  # never auto-ack mail older than this
    max_body_bytes: ByteSize = 256 * 1024  # text kept per message for marker detection


class HttpConfig(Section):
    """The read-only HTTP listener for /metrics and /healthz (docs/operations.md)."""

    listen: str = "127.0.0.1:9464"  # host:port; [::1]:9464 for IPv6
    allow_remote: bool = False  # allow a non-loopback listen address (no authentication)


class Config(Section):
    """The whole configuration file."""

    state_dir: Path = Path("/var/lib/sla-daemon")  # the SQLite database lives here
    timezone: TimeZoneName = "UTC"  # how times are shown in notices and status
    team: TeamConfig
    mailboxes: list[MailboxConfig] = Field(min_length=1)
    smtp: SmtpConfig
    calendars: dict[str, CalendarConfig] = {}  # business calendars that policies may name
    policies: dict[str, PolicyConfig] = {"standard": PolicyConfig()}
    accounts: list[AccountConfig] = []
    default_account: str | None = None  # treat any other external human sender as this account
    markers: MarkersConfig = MarkersConfig()
    ingest: IngestConfig = IngestConfig()
    templates_dir: Path | None = None  # overrides the shipped notice templates
    notices: NoticesConfig = NoticesConfig()  # caps, batching, quiet hours, retries
    reports: ReportsConfig = ReportsConfig()  # reports e-mailed on a schedule
    http: HttpConfig | None = None  # status page, /metrics, /healthz; left out: no listener

    @property
    def poll_interval(self) -> timedelta:
        """How often the daemon runs a cycle: the shortest mailbox poll interval."""
        return min(m.poll_interval for m in self.mailboxes)


def _message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    message = str(error["msg"])
    if kind in {"duration", "size", "timezone", "clock_time"}:
        return message
    value = error.get("input")
    if kind == "literal_error" or not isinstance(value, dict | list):
        shown = repr(value)
        # A megabyte-long value must not become a megabyte-long error line.
        return f"{message}, got {shown[:200] + '...' if len(shown) > 200 else shown}"
    return message


def load_config(path: Path) -> Config:
    """Read and validate the configuration file at ``path``.

    Raises ``ConfigError`` with one ``file:line: key.path: problem`` line per problem.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration ({exc.strerror})"]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            [f"{path}:{line}: not valid UTF-8 (byte {raw[exc.start]:#04x}); save the file as UTF-8"]
        ) from None
    return parse_config(text, str(path))


def parse_config(text: str, filename: str) -> Config:
    """Validate configuration ``text``; ``filename`` is only used in messages."""
    try:
        data, lines = compose_with_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"{mark.line + 1}" if mark is not None else "1"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not allow
            line = str(text.count("\n", 0, exc.position) + 1)
        raise ConfigError([f"{filename}:{line}: not valid YAML: {problem}"]) from exc
    except RecursionError:
        raise ConfigError([f"{filename}:1: not valid YAML: nested too deeply"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{filename}:1: the file must be a mapping of keys to values"])
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc: KeyPath = tuple(error["loc"])
            problems.append(
                f"{filename}:{line_for(lines, loc)}: {describe_path(loc)}: {_message(error)}"
            )
        raise ConfigError(problems) from None
    cross = cross_checks(config)
    if cross:
        raise ConfigError(
            [
                f"{filename}:{line_for(lines, loc)}: {describe_path(loc)}: {msg}"
                for loc, msg in cross
            ]
        )
    return config


def default_config_path() -> Path:
    """``$SLA_DAEMON_CONFIG`` when set, else /etc/sla-daemon/config.yaml."""
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG_PATH
