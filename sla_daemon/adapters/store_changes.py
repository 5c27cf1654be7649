"""The journal of changed conversations (schema 6), filled by triggers on every write."""

from __future__ import annotations

from sla_daemon.adapters.store_base import Tables


class ChangeRecords(Tables):
    """Which conversations changed since the journal was last read, and forgetting them."""

    def changed_conversations(self) -> tuple[int, list[str]]:
        """The journal's last position and the conversations noted up to it.

        Pass the position to ``forget_changes`` once they are evaluated: what is noted
        after this read stays for the next one.
        """
        upto = self._db.execute("SELECT MAX(seq) FROM changed_conversations").fetchone()[0]
        if upto is None:
            return 0, []
        rows = self._db.execute(
            "SELECT DISTINCT conversation_id FROM changed_conversations WHERE seq <= ?",
            (upto,),
        )
        return int(upto), [row[0] for row in rows]

    def forget_changes(self, upto: int) -> None:
        """Drop the journal's entries up to ``upto`` (a position ``changed_conversations`` gave)."""
        self._db.execute("DELETE FROM changed_conversations WHERE seq <= ?", (upto,))
