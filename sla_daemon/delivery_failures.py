"""A failed send as delivery records it: the reply, whether it is final, and its log lines.

A single notice and a batch mail fail by the same rules and are logged with the same
events (``notice.retry_scheduled``, ``notice.delivery_failed``), one per delivery; a
delivery carried by a batch mail names the batch.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import structlog

from sla_daemon.adapters.store_deliveries import Delivery
from sla_daemon.errors import PermanentError, TransientError

log = structlog.get_logger(__name__)


class SendFailure(NamedTuple):
    """What a failed send means for one recipient."""

    code: int | None
    """The server's reply code, if it gave one."""
    error: str
    """The reply or the connection problem, as recorded."""
    permanent: bool
    """True when a retry cannot help (5xx): the delivery fails now."""


def failure_of(exc: TransientError | PermanentError, recipient: str) -> SendFailure:
    """The failure of a send that raised, for ``recipient``."""
    if exc.refusals is not None and recipient in exc.refusals:
        code, text = exc.refusals[recipient]
        return refusal(recipient, code, text)
    return SendFailure(exc.reply_code, str(exc), isinstance(exc, PermanentError))


def refusal(recipient: str, code: int, text: str) -> SendFailure:
    """The failure of a send whose server refused ``recipient``."""
    return SendFailure(code, f"{recipient} refused: {code} {text}", not 400 <= code < 500)


def _about(delivery: Delivery, batch: str | None) -> dict[str, str]:
    """The fields that name the delivery (and the batch mail that carried it, if any)."""
    about = {"key": delivery.key, "kind": delivery.kind.value, "recipient": delivery.recipient}
    if batch is not None:
        about["batch"] = batch
    return about


def log_delivery_failed(
    delivery: Delivery, failure: SendFailure, attempts: int, *, batch: str | None = None
) -> None:
    """Log ``delivery`` failed for good after ``attempts`` (in batch mail ``batch``, if any)."""
    log.error(
        "notice.delivery_failed",
        **_about(delivery, batch),
        attempts=attempts,
        code=failure.code,
        error=failure.error,
        reason="permanent failure" if failure.permanent else "still failing after give_up_after",
    )


def log_retry_scheduled(
    delivery: Delivery,
    failure: SendFailure,
    attempt: int,
    next_at: datetime,
    *,
    batch: str | None = None,
) -> None:
    """Log failed ``attempt`` of ``delivery`` and when the next one is (``batch``: its mail)."""
    log.warning(
        "notice.retry_scheduled",
        **_about(delivery, batch),
        attempt=attempt,
        code=failure.code,
        error=failure.error,
        next_attempt_at=next_at.isoformat(),
    )
