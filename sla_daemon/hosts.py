"""Facts about host names that decide whether a password may travel in clear."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost`` or a loopback IP literal).

    Names are not resolved: a DNS answer must not decide whether a password travels in
    clear.
    """
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def listen_address(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as a host and a port number.

    Raises ``ValueError`` with a message naming what is wrong.
    """
    host, colon, port = text.strip().rpartition(":")
    if not colon or not host:
        raise ValueError(f"expected host:port, got {text!r}")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected a port number from 1 to 65535, got {port!r}")
    return host.strip("[]"), int(port)
