"""The domain's plain data: messages, rules, conversation status and decisions.

Everything here is an immutable dataclass built from the standard library only, so the
core can be exercised with plain values and a frozen clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from sla_daemon.core.calendar import Calendar, calendar_named

if TYPE_CHECKING:
    from sla_daemon.core.ledger import Ledger


class FolderKind(StrEnum):
    """Whether a folder holds received mail or the team's sent mail."""

    INBOX = "inbox"
    SENT = "sent"


@dataclass(frozen=True)
class Address:
    """One mail address; ``email`` is lower-cased so that comparisons are exact."""

    email: str
    name: str = ""

    @property
    def domain(self) -> str:
        """The part after the last ``@`` (empty when there is none)."""
        return self.email.rpartition("@")[2]

    @property
    def local_part(self) -> str:
        """The part before the last ``@``."""
        return self.email.rpartition("@")[0]


@dataclass(frozen=True)
class MessageFacts:
    """What the daemon knows about one message, independent of how it was fetched.

    ``arrived_at`` is the server's INTERNALDATE for IMAP (the Date header only as a
    fallback); ``headers`` keeps the lower-cased header fields that classification needs,
    so that a config change can reclassify stored mail without fetching it again.
    """

    message_id: str
    arrived_at: datetime
    subject: str = ""
    sender: Address | None = None
    reply_to: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    date: datetime | None = None
    headers: tuple[tuple[str, str], ...] = ()
    keywords: tuple[str, ...] = ()
    body_text: str = ""
    content_type: str = "text/plain"
    mailbox: str = ""
    folder: str = ""
    folder_kind: FolderKind = FolderKind.INBOX
    synthetic_id: bool = False
    seen_at: datetime | None = None
    """When the daemon first stored the message (filled by the store, not the parser)."""

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or None."""
        return self.first_headers.get(name.lower())

    @property
    def first_headers(self) -> dict[str, str]:
        """Each header's first value by lower-case name (built once: the engine asks ~20)."""
        # Kept in the instance's __dict__ by hand: functools.cached_property takes a lock
        # shared by every instance, which costs more than building this small dict.
        known: dict[str, str] | None = self.__dict__.get("_first_headers")
        if known is None:
            known = {}
            for key, value in self.headers:
                known.setdefault(key, value)
            self.__dict__["_first_headers"] = known
        return known

    @property
    def recipients(self) -> tuple[Address, ...]:
        """Everyone the message was addressed to (To and Cc)."""
        return self.to + self.cc


class Role(StrEnum):
    """Who wrote a message, as far as the SLA is concerned."""

    CLIENT = "client"
    TEAM = "team"
    AUTOMATED = "automated"
    OTHER = "other"


class ClockName(StrEnum):
    """The SLA clocks of a cycle."""

    ACKNOWLEDGE = "acknowledge"
    ACTION_PLAN = "action_plan"


class NoticeKind(StrEnum):
    """The kinds of mail the daemon sends; each has a template pair."""

    AUTO_ACK = "auto_ack"
    WARNING = "warning"
    BREACH = "breach"
    DIGEST = "digest"
    FOLLOW_UP = "follow_up"
    CHECK_IN = "check_in"
    BRIEFING = "briefing"
    BATCH = "batch"
    WEEKLY_REPORT = "weekly_report"


class ConversationState(StrEnum):
    """Where a conversation stands, as shown by ``status``."""

    AWAITING_ACK = "awaiting_ack"
    AWAITING_ACTION_PLAN = "awaiting_action_plan"
    ACTION_PLAN_SENT = "action_plan_sent"
    WAITING_ON_CLIENT = "waiting_on_client"
    CLOSED = "closed"


class AcknowledgedBy(StrEnum):
    """What stopped the acknowledge clock."""

    AUTO = "auto"
    HUMAN = "human"


@dataclass(frozen=True)
class MarkerSet:
    """Ways a team message can carry a marker (action plan, waiting on client)."""

    subject_tags: tuple[str, ...] = ()
    body_patterns: tuple[str, ...] = ()
    imap_keywords: tuple[str, ...] = ()
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class CourtesyRule:
    """When a client's short reply is only a courtesy ("thanks!") that opens nothing.

    A reply is a courtesy when its new text (quotes and signature removed) has at most
    ``max_words`` words, no question mark, matches one of ``patterns`` and none of
    ``request_patterns`` (words that turn it into a new request: "but", "still", ...).
    Patterns are case-insensitive regular expressions.
    """

    patterns: tuple[str, ...] = ()
    request_patterns: tuple[str, ...] = ()
    max_words: int = 12


@dataclass(frozen=True)
class Markers:
    """All markers the classifier looks for."""

    action_plan: MarkerSet = MarkerSet()
    waiting_on_client: MarkerSet = MarkerSet()
    courtesy: CourtesyRule = CourtesyRule()


@dataclass(frozen=True)
class ClockPolicy:
    """Target and warning offsets of one clock."""

    within: timedelta
    warn_before: tuple[timedelta, ...] = ()


@dataclass(frozen=True)
class SecondLevel:
    """A breach that lasts ``after`` past its deadline also goes to ``to``."""

    after: timedelta
    to: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    """The promises made to the accounts that use this policy."""

    name: str
    acknowledge: ClockPolicy
    action_plan: ClockPolicy
    auto_ack: bool = True
    counts_auto_ack: bool = True
    re_escalate_every: timedelta | None = None
    calendar: str = "24x7"
    second_level: SecondLevel | None = None
    follow_up_after: timedelta | None = None
    """Quiet time after the action plan before the owner is reminded to follow up."""
    close_after: timedelta | None = None
    """Quiet time after the action plan after which the conversation is closed."""


@dataclass(frozen=True)
class Account:
    """A client organisation: who they are and who answers for them."""

    name: str
    policy: str
    owner: str
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    escalate_to: tuple[str, ...] = ()
    check_in_every: timedelta | None = None
    """No team message to this client for this long: remind the owner to check in."""


@dataclass(frozen=True)
class Team:
    """Who counts as the team, and the address notices come from."""

    name: str
    from_address: Address
    domains: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressLookup:
    """The configured addresses and domains, lower-cased, for lookups by address."""

    team_addresses: frozenset[str]
    team_domains: frozenset[str]
    account_by_address: dict[str, Account]
    """Each address to the first account that names it."""
    account_by_domain: dict[str, tuple[int, Account]]
    """Each domain to the first account that names it, with that account's position."""
    memo: dict[object, object] = field(default_factory=dict, compare=False, repr=False)
    """What ``core.classify`` already worked out per address under this configuration;
    a new configuration builds new ``Rules`` and so starts with an empty memo."""

    @classmethod
    def of(cls, team: Team, accounts: tuple[Account, ...]) -> AddressLookup:
        """The lookup of ``team`` and ``accounts`` (earlier accounts win, as configured)."""
        by_address: dict[str, Account] = {}
        by_domain: dict[str, tuple[int, Account]] = {}
        for position, account in enumerate(accounts):
            for address in account.addresses:
                by_address.setdefault(address.lower(), account)
            for domain in account.domains:
                by_domain.setdefault(domain.lower(), (position, account))
        return cls(
            frozenset(a.lower() for a in team.addresses),
            frozenset(d.lower() for d in team.domains),
            by_address,
            by_domain,
        )


@dataclass(frozen=True)
class Rules:
    """Everything the core needs from the configuration, as plain data."""

    team: Team
    accounts: tuple[Account, ...]
    policies: dict[str, Policy]
    markers: Markers = Markers()
    auto_ack_max_age: timedelta = timedelta(hours=1)
    default_account: str | None = None
    auto_ack_per_sender_per_day: int = 3  # 0: no auto-acks at all (see auto_ack_limits)
    # Business calendars by name; ``24x7`` is always available without an entry.
    calendars: dict[str, Calendar] = field(default_factory=dict)

    def policy_for(self, account: Account) -> Policy:
        """Return the account's policy (config validation guarantees it exists)."""
        return self.policies[account.policy]

    def calendar_for(self, policy: Policy) -> Calendar:
        """Return the calendar the policy names (config validation guarantees it exists)."""
        return calendar_named(policy.calendar, self.calendars)

    @cached_property
    def address_lookup(self) -> AddressLookup:
        """Team and account addresses and domains, built once: classify asks per message."""
        return AddressLookup.of(self.team, self.accounts)

    def account_named(self, name: str) -> Account | None:
        """Return the account called ``name``, if any."""
        for account in self.accounts:
            if account.name == name:
                return account
        return None


@dataclass(frozen=True)
class SentNotice:
    """A notice the outbox has already decided on (sent, or suppressed with a reason)."""

    key: str
    kind: NoticeKind
    decided_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class ClockStatus:
    """One clock of the current cycle, as of the evaluation time."""

    name: ClockName
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None
    breached: bool


@dataclass(frozen=True)
class Decision:
    """Something the engine wants done: a notice to send, or to suppress with a reason.

    ``key`` is deterministic (cycle, clock, level, repetition; the cycle is named by the
    Message-ID of the client message that opened it, which stays the same when two
    conversations turn out to be one), so the same decision taken again in a later pass
    is recognised by the outbox and never repeated. ``reminder`` counts the breach
    notices of the same clock and cycle already sent before this one.
    """

    key: str
    kind: NoticeKind
    conversation_id: str
    cycle: int
    recipients: tuple[str, ...]
    clock: ClockName | None = None
    level: str = ""
    repetition: int = 0
    due_at: datetime | None = None
    trigger_message_id: str | None = None
    suppressed_reason: str | None = None
    reminder: int = 0
    pre_existing: bool = False
    """A breach that was already past due when the daemon first saw the opening message
    (a first start, a newly added mailbox): reported in a summary, not on its own."""
    quiet_since: datetime | None = None
    """Follow-ups and check-ins: when the quiet period they report on began."""


@dataclass(frozen=True)
class ConversationStatus:
    """Where one conversation stands, with every figure ``status`` shows."""

    id: str
    account: str | None
    subject: str
    client: str | None
    state: ConversationState
    opened_at: datetime | None
    cycle: int
    acknowledged_at: datetime | None
    acknowledged_by: AcknowledgedBy | None
    first_human_response_at: datetime | None
    action_plan_at: datetime | None
    acknowledge_due: datetime | None
    action_plan_due: datetime | None
    breaches: tuple[ClockName, ...]
    message_ids: tuple[str, ...]
    opening_message_id: str | None = None
    clocks: tuple[ClockStatus, ...] = ()
    ledger: Ledger | None = field(default=None, compare=False)
    """Why each clock stands where it stands (``core.ledger``), set by the engine; an
    explanation, so two statuses that differ only in it are equal."""


class Headline(NamedTuple):
    """The few figures of a status that the metrics and the check-ins count by.

    A named tuple: a start builds one per stored conversation, and a tuple is made
    several times faster than a frozen dataclass.
    """

    cycle: int
    state: ConversationState
    account: str | None
    opened_at: datetime | None
    breaches: tuple[ClockName, ...]


@dataclass(frozen=True)
class Evaluation:
    """The engine's answer for one conversation at one instant."""

    status: ConversationStatus
    decisions: tuple[Decision, ...] = field(default=())
    next_check_at: datetime | None = None
    """The next instant at which the decisions can change without new mail (a warning
    offset, a due time, a re-escalation), so the runner can wake for it."""

    @property
    def headline(self) -> Headline:
        """The status's headline (an evaluation kept from a summary has it without one)."""
        status = self.status
        return Headline(
            status.cycle, status.state, status.account, status.opened_at, status.breaches
        )
