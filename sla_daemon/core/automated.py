"""Recognise mail written by software: a verdict (what kind) and every reason for it.

Automated mail never opens or advances a conversation and never gets an auto-ack. The
detector is pure: it reads ``MessageFacts`` only (headers, sender, subject, body, content
type), so stored mail can be judged again without fetching it.

Signals are collected first (all of them, for the ledger and ``inspect``), then one kind
is chosen by precedence; see ``detect_automated``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from sla_daemon.core.model import MessageFacts

NOTICE_HEADER = "x-sla-daemon"
"""Header every notice we send carries, so that we recognise our own mail anywhere."""


class AutomatedKind(StrEnum):
    """What kind of software wrote a message."""

    OWN_NOTICE = "own_notice"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FEEDBACK_REPORT = "feedback_report"
    CHALLENGE_RESPONSE = "challenge_response"
    BULK = "bulk"
    LIST = "list"


PRECEDENCE: tuple[AutomatedKind, ...] = (
    AutomatedKind.OWN_NOTICE,
    AutomatedKind.FEEDBACK_REPORT,
    AutomatedKind.CHALLENGE_RESPONSE,
    AutomatedKind.BOUNCE,
    AutomatedKind.AUTO_REPLY,
    AutomatedKind.LIST,
    AutomatedKind.BULK,
)
"""Which kind wins when a message carries signals of several (first wins)."""


@dataclass(frozen=True)
class AutomatedVerdict:
    """The detector's answer: ``kind`` is None for mail a person wrote."""

    kind: AutomatedKind | None
    reasons: tuple[str, ...] = ()

    @property
    def is_automated(self) -> bool:
        """True when software wrote the message (list traffic included)."""
        return self.kind is not None

    def describe(self) -> str:
        """One line for logs and ``inspect``: ``"bounce: X-Failed-Recipients; ..."``."""
        if self.kind is None:
            return "not automated"
        return f"{self.kind.value}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class _Signal:
    kind: AutomatedKind
    reason: str
    weak: bool = False


_SENDER_KINDS: tuple[tuple[re.Pattern[str], AutomatedKind], ...] = (
    (
        re.compile(r"^(mailer-daemon|post[-_]?master|bounces?)([+-].*)?$", re.IGNORECASE),
        AutomatedKind.BOUNCE,
    ),
    (
        re.compile(r"^(auto[-_.]?reply|autoresponder)([+-].*)?$", re.IGNORECASE),
        AutomatedKind.AUTO_REPLY,
    ),
    (
        re.compile(r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply)([+-].*)?$", re.IGNORECASE),
        AutomatedKind.BULK,
    ),
)
_RAW_DAEMON_FROM = re.compile(r"\b(mailer-daemon|postmaster)\b", re.IGNORECASE)

_CHALLENGE_DOMAINS = ("boxbe.com", "bluebottle.com", "spamarrest.com", "mailblocks.com")
_CHALLENGE_HEADERS = ("x-bluebottle-request", "x-cr-hashedpuzzle", "x-cr-puzzleid")

# Subjects that delivery software gives its reports, matched at the start of the subject.
_BOUNCE_SUBJECT = re.compile(
    r"^\s*(undelivered mail returned to sender|delivery status notification|"
    r"mail delivery failed: returning message|returned mail: see transcript|"
    r"postmaster notify: see transcript|mail system error - returned mail|"
    r"warning: could not send message|"
    r"((undeliverable|undelivered|nondeliverable|non[- ]?delivery)( mail| message| report)?|"
    r"(permanent |temporary )?delivery (status )?(notification|report|failure|status)"
    r"( notification)?|mail delivery (failed|failure|warning|problem)|mail could not be delivered|"
    r"returned mail|mail error|failure notice|delivery has failed)\s*(:|\(|-|$))",
    re.IGNORECASE,
)
_COMPLAINT_SUBJECT = re.compile(r"^\s*complaint about message from\b", re.IGNORECASE)
# A subject that at least talks about delivery: a witness for failure text in the body.
_DELIVERY_WORD = re.compile(
    r"deliver|remis|zustell|entreg|returned|failure|error|bounce|notif|status",
    re.IGNORECASE,
)
# Failure text of delivery software. It counts only with a second witness (see below):
# a person may quote it, or write it about a parcel.
_FAILURE_TEXT = re.compile(
    r"((message|mail)\b[^.\n]{0,80}\b(could not|cannot|can not|was not|wasn't) be(en)? "
    r"delivered|could not be delivered to:|unable to deliver (your |the )?message|"
    r"delivery to the following recipients? (has )?failed|permanent fatal (delivery )?errors|"
    r"this is the mail system at host|following addresses had (permanent fatal errors|"
    r"delivery problems)|delivery has failed to these recipients)",
    re.IGNORECASE,
)
# Amazon SES forwards bounce and complaint notifications through SNS as JSON.
_SNS_NOTIFICATION = re.compile(r'"notificationType"\s*:\s*"(Bounce|Complaint)"')

# Prefixes that auto-responders put on a subject (never a person, in practice). Each
# ends in a colon or bracket so that "Out of office next week" written by a client
# does not match.
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(\[?(auto(matic)?[- ]?(reply|response|answer)|out of (the )?office( autoreply)?|"
    r"abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|absence du bureau|"
    r"respuesta autom[aá]tica|fuera de la oficina|automatisch antwoord|afwezigheidsbericht|"
    r"automatyczna odpowied[zź]|risposta automatica|resposta autom[aá]tica|"
    r"auto generated|auto-generated)\s*[:\]])",
    re.IGNORECASE,
)
_LOTUS_AUTO_SUBJECT = re.compile(r"^\s*AUTO:\s")

# Phrases that need a second witness: a client may well write "I am out of the office".
_AWAY_PHRASE = re.compile(
    r"(is out of (the )?office|am (currently )?out of (the )?office|on (annual )?leave|"
    r"on vacation|bin (derzeit |zurzeit )?nicht im b[üu]ro|abwesend|je suis absent|"
    r"estoy fuera de la oficina|ben (momenteel )?afwezig|jestem nieobecn)",
    re.IGNORECASE,
)

_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([a-z0-9/-]+)", re.IGNORECASE)
_NAMED_HEADERS: tuple[tuple[str, AutomatedKind, str], ...] = (
    ("x-failed-recipients", AutomatedKind.BOUNCE, "X-Failed-Recipients"),
    ("feedback-type", AutomatedKind.FEEDBACK_REPORT, "Feedback-Type"),
    ("x-autoreply", AutomatedKind.AUTO_REPLY, "auto-reply header (X-Autoreply)"),
    ("x-autorespond", AutomatedKind.AUTO_REPLY, "auto-reply header (X-Autorespond)"),
    (
        "x-auto-response-suppress",
        AutomatedKind.AUTO_REPLY,
        "auto-reply header (X-Auto-Response-Suppress)",
    ),
    ("x-autoreply-from", AutomatedKind.AUTO_REPLY, "auto-reply header (X-Autoreply-From)"),
    ("x-mail-autoreply", AutomatedKind.AUTO_REPLY, "auto-reply header (X-Mail-Autoreply)"),
    ("list-id", AutomatedKind.LIST, "mailing list (List-Id)"),
    ("list-unsubscribe", AutomatedKind.LIST, "mailing list (List-Unsubscribe)"),
    ("list-post", AutomatedKind.LIST, "mailing list (List-Post)"),
    # The rest of RFC 2369 and the marks of list managers that predate it (ezmlm's
    # Mailing-List, fml's X-MLServer): their own notices ("you are not a member", "loop
    # alert") often carry nothing else.
    ("list-subscribe", AutomatedKind.LIST, "mailing list (List-Subscribe)"),
    ("list-help", AutomatedKind.LIST, "mailing list (List-Help)"),
    ("list-owner", AutomatedKind.LIST, "mailing list (List-Owner)"),
    ("mailing-list", AutomatedKind.LIST, "mailing list (Mailing-List)"),
    ("x-mlserver", AutomatedKind.LIST, "mailing list manager (X-MLServer)"),
)
_PRECEDENCE_KINDS = {
    "bulk": AutomatedKind.BULK,
    "junk": AutomatedKind.BULK,
    "list": AutomatedKind.LIST,
    "auto_reply": AutomatedKind.AUTO_REPLY,
}


def detect_automated(facts: MessageFacts) -> AutomatedVerdict:
    """Tell whether software wrote ``facts``, which kind, and every signal seen.

    All signals present are collected (their reasons are the union). The kind is then
    the first of, in this order:

    own notice > feedback report > challenge-response > bounce > auto-reply > list > bulk

    Specific signals beat generic ones: an ARF report is also a ``multipart/report`` and
    often comes from a postmaster; a challenge-response service may wrap its challenge
    in a delivery report; a bounce that came back through a mailing list carries
    ``List-Id`` and ``Precedence: bulk`` but is a bounce. ``LIST`` is its own verdict:
    a person's post to a list is never auto-acknowledged, but it is not an auto-reply.

    Rules for weak evidence:

    - ``Return-Path: <>`` (the null sender) decides the kind (``BOUNCE``) only when no
      other signal is present; RFC 3834 asks auto-replies to use it too.
    - A missing sender address (a From without ``@``, such as ``<MAILER-DAEMON>``) is
      listed as a reason only alongside other evidence and never decides anything here.
    - Subject patterns count alone only as software-style prefixes ("Automatic reply:",
      "Out of Office:", "AUTO:", "Abwesenheitsnotiz:", "[Automatyczna odpowiedz]",
      delivery-report subjects such as "Undelivered Mail Returned to Sender"). Away
      phrases ("is out of the office") count only when subject and body both carry one,
      because a client may well mention being away in a real request.
    """
    # A verdict depends on the message alone: judged once per message object and kept.
    known: AutomatedVerdict | None = facts.__dict__.get("_automated_verdict")
    if known is None:
        known = _PERSON if _plainly_personal(facts) else _judge(facts)
        facts.__dict__["_automated_verdict"] = known
    return known


_PERSON = AutomatedVerdict(None, ())


def _plainly_personal(facts: MessageFacts) -> bool:
    """True when no signal can be present; False means "look at every signal".

    A cheap screen for the common case (mail a person wrote): one look each at headers,
    sender, subject and body, each at least as wide as the signals it stands for.
    """
    if facts.sender is None or facts.content_type == "multipart/report":
        return False
    if facts.headers and not _SIGNAL_HEADERS.isdisjoint(facts.first_headers):
        return False
    local, _, domain = facts.sender.email.rpartition("@")
    if _ANY_SENDER.match(local) or domain.endswith(_CHALLENGE_SUFFIXES):
        return False
    subject = facts.subject
    if _ANY_SUBJECT_PREFIX.match(subject) or _ANY_SUBJECT_PHRASE.search(_folded(subject)):
        return False
    body = facts.body_text[:4000]
    # A substring test finds the one literal the pattern needs far faster than it does.
    return '"notificationType"' not in body or _SNS_NOTIFICATION.search(body) is None


def _judge(facts: MessageFacts) -> AutomatedVerdict:
    signals = _signals(facts)
    strong = [signal for signal in signals if not signal.weak]
    deciding = strong or signals
    if not deciding:
        return AutomatedVerdict(None, ())
    present = {signal.kind for signal in deciding}
    kind = next(kind for kind in PRECEDENCE if kind in present)
    reasons = tuple(dict.fromkeys(signal.reason for signal in signals))
    if facts.sender is None:
        reasons += ("no sender address",)
    return AutomatedVerdict(kind, reasons)


# The screen's wider nets: every header a signal reads, every sender and subject pattern.
_SIGNAL_HEADERS = frozenset(
    (
        NOTICE_HEADER,
        "auto-submitted",
        "precedence",
        "return-path",
        *(name for name, _, _ in _NAMED_HEADERS),
        *_CHALLENGE_HEADERS,
    )
)
# Each challenge domain and its subdomains ("boxbe.com" ends with itself).
_CHALLENGE_SUFFIXES = _CHALLENGE_DOMAINS + tuple("." + d for d in _CHALLENGE_DOMAINS)
_ANY_SENDER = re.compile(
    "|".join(f"(?:{pattern.pattern})" for pattern, _ in _SENDER_KINDS), re.IGNORECASE
)
# The prefix patterns start with ``^`` (the start of the subject): one match at its start
# tries them all. An away phrase or a word about delivery (a witness for body text) may
# be anywhere, and a case-blind search for them tries every alternative at every
# position (about 7 µs a subject); the same patterns searched case-sensitively in the
# folded subject take a quarter of that.
_ANY_SUBJECT_PREFIX = re.compile(
    "|".join(
        f"(?:{p.pattern})"
        for p in (_COMPLAINT_SUBJECT, _BOUNCE_SUBJECT, _AUTO_REPLY_SUBJECT, _LOTUS_AUTO_SUBJECT)
    ),
    re.IGNORECASE,
)
_ANY_SUBJECT_PHRASE = re.compile(f"(?:{_AWAY_PHRASE.pattern})|(?:{_DELIVERY_WORD.pattern})")
# Letters that ``re.IGNORECASE`` takes for a pattern's ``i`` or ``s`` but ``str.lower``
# does not turn into them (U+0130 it turns into two characters): folded first, so that
# the screen is never narrower than the case-blind patterns it stands for.
_IGNORECASE_EXTRAS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s"})


def _folded(text: str) -> str:
    """``text`` in lower case, as ``re.IGNORECASE`` compares the patterns' letters."""
    return text.translate(_IGNORECASE_EXTRAS).lower() if not text.isascii() else text.lower()


def _signals(facts: MessageFacts) -> list[_Signal]:
    found: list[_Signal] = []
    if facts.first_headers.get(NOTICE_HEADER) is not None:
        found.append(_Signal(AutomatedKind.OWN_NOTICE, "our own notice (X-SLA-Daemon)"))
    found += _header_signals(facts)
    found += _report_signals(facts)
    found += _sender_signals(facts)
    found += _subject_signals(facts)
    found += _body_signals(facts, witnessed=bool(found) or facts.sender is None)
    return_path = facts.first_headers.get("return-path")
    if return_path is not None and return_path.strip() in {"<>", ""}:
        found.append(_Signal(AutomatedKind.BOUNCE, "null return path (Return-Path: <>)", weak=True))
    return found


def _header_signals(facts: MessageFacts) -> list[_Signal]:
    found: list[_Signal] = []
    auto_submitted = _value(facts, "auto-submitted")
    if auto_submitted and not auto_submitted.startswith("no"):
        found.append(_Signal(AutomatedKind.AUTO_REPLY, f"Auto-Submitted: {auto_submitted}"))
    precedence = _value(facts, "precedence")
    if precedence in _PRECEDENCE_KINDS:
        found.append(_Signal(_PRECEDENCE_KINDS[precedence], f"Precedence: {precedence}"))
    for name, kind, reason in _NAMED_HEADERS:
        if facts.first_headers.get(name) is not None:
            found.append(_Signal(kind, reason))
    for name in _CHALLENGE_HEADERS:
        if facts.first_headers.get(name) is not None:
            found.append(_Signal(AutomatedKind.CHALLENGE_RESPONSE, f"challenge header ({name})"))
    return found


def _report_signals(facts: MessageFacts) -> list[_Signal]:
    """``multipart/report`` (RFC 6522), told apart by its report-type parameter.

    The parser keeps only the bare content type, so the report-type comes from the raw
    ``Content-Type`` header kept among the selected headers.
    """
    if facts.content_type != "multipart/report":
        return []
    match = _REPORT_TYPE.search(facts.first_headers.get("content-type") or "")
    report_type = match.group(1).lower() if match else ""
    if report_type == "feedback-report":
        return [_Signal(AutomatedKind.FEEDBACK_REPORT, "multipart/report (feedback report)")]
    if report_type == "disposition-notification":
        return [_Signal(AutomatedKind.AUTO_REPLY, "multipart/report (read receipt)")]
    if report_type == "delivery-status":
        return [_Signal(AutomatedKind.BOUNCE, "multipart/report (delivery status)")]
    return [_Signal(AutomatedKind.BOUNCE, "multipart/report")]


def _sender_signals(facts: MessageFacts) -> list[_Signal]:
    if facts.sender is None:
        raw_from = facts.first_headers.get("from") or ""
        if _RAW_DAEMON_FROM.search(raw_from):
            return [_Signal(AutomatedKind.BOUNCE, f"mail system sender ({raw_from.strip()})")]
        return []
    found: list[_Signal] = []
    domain = facts.sender.domain
    if any(domain == d or domain.endswith("." + d) for d in _CHALLENGE_DOMAINS):
        found.append(
            _Signal(AutomatedKind.CHALLENGE_RESPONSE, f"challenge-response service ({domain})")
        )
    local = facts.sender.local_part
    for pattern, kind in _SENDER_KINDS:
        if pattern.match(local):
            found.append(_Signal(kind, f"automated sender ({facts.sender.email})"))
            break
    return found


def _subject_signals(facts: MessageFacts) -> list[_Signal]:
    subject = facts.subject
    if _COMPLAINT_SUBJECT.match(subject):
        return [_Signal(AutomatedKind.FEEDBACK_REPORT, f"complaint subject ({_short(subject)})")]
    if _BOUNCE_SUBJECT.match(subject):
        return [_Signal(AutomatedKind.BOUNCE, f"delivery report subject ({_short(subject)})")]
    if _AUTO_REPLY_SUBJECT.match(subject) or _LOTUS_AUTO_SUBJECT.match(subject):
        return [_Signal(AutomatedKind.AUTO_REPLY, f"auto-reply subject ({_short(subject)})")]
    if _AWAY_PHRASE.search(subject) and _AWAY_PHRASE.search(facts.body_text[:2000]):
        return [_Signal(AutomatedKind.AUTO_REPLY, "away notice in subject and body")]
    return []


def _body_signals(facts: MessageFacts, *, witnessed: bool) -> list[_Signal]:
    """Delivery-failure text, counted only when something else already looks automated.

    The second witness is another signal, a missing sender address, or a subject that
    talks about delivery ("Mail Error", "... non remis").
    """
    head = facts.body_text[:4000]
    sns = _SNS_NOTIFICATION.search(head)
    if sns is not None:
        kind = AutomatedKind.BOUNCE if sns.group(1) == "Bounce" else AutomatedKind.FEEDBACK_REPORT
        return [_Signal(kind, f"SES {sns.group(1).lower()} notification")]
    if not (witnessed or _DELIVERY_WORD.search(facts.subject)):
        return []
    if _FAILURE_TEXT.search(head):
        return [_Signal(AutomatedKind.BOUNCE, "delivery failure text in body")]
    return []


def _value(facts: MessageFacts, name: str) -> str:
    return (facts.first_headers.get(name) or "").strip().lower()


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
