"""How ``explain`` and ``status --json`` show a conversation's ledger."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Any

from sla_daemon.core.ledger import ClockLedger, Ledger, Note, Segment, Step
from sla_daemon.core.model import ConversationStatus
from sla_daemon.units import readable_duration


def _span(value: timedelta) -> str:
    """A duration in hours and minutes, as targets are written (``48h``, ``1h30m``)."""
    minutes = int(value.total_seconds()) // 60
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes or not hours else "")


def _seconds(value: timedelta | None) -> int | None:
    return int(value.total_seconds()) if value is not None else None


def _segment_dict(segment: Segment) -> dict[str, Any]:
    return {
        "step": segment.step.value,
        "at": segment.at.isoformat(),
        "message_id": segment.message_id,
        "from": segment.sender,
        "reason": segment.reason,
        "notice_key": segment.notice_key,
    }


def _note_dict(note: Note) -> dict[str, Any]:
    return {
        "at": note.at.isoformat(),
        "message_id": note.message_id,
        "from": note.sender,
        "reason": note.reason,
    }


def _clock_dict(clock: ClockLedger) -> dict[str, Any]:
    return {
        "clock": clock.clock.value,
        "calendar": clock.calendar,
        "within_seconds": _seconds(clock.within),
        "counted_seconds": _seconds(clock.counted),
        "paused_seconds": _seconds(clock.paused),
        "due_at": clock.due_at.isoformat(),
        "stopped_at": clock.stopped_at.isoformat() if clock.stopped_at else None,
        "breached": clock.breached,
        "late_seconds": _seconds(clock.late_by),
        "segments": [_segment_dict(s) for s in clock.segments],
    }


def ledger_dict(ledger: Ledger | None) -> dict[str, Any] | None:
    """The ledger as JSON-ready values: ISO 8601 times with offset, durations in seconds."""
    if ledger is None:
        return None
    return {
        "as_of": ledger.as_of.isoformat(),
        "cycles": [
            {
                "cycle": cycle.number,
                "opening_message_id": cycle.opening_message_id,
                "opened_at": cycle.opened_at.isoformat(),
                "clocks": [_clock_dict(c) for c in cycle.clocks],
                "courtesies": [_note_dict(n) for n in cycle.courtesies],
            }
            for cycle in ledger.cycles
        ],
        "ignored": [_note_dict(n) for n in ledger.ignored],
    }


class _Times:
    """Local times for people: the date only when it differs from the previous one."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self.last: datetime | None = None

    def __call__(self, value: datetime, *, full: bool = False) -> str:
        local = value.astimezone(self.zone)
        same_day = self.last is not None and self.last.date() == local.date()
        self.last = local
        return local.strftime("%H:%M" if same_day and not full else "%a %d %b %H:%M")


def _cause(segment: Segment, *, reason: bool = True) -> str:
    if segment.message_id is None:
        return f" ({segment.reason}, notice {segment.notice_key})"
    who = f" by {segment.sender}" if segment.sender else ""
    return f"{who} <{segment.message_id}>" + (f" ({segment.reason})" if reason else "")


def _outcome(clock: ClockLedger, as_of: datetime) -> str:
    if clock.late_by is not None:
        late = readable_duration(clock.late_by)
        return f"LATE by {late}" if clock.stopped_at else f"BREACHED, running {late} late"
    if clock.stopped_at is not None:
        return "met"
    if clock.is_paused:
        return "paused, waiting on the client"
    return f"running, due in {readable_duration(clock.due_at - as_of)}"


def _clock_lines(clock: ClockLedger, as_of: datetime, times: _Times) -> list[str]:
    name = clock.clock.value.ljust(12)
    pad = " " * 13
    steps = []
    for segment in clock.segments:
        if segment.step is Step.STARTED:
            steps.append(f"started {times(segment.at, full=True)}{_cause(segment, reason=False)}")
        elif segment.step is Step.STOPPED:
            steps.append(f"stopped {times(segment.at)}{_cause(segment)}")
    target = f"{_span(clock.within)} on {clock.calendar}"
    lines = [
        f"{name} {'; '.join(steps)} — due {times(clock.due_at)} ({target}): "
        + _outcome(clock, as_of)
    ]
    paused = [s for s in clock.segments if s.step in (Step.PAUSED, Step.RESUMED)]
    for index, segment in enumerate(paused):
        if segment.step is Step.RESUMED:
            continue
        following = paused[index + 1] if index + 1 < len(paused) else None
        until = following.at if following else max(as_of, segment.at)
        line = f"{pad}paused {times(segment.at, full=True)}{_cause(segment)} for "
        line += readable_duration(until - segment.at)
        if following is not None:
            line += f"; resumed {times(following.at)}{_cause(following)}"
        else:
            line += " so far (still paused)"
        lines.append(line)
    why = f"{pad}why: {target}, counted from the start"
    if clock.paused:
        why += f", plus {_span(clock.paused)} paused"
    why += f"; {_span(clock.counted)} counted"
    lines.append(why + (" so far" if clock.stopped_at is None else ""))
    return lines


def explain_text(status: ConversationStatus, zone: tzinfo) -> str:
    """A conversation's ledger for a person, in the configured time zone ``zone``."""
    ledger = status.ledger
    as_of = ledger.as_of if ledger is not None else None
    times = _Times(zone)
    lines = [
        f"Conversation {status.id}: {status.subject or '(no subject)'}",
        f"account {status.account or '-'}, client {status.client or '-'}, "
        f"state {status.state.value}, cycle {status.cycle}"
        + (
            f" (as of {times(as_of, full=True)} {as_of.astimezone(zone).tzname()})" if as_of else ""
        ),
    ]
    if ledger is None or as_of is None:
        return "\n".join(lines)
    for cycle in ledger.cycles:
        lines.append("")
        lines.append(f"Cycle {cycle.number}, opened by <{cycle.opening_message_id}>")
        for clock in cycle.clocks:
            lines += ["  " + line for line in _clock_lines(clock, as_of, times)]
        for note in cycle.courtesies:
            lines.append(f"  courtesy     {times(note.at, full=True)}{_note(note)}")
    if not ledger.cycles:
        lines.append("No client request: no clock runs.")
    if ledger.ignored:
        lines.append("")
        lines.append("Ignored (open nothing, move no clock):")
        for note in ledger.ignored:
            lines.append(f"  {times(note.at, full=True)}{_note(note)}")
    return "\n".join(line.rstrip() for line in lines)


def _note(note: Note) -> str:
    who = f" from {note.sender}" if note.sender else ""
    return f"{who} <{note.message_id}>: {note.reason}"
