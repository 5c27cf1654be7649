"""The systemd notify protocol (sd_notify(3)) over ``$NOTIFY_SOCKET``, without libsystemd.

With ``Type=notify`` systemd passes the path of a datagram socket in ``NOTIFY_SOCKET``;
the service sends newline-separated ``KEY=VALUE`` lines to it: ``READY=1`` once it does
its job, ``STATUS=...`` to say what it is doing (``systemctl status`` shows it),
``WATCHDOG=1`` as a sign of life when ``WatchdogSec=`` is set (systemd passes the period
in ``WATCHDOG_USEC``), ``RELOADING=1`` / ``STOPPING=1`` around a reload or a stop.
Outside systemd (no ``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from datetime import timedelta

import structlog

log = structlog.get_logger(__name__)

_STATUS_LIMIT = 200  # systemctl shows one line; a long status is cut, never split


def _socket_address(value: str) -> str | bytes:
    """A path, or an abstract socket name written with a leading ``@`` (Linux)."""
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    return value


class SystemdNotifier:
    """Sends notify messages to the service manager, when there is one.

    A failed send is logged once and never raised: a lost status line must not stop the
    daemon, and systemd notices a missing ``READY=1`` or ``WATCHDOG=1`` on its own.
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self._address = _socket_address(env["NOTIFY_SOCKET"]) if env.get("NOTIFY_SOCKET") else None
        self.watchdog_interval = _watchdog_interval(env)
        """How often systemd expects ``WATCHDOG=1`` (``WatchdogSec=``), or None."""
        self._warned = False

    @property
    def enabled(self) -> bool:
        """Whether a service manager listens (``NOTIFY_SOCKET`` is set)."""
        return self._address is not None

    def ready(self, status: str) -> None:
        """Tell systemd the service is up (``READY=1``), with what it is doing."""
        self._send("READY=1", f"STATUS={_one_line(status)}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        """Say what the service is doing; ``systemctl status`` shows the line."""
        self._send(f"STATUS={_one_line(status)}")

    def watchdog(self) -> None:
        """A sign of life from the main loop; only sent while the loop is healthy."""
        self._send("WATCHDOG=1")

    def reloading(self) -> None:
        """The configuration is being re-read (``ready`` follows when it is done)."""
        self._send("RELOADING=1", "STATUS=reloading the configuration")

    def stopping(self) -> None:
        """The service is shutting down."""
        self._send("STOPPING=1", "STATUS=stopping")

    def _send(self, *lines: str) -> None:
        if self._address is None:
            return
        payload = "\n".join(lines).encode("utf-8", "replace")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.connect(self._address)
                sock.sendall(payload)
        except OSError as exc:
            if not self._warned:
                log.warning("systemd.notify_failed", error=str(exc))
                self._warned = True


def _one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _STATUS_LIMIT else flat[: _STATUS_LIMIT - 1] + "…"


def _watchdog_interval(env: Mapping[str, str]) -> timedelta | None:
    """``WATCHDOG_USEC`` as a duration, when it is meant for this process."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid is not None and pid.isdigit() and int(pid) != os.getpid():
        return None  # set for another process (a parent that exec'd us without it)
    return timedelta(microseconds=int(usec))
