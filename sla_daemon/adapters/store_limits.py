"""The outbox queries behind the limits on automatic acknowledgements."""

from __future__ import annotations

from datetime import datetime

from sla_daemon.adapters.store_base import Tables, iso_utc
from sla_daemon.core.model import NoticeKind


class AutoAckLimitRecords(Tables):
    """How many auto-acks went, or are about to go, to one address."""

    def auto_acks_to(self, address: str, since: datetime, until: datetime) -> int:
        """Auto-acks to ``address`` (any case) decided in ``(since, until]``, pending or sent.

        Suppressed (and permanently failed) ones are not counted: they never reached the
        address. Recipients are stored as a JSON list, hence ``json_each``.
        """
        row = self._db.execute(
            "SELECT COUNT(*) FROM outbox WHERE kind = ? AND status IN ('pending', 'sent') "
            "AND decided_at > ? AND decided_at <= ? AND EXISTS ("
            "SELECT 1 FROM json_each(outbox.recipients) WHERE lower(json_each.value) = ?)",
            (NoticeKind.AUTO_ACK.value, iso_utc(since), iso_utc(until), address.lower()),
        ).fetchone()
        return int(row[0])
