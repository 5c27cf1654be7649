"""/metrics and /healthz over a real socket, from a daemon on real IMAP and SMTP servers."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sla_daemon.app import build_http_listener, build_notifier, build_service
from sla_daemon.clock import SystemClock
from sla_daemon.config import load_config
from sla_daemon.daemon import Daemon
from sla_daemon.metrics import DaemonMetrics
from tests.e2e.test_first_run import OWNER, _mail
from tests.servers.dovecot import DovecotServer
from tests.servers.smtp_sink import SmtpSink

WAIT_LIMIT = 90.0
"""How long to wait for the daemon to get somewhere before the test fails (not a timing
assertion: the condition is polled, and only a daemon that never gets there fails)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Straight to the listener on loopback, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[int, str]:
    try:
        with _OPENER.open(url, timeout=10) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except urllib.error.URLError as error:  # not listening (yet, or any more)
        return 0, str(error.reason)


def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(base + "/metrics")
    if status != 200:
        return {}
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_LIMIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the daemon never got there: {what}")
        time.sleep(0.2)


def _config(tmp_path: Path, server: DovecotServer, sink: SmtpSink, port: int) -> Path:
    (tmp_path / "imap-password").write_text("metrics-pw")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""\
state_dir: {tmp_path / "state"}
team:
  domains: [acme.example]
  from: "Acme Support <support@acme.example>"
mailboxes:
  - name: support
    host: {server.host}
    port: {server.port}
    security: none
    username: metrics
    password_file: {tmp_path / "imap-password"}
    poll_interval: 1s
smtp:
  host: {sink.host}
  port: {sink.port}
  security: none
accounts:
  - name: Globex
    domains: [globex.example]
    owner: {OWNER}
    check_in_every: 7d
http:
  listen: 127.0.0.1:{port}
""",
        encoding="utf-8",
    )
    return path


def test_metrics_and_health_follow_the_daemon_and_its_mailbox(
    private_dovecot: Callable[..., DovecotServer],
    smtp_sink: SmtpSink,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a client mail is acknowledged /metrics shows it; a stopped server shows in /healthz.

    The conversation is counted once as awaiting its action plan for Globex (though
    Globex's check-in carries its status too) and one auto_ack was sent; /healthz is 200
    ``ok``, then 503 naming the mailbox once Dovecot has been down for more than 3 poll
    intervals, and 200 again (with a reconnect counted) after it is back.
    """
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    server = private_dovecot()
    server.add_user("metrics", "metrics-pw")
    now = datetime.now(UTC).replace(microsecond=0)
    raw = _mail(
        "q1@globex.example",
        "Dana <dana@globex.example>",
        "support@acme.example",
        "Printer on fire",
        "Please help.",
        now,
    )
    server.append("metrics", "INBOX", raw, now)
    port = _free_port()
    config_path = _config(tmp_path, server, smtp_sink, port)
    config = load_config(config_path)
    metrics = DaemonMetrics(SystemClock())
    daemon = Daemon(
        config,
        config_path,
        build_service=partial(build_service, metrics=metrics),
        load_config=load_config,
        notifier=build_notifier(),
        metrics=metrics,
        listener=build_http_listener(config, metrics),
    )
    thread = threading.Thread(target=daemon.run, name="daemon-under-test")
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        awaiting_plan = (
            "sla_daemon_conversations",
            (("account", "Globex"), ("state", "awaiting_action_plan")),
        )
        _until(lambda: _samples(base).get(awaiting_plan) == 1, "the conversation acked")
        samples = _samples(base)
        assert samples[("sla_daemon_notices_sent_total", (("kind", "auto_ack"),))] == 1
        assert samples[("sla_daemon_outbox_depth", (("state", "pending"),))] == 0
        assert [m.rcpt_tos for m in smtp_sink.messages] == [("dana@globex.example",)]
        assert _get(base + "/healthz") == (200, "ok\n")
        assert _get(base + "/nothing")[0] == 404

        server.halt()
        _until(lambda: _get(base + "/healthz")[0] == 503, "health to fail")
        status, body = _get(base + "/healthz")
        assert status == 503
        assert body.startswith("mailbox support has not synced for ")
        assert body.endswith("(3 poll intervals are 3 s)\n")

        server.resume()
        _until(lambda: _get(base + "/healthz")[0] == 200, "health to recover")
        reconnects = ("sla_daemon_imap_reconnects_total", (("mailbox", "support"),))
        assert _samples(base)[reconnects] >= 1
    finally:
        daemon.stop()
        thread.join(timeout=WAIT_LIMIT)
    assert not thread.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
