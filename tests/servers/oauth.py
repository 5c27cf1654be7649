"""An OAuth2 authorization server for tests: a token endpoint and token introspection.

It listens on a free loopback port (stdlib ``http.server`` in a thread). ``/token``
answers the refresh-token grant (RFC 6749 section 6) for refresh tokens made by
``add_refresh_token``; ``/introspect`` (RFC 7662, as Dovecot's oauth2 passdb asks it with
``introspection_mode = post``) says whether an access token is active and whose it is.
The SMTP sink checks XOAUTH2 logins against ``user_of`` of the same server.
"""

from __future__ import annotations

import json
import secrets
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    """Routes POST /token and POST /introspect to the server's ``OAuthServer``."""

    server: _HttpServer

    def do_POST(self) -> None:
        """Answer the token grant or an introspection with JSON."""
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii"))
        fields = {key: values[0] for key, values in form.items()}
        if self.path == "/token":
            status, reply = self.server.oauth.grant(fields)
        elif self.path == "/introspect":
            status, reply = 200, self.server.oauth.introspect(fields.get("token", ""))
        else:
            status, reply = 404, {"error": "not_found"}
        body = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep quiet: requests are counted on the server, not printed."""


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, oauth: OAuthServer) -> None:
        super().__init__((OAuthServer.host, 0), _Handler)
        self.oauth = oauth


class OAuthServer:
    """Issues access tokens for known refresh tokens and validates them.

    ``expires_in`` is what each new access token is said to last (seconds).
    ``client_secret``, when set, must come with every grant. ``rotate`` answers every
    grant with a new refresh token (as Microsoft does), which replaces the old one.
    ``token_requests`` counts grants answered with a token; ``respond_with`` (an HTTP
    status) answers every grant with that status instead.
    """

    host = "127.0.0.1"

    def __init__(
        self, *, expires_in: int = 3600, client_secret: str | None = None, rotate: bool = False
    ) -> None:
        self.expires_in = expires_in
        self.client_id = "sla-daemon-test-client"
        self.client_secret = client_secret
        self.rotate = rotate
        self.token_requests = 0
        self.respond_with: int | None = None  # e.g. 503: answer every grant with it
        self._refresh: dict[str, str] = {}
        self._access: dict[str, str] = {}
        self._issued: list[str] = []
        self._lock = threading.Lock()
        self._http: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> OAuthServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Listen on a free loopback port and answer in a background thread."""
        self._http = _HttpServer(self)
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop answering and close the port."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    @property
    def port(self) -> int:
        """The port listened on."""
        assert self._http is not None, "the OAuth server has not been started"
        return int(self._http.server_address[1])

    @property
    def token_endpoint(self) -> str:
        """The URL of the refresh-token grant."""
        return f"http://{self.host}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        """The URL of token introspection."""
        return f"http://{self.host}:{self.port}/introspect"

    def add_refresh_token(self, username: str) -> str:
        """A new refresh token that gets access tokens for ``username``."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self._lock:
            self._refresh[token] = username
            self._issued.append(token)
        return token

    def issue_access_token(self, username: str) -> str:
        """A new valid access token for ``username`` (what a token_command would print)."""
        token = "at-" + secrets.token_urlsafe(24)
        with self._lock:
            self._access[token] = username
            self._issued.append(token)
        return token

    def issued_tokens(self) -> list[str]:
        """Every access and refresh token handed out so far, valid or not."""
        with self._lock:
            return list(self._issued)

    def revoke(self, token: str) -> None:
        """Make a refresh or access token invalid from now on."""
        with self._lock:
            self._refresh.pop(token, None)
            self._access.pop(token, None)

    def user_of(self, access_token: str) -> str | None:
        """Whose ``access_token`` is, or None when it is not (or no longer) valid."""
        with self._lock:
            return self._access.get(access_token)

    def grant(self, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request: a new access token, or an RFC 6749 error."""
        if self.respond_with is not None:
            return self.respond_with, {"error": "temporarily_unavailable"}
        if fields.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        if fields.get("client_id") != self.client_id or (
            self.client_secret is not None and fields.get("client_secret") != self.client_secret
        ):
            return 401, {"error": "invalid_client"}
        with self._lock:
            username = self._refresh.get(fields.get("refresh_token", ""))
            if username is None:
                return 400, {"error": "invalid_grant", "error_description": "token revoked"}
            self.token_requests += 1
        reply: dict[str, Any] = {
            "access_token": self.issue_access_token(username),
            "token_type": "Bearer",
            "expires_in": self.expires_in,
        }
        if self.rotate:
            self.revoke(fields["refresh_token"])
            reply["refresh_token"] = self.add_refresh_token(username)
        return 200, reply

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: ``active`` and, when active, the ``username``."""
        username = self.user_of(token)
        if username is None:
            return {"active": False}
        return {"active": True, "username": username}


def dovecot_oauth2_passdb(introspection_url: str, directory: Path) -> str:
    """Dovecot 2.3 settings that check XOAUTH2/OAUTHBEARER logins at ``introspection_url``.

    Writes the oauth2 passdb's own file into ``directory`` and returns the ``passdb``
    block for dovecot.conf; password logins keep working through the other passdb.
    """
    settings = directory / "dovecot-oauth2.conf.ext"
    settings.write_text(
        f"introspection_mode = post\n"
        f"introspection_url = {introspection_url}\n"
        "force_introspection = yes\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
    )
    settings.chmod(0o644)
    return f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {settings}
}}
"""
