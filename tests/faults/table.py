"""The fault suite's result table: one row per scenario, printed at the end of the run."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FaultRow:
    """What one scenario ended with."""

    scenario: str
    messages: str
    """Client messages in the store / delivered to the mailboxes."""
    expected: int
    delivered: int
    duplicated: int
    lost: int


@dataclass
class FaultTable:
    """The rows recorded so far in this session."""

    rows: list[FaultRow] = field(default_factory=list)

    def add(self, row: FaultRow) -> None:
        """Record a scenario's row (before its assertions, so a failure shows too)."""
        self.rows.append(row)

    def lines(self) -> list[str]:
        """The table in Markdown, header first; empty when no scenario ran."""
        if not self.rows:
            return []
        lines = [
            "| scenario | messages | notices expected | delivered | duplicated | lost |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r.scenario} | {r.messages} | {r.expected} | {r.delivered} | "
            f"{r.duplicated} | {r.lost} |"
            for r in self.rows
        ]
        return lines


TABLE = FaultTable()
"""The session's table; ``conftest.py`` hands it to the tests and prints it."""
