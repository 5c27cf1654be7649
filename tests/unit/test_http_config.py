"""The ``http`` section: off by default, loopback unless a remote address is allowed."""

from __future__ import annotations

from sla_daemon.config import parse_config
from tests.unit.test_config import VALID, _problems


def test_http_is_off_unless_configured_and_defaults_to_loopback() -> None:
    """Without ``http`` there is no listener; ``http: {}`` listens on 127.0.0.1:9464."""
    assert parse_config(VALID, "config.yaml").http is None
    config = parse_config(VALID + "http: {}\n", "config.yaml")
    assert config.http is not None and config.http.listen == "127.0.0.1:9464"


def test_a_remote_listen_address_must_be_allowed_explicitly() -> None:
    """0.0.0.0 is refused with the key named, and accepted with ``allow_remote: true``."""
    remote = VALID + "http:\n  listen: 0.0.0.0:9464\n"
    problems = _problems(remote)
    assert len(problems) == 1 and "http.listen" in problems[0] and "allow_remote" in problems[0]
    allowed = parse_config(remote + "  allow_remote: true\n", "config.yaml")
    assert allowed.http is not None and allowed.http.allow_remote


def test_a_listen_address_without_a_valid_port_is_refused() -> None:
    """``localhost`` alone or port 70000 is a problem naming ``http.listen``."""
    for listen in ("localhost", "127.0.0.1:70000", "[::1]:x"):
        problems = _problems(VALID + f"http:\n  listen: '{listen}'\n")
        assert len(problems) == 1 and "http.listen" in problems[0], listen
    ipv6 = parse_config(VALID + "http:\n  listen: '[::1]:9464'\n", "config.yaml")
    assert ipv6.http is not None
