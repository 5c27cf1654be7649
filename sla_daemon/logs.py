"""Logging setup: structured events on stderr, JSON under systemd, readable on a terminal.

Every event passes :func:`redact_secrets`, so a password handed to a log call by mistake
is printed as ``[redacted]``. Libraries log through the standard ``logging`` module; their
records get the same format, and only their warnings and errors are shown.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "[redacted]"
"""What a secret value is replaced with."""

SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",  # access_token, refresh_token, id_token (OAuth2)
    "credential",
    "api_key",
    "authorization",  # an HTTP Authorization header: Bearer <token>
    "bearer",
)
"""A key whose lower-cased name contains one of these holds a secret."""

_LIBRARY_LEVEL = logging.WARNING


def is_secret_key(name: object) -> bool:
    """Whether a key called ``name`` holds a secret (case-insensitive substring match)."""
    lowered = str(name).lower()
    return any(part in lowered for part in SECRET_KEY_PARTS)


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if is_secret_key(k) else _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redacted(item) for item in value)
    return value


def redact_secrets(_logger: WrappedLogger, _method_name: str, event_dict: EventDict) -> EventDict:
    """Replace the value of every secret-looking key with ``[redacted]``.

    Keys are matched at any depth: inside nested mappings and inside lists or tuples of
    mappings. The event dict passed in is not changed; a new one is returned.
    """
    return {
        key: REDACTED if is_secret_key(key) else _redacted(value)
        for key, value in event_dict.items()
    }


class _StderrHandler(logging.StreamHandler[TextIO]):
    """The handler ``configure_logging`` installs; its own class so it can be found again."""


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r} (debug, info, warning, error, critical)")
    return number


def configure_logging(*, json: bool | None = None, level: str = "info") -> None:
    """Set up structlog and the standard ``logging`` module to write to stderr.

    ``json`` chooses JSON lines (one object per event) or the coloured console format;
    by default JSON is used unless stderr is a terminal, which is what journald wants.
    ``level`` is the lowest level shown for the daemon's own events; libraries show
    warnings and above only. Calling it again replaces the previous setup.
    """
    threshold = _level_number(level)
    stream = sys.stderr
    use_json = json if json is not None else not stream.isatty()

    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    renderer: Processor
    if use_json:
        renderer = structlog.processors.JSONRenderer()
        finishing: list[Processor] = [structlog.processors.format_exc_info, renderer]
    else:
        # Plain tracebacks: with rich installed structlog would print every frame's local
        # variables, and a frame may hold a password or an access token.
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
        finishing = [renderer]

    structlog.configure(
        processors=[*shared, structlog.processors.StackInfoRenderer(), *finishing],
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        # Loggers made at import time must follow a later reconfiguration (tests, reload).
        cache_logger_on_first_use=False,
    )

    handler = _StderrHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                *shared,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finishing],
        )
    )
    root = logging.getLogger()
    _remove_handlers(root)
    root.addHandler(handler)
    # mail-parser, imapclient and friends are chatty at INFO and DEBUG.
    root.setLevel(max(_LIBRARY_LEVEL, threshold))
    # mail-parser warns about every MIME part it does not extract (about one message in
    # seven of real mail); the daemon records what matters about a message itself.
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    logging.captureWarnings(True)


def reset_logging() -> None:
    """Undo :func:`configure_logging`: structlog defaults, no stderr handler of ours."""
    _remove_handlers(logging.getLogger())
    logging.captureWarnings(False)
    structlog.reset_defaults()


def _remove_handlers(root: logging.Logger) -> None:
    for existing in list(root.handlers):
        if isinstance(existing, _StderrHandler):
            root.removeHandler(existing)
            existing.close()
