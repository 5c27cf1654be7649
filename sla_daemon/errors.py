"""The project's exception tree.

Callers decide on the class, never on the message: a ``TransientError`` is retried with
bounded backoff, a ``PermanentError`` is logged with its cause and recorded, and a
``ConfigError`` stops the process with exit status 78 (EX_CONFIG) so that systemd does
not restart-loop on a mistake only a person can fix.
"""

from __future__ import annotations

EX_CONFIG = 78
"""Exit status for a configuration problem (sysexits.h)."""
EX_DATAERR = 65
"""Exit status for a state database that cannot be used: damaged, or a newer schema."""
EX_CANTCREAT = 73
"""Exit status for a state database or directory the daemon may not open or write."""
EX_STATE_BUSY = 75
"""Exit status (EX_TEMPFAIL) for a state database another process holds: try again."""


class SlaDaemonError(Exception):
    """Base class of every error the daemon raises on purpose."""


class ConfigError(SlaDaemonError):
    """The configuration cannot be used; each entry of ``problems`` is one readable line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class TransientError(SlaDaemonError):
    """A failure that may pass by itself: network, server restart, SMTP 4xx."""

    reply_code: int | None = None
    """The server's reply code when a server answered (e.g. 451), else None."""
    refusals: dict[str, tuple[int, str]] | None = None
    """When the server refused every recipient: each one's reply code and text."""


class PermanentError(SlaDaemonError):
    """A failure that retrying will not fix: SMTP 5xx, a refused recipient."""

    reply_code: int | None = None
    """The server's reply code when a server answered (e.g. 550), else None."""
    refusals: dict[str, tuple[int, str]] | None = None
    """When the server refused every recipient: each one's reply code and text."""


class AuthenticationError(ConfigError):
    """A server refused our credentials; a person has to fix the secret."""

    def __init__(self, problem: str) -> None:
        super().__init__([problem])


class UntrustedServerError(AuthenticationError):
    """A server's TLS certificate did not verify; a person has to fix the trust (``ca_file``).

    Handled like a refused login: retrying cannot help, and no password is sent.
    """


class StateWriteError(SlaDaemonError):
    """The state database refused a write (its disk is full); nothing of it was kept."""


class StateDatabaseError(SlaDaemonError):
    """The state database cannot be used as it is; the message names the file and the fix.

    Nothing is changed on disk: the database is never deleted, moved or repaired here.
    ``exit_status`` is the sysexits status the command ends with.
    """

    exit_status = EX_DATAERR


class StateAccessError(StateDatabaseError):
    """The state database or its directory may not be opened or written (mode, mount)."""

    exit_status = EX_CANTCREAT


class StateBusyError(StateDatabaseError):
    """Another process holds the state database (another daemon); it may pass."""

    exit_status = EX_STATE_BUSY
