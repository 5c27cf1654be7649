"""The TLS client context every connection to a mail server uses."""

from __future__ import annotations

import ssl
from pathlib import Path

from sla_daemon.errors import ConfigError


def client_context(ca_file: Path | None, *, key: str) -> ssl.SSLContext:
    """A context that verifies the server's certificate and host name.

    Against the system's trust store, or only against the PEM certificates in
    ``ca_file`` (a private CA, or a self-signed server certificate itself). ``key`` names
    the configuration key in the error when ``ca_file`` cannot be used.
    """
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except ssl.SSLError as exc:  # an OSError too, so it comes first
        raise ConfigError(
            [f"{key}: {ca_file} holds no usable PEM certificate ({exc.reason or exc})"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"{key}: cannot read {ca_file} ({exc.strerror})"]) from None
