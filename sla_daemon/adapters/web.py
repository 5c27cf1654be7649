"""The read-only HTTP listener: the status page, ``/metrics`` and ``/healthz``.

Standard-library serving (``wsgiref`` with a thread per request) on a daemon thread;
``prometheus_client.make_wsgi_app`` answers ``/metrics``. The listener is started once
and outlives configuration reloads: it reads from the same ``DaemonMetrics``, which the
daemon keeps current. ``/`` is the status page, drawn per request by a callable the
composition root hands in. Anything but GET or HEAD is refused; unknown paths get 404.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import structlog
from prometheus_client import make_wsgi_app

from sla_daemon.metrics import DaemonMetrics

log = structlog.get_logger(__name__)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow scraper does not hold up the health probe."""

    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    """Requests go to the structured log at debug level, not to stderr."""

    def log_message(self, format: str, *args: Any) -> None:
        """Log one request line."""
        log.debug("http.request", client=self.client_address[0], line=format % args)


def _text(start_response: StartResponse, status: str, body: str) -> list[bytes]:
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(data)))]
    )
    return [data]


StatusPageSource = Callable[[str], tuple[str, str]]
"""Draws the status page for a query string: its HTML and the nonce of its inline parts."""


def _page(start_response: StartResponse, html: str, nonce: str) -> list[bytes]:
    data = html.encode()
    # Only this response's own inline style and script may run; nothing may be fetched.
    policy = (
        f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
        "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(data))),
            ("Content-Security-Policy", policy),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
            ("Cache-Control", "no-store"),
        ],
    )
    return [data]


def web_app(metrics: DaemonMetrics, status_page: StatusPageSource | None = None) -> WSGIApplication:
    """The WSGI application: ``/`` (with ``status_page``), ``/metrics``, ``/healthz``; else 404."""
    metrics_app = make_wsgi_app(metrics.registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _text(start_response, "405 Method Not Allowed", "read-only\n")
        path = environ.get("PATH_INFO", "/")
        if path == "/" and status_page is not None:
            return _page(start_response, *status_page(environ.get("QUERY_STRING", "")))
        if path == "/metrics":
            exposition: Iterable[bytes] = metrics_app(environ, start_response)
            return exposition
        if path == "/healthz":
            problems = metrics.health_problems()
            if problems:
                return _text(start_response, "503 Service Unavailable", "\n".join(problems) + "\n")
            return _text(start_response, "200 OK", "ok\n")
        return _text(start_response, "404 Not Found", "not found: try /metrics or /healthz\n")

    return app


class HttpListener:
    """Serves ``app`` on ``host``:``port`` from a daemon thread between start and stop."""

    def __init__(self, host: str, port: int, app: WSGIApplication) -> None:
        self.host = host
        self.port = port
        self.app = app
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def bound_port(self) -> int:
        """The port actually listened on (the configured one, or the one given for 0)."""
        if self._server is None:
            return self.port
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve in the background; ``OSError`` when the address is taken."""
        server_class: type[_ThreadingServer] = (
            _ThreadingServer6 if ":" in self.host else _ThreadingServer
        )
        self._server = make_server(
            self.host, self.port, self.app, server_class=server_class, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="http-listener", daemon=True
        )
        self._thread.start()
        log.info("http.listening", host=self.host, port=self.bound_port)

    def stop(self) -> None:
        """Stop serving and close the socket (nothing to do when not started)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join()
        log.info("http.stopped")
