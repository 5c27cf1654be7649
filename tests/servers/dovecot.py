"""A private Dovecot 2.3 IMAP server for tests, run from a generated config.

The server listens on 127.0.0.1 on a free port, keeps its mail, sockets, state and logs
in its own temporary directory, and authenticates users from plain passwd files. It
speaks plaintext IMAP (loopback, tests only) and, with ``tls=True``, also implicit TLS
and STARTTLS with a self-signed certificate. It never touches /etc/dovecot or the
system's own Dovecot service.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType

from imapclient import IMAPClient

from tests.servers import process_tree
from tests.servers.oauth import dovecot_oauth2_passdb

DOVECOT_CANDIDATES = ("dovecot", "/usr/sbin/dovecot")
INSTALL_HINT = (
    "sla-daemon tests need Dovecot: install the Debian/Ubuntu package dovecot-imapd "
    "(sudo apt-get install dovecot-imapd, or run scripts/ensure-test-packages.sh)"
)

_USERNAME = re.compile(r"^[A-Za-z0-9._-]+$")
_APPENDUID = re.compile(rb"\[APPENDUID \d+ (\d+)\]")


def find_dovecot() -> str | None:
    """Return the path of the dovecot binary, or None when it is not installed."""
    for candidate in DOVECOT_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _service_identity() -> tuple[str, str]:
    """The user and group Dovecot's unprivileged processes and mail files run as.

    As root Dovecot refuses to run its login and mail processes as root, so they drop to
    ``nobody``; as an ordinary user it cannot switch users at all, so they stay ours.
    """
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_name, grp.getgrgid(nobody.pw_gid).gr_name
    me = pwd.getpwuid(os.geteuid())
    return me.pw_name, grp.getgrgid(os.getegid()).gr_name


class DovecotServer:
    r"""A Dovecot IMAP server on ``host``:``port`` with users added by ``add_user``.

    Use as a context manager, or call ``start()`` and ``stop()``. Every user gets an
    INBOX and a sent folder (SPECIAL-USE ``\Sent``), named ``Sent`` unless told otherwise.
    ``halt()`` (or ``crash()``, with SIGKILL) and ``resume()`` (or ``restart()``) take the
    server down and bring it back on the same port with the same users and mail.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        binary: str | None = None,
        start_timeout: float = 20.0,
        timezone: str = "XST-5:30",
        tls: bool = False,
        sent_folder: str | None = "Sent",
        oauth2_introspection_url: str | None = None,
        max_connections_per_user: int = 10,
    ) -> None:
        found = binary or find_dovecot()
        if found is None:
            raise FileNotFoundError(INSTALL_HINT)
        self.binary = found
        self.start_timeout = start_timeout
        # Not UTC on purpose (POSIX TZ syntax, so no tzdata is needed): Dovecot reports
        # INTERNALDATE in its own zone, and tests should see a real offset to convert.
        self.timezone = timezone
        self.tls = tls
        # The folder marked SPECIAL-USE \Sent; e.g. "Sent Items" to look like Outlook,
        # or None for a server that marks none.
        self.sent_folder = sent_folder
        # With a URL, XOAUTH2 and OAUTHBEARER logins are checked there (tests/servers/oauth.py).
        self.oauth2_introspection_url = oauth2_introspection_url
        # Dovecot's own default (10); a test lowers it to see a server refuse a login
        # with [LIMIT], as Gmail and Dovecot do when a user has too many connections.
        self.max_connections_per_user = max_connections_per_user
        self.port = 0
        self.tls_port = 0
        self.root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._passwords: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def config_path(self) -> Path:
        """The generated dovecot.conf."""
        return self._root / "dovecot.conf"

    @property
    def certificate_path(self) -> Path:
        """The self-signed certificate (for 127.0.0.1) served when ``tls`` is on."""
        return self._root / "cert.pem"

    @property
    def users_dir(self) -> Path:
        """One passwd file per user, named after the user."""
        return self._root / "users"

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise RuntimeError("the Dovecot server has not been started")
        return self.root

    def start(self) -> None:
        """Write the config, start Dovecot in the foreground and wait for its greeting."""
        # Not pytest's tmp_path: its parents are private to root, and Dovecot's mail
        # processes (nobody, when we are root) must be able to walk into this directory.
        self.root = Path(tempfile.mkdtemp(prefix="sla-dovecot-"))
        user, group = _service_identity()
        for sub in ("", "run", "state", "mail", "users"):
            path = self.root / sub
            path.mkdir(exist_ok=True)
            path.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.root / "mail", user=user, group=group)
        self.port = free_port(self.host)
        if self.tls:
            self.tls_port = free_port(self.host)
            self._make_certificate()
        self.config_path.write_text(self._config(user, group))
        try:
            self.resume()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop Dovecot (terminate, then kill) and remove its directory."""
        self.halt()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def halt(self) -> None:
        """Stop the server and end every client session; users and mail stay.

        The master process leaves running ``imap`` session processes behind when it is
        terminated in the foreground, so they are ended too, the way a real restart
        (``shutdown_clients = yes``) ends them.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process_tree.terminate(process)

    def crash(self) -> None:
        """SIGKILL the server and every process it started, the way a crash ends them.

        Nothing is shut down in order: sessions die mid-command, clients see a reset.
        ``resume()`` brings the server back on the same port with the same users and mail.
        """
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process_tree.crash(process)

    def resume(self) -> None:
        """Start the server (again) on the same port, config and mail; wait for its greeting."""
        if self._process is not None:
            raise RuntimeError("the Dovecot server is already running")
        # Output goes to a file: a pipe nobody reads could fill up and stall Dovecot.
        with (self._root / "console.log").open("ab") as console:
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                env={**os.environ, "TZ": self.timezone},
                start_new_session=True,  # its own process group, for ``crash()``
            )
        try:
            self._wait_for_greeting()
        except BaseException:
            self.halt()
            raise

    def restart(self) -> None:
        """``halt()`` then ``resume()``: every client is disconnected, nothing is lost."""
        self.halt()
        self.resume()

    def log_text(self) -> str:
        """Everything Dovecot has logged so far (empty when nothing was written)."""
        texts = []
        for name in ("console.log", "dovecot.log", "dovecot-info.log"):
            path = self._root / name
            if path.exists():
                texts.append(path.read_text(errors="replace"))
        return "".join(texts)

    def _make_certificate(self) -> None:
        key = self._root / "key.pem"
        subprocess.run(
            [
                "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                "-keyout", str(key), "-out", str(self.certificate_path),
            ],
            check=True,
            capture_output=True,
        )  # fmt: skip
        key.chmod(0o600)

    def _config(self, user: str, group: str) -> str:
        root = self._root
        mail_ids = f"mail_uid = {user}\nmail_gid = {group}\n"
        if self.tls:
            ssl = f"ssl = yes\nssl_cert = <{self.certificate_path}\nssl_key = <{root / 'key.pem'}\n"
        else:
            ssl = "ssl = no\n"
        return f"""\
protocols = imap
listen = {self.host}
base_dir = {root / "run"}
state_dir = {root / "state"}
log_path = {root / "dovecot.log"}
info_log_path = {root / "dovecot-info.log"}
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
{mail_ids}first_valid_uid = 1
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth2_introspection_url else ""}
# Wrong-password tests would otherwise wait two seconds per refusal.
auth_failure_delay = 0
mail_max_userip_connections = {self.max_connections_per_user}
# A lock file made with O_EXCL by a session killed before it wrote its PID into it is
# empty: Dovecot cannot tell its owner is dead and makes every session of that mailbox
# wait two minutes for it to go stale. Made by link() instead, a lock always names its
# owner, so after ``crash()`` the next session takes it over within seconds.
dotlock_use_excl = no
mail_location = maildir:{root / "mail"}/%u

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.users_dir}/%u
}}
{self._oauth2_passdb()}
namespace inbox {{
  inbox = yes
  separator = /
{self._sent_mailbox()}}}

service imap-login {{
  chroot =
  inet_listener imap {{
    port = {self.port}
  }}
  inet_listener imaps {{
    port = {self.tls_port}
  }}
}}
# Without the penalty socket the auth process cannot delay logins from an address
# that failed before: one wrong-password test would slow every later login by seconds.
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _oauth2_passdb(self) -> str:
        if self.oauth2_introspection_url is None:
            return ""
        return dovecot_oauth2_passdb(self.oauth2_introspection_url, self._root)

    def _sent_mailbox(self) -> str:
        if self.sent_folder is None:
            return ""
        return f"""\
  mailbox "{self.sent_folder}" {{
    special_use = \\Sent
    auto = create
  }}
"""

    def _wait_for_greeting(self) -> None:
        # Dovecot accepts TCP connections before its auth process is up; only the
        # "* OK" greeting says a login can succeed.
        deadline = time.monotonic() + self.start_timeout
        last_problem = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"Dovecot exited with status {self._process.returncode} while starting."
                    f"\nlog:\n{self.log_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1.0) as sock:
                    greeting = sock.recv(1024)
                if greeting.startswith(b"* OK"):
                    return
                last_problem = f"unexpected greeting {greeting!r}"
            except OSError as exc:
                last_problem = str(exc)
            time.sleep(0.05)
        raise RuntimeError(
            f"Dovecot did not greet on {self.host}:{self.port} within {self.start_timeout}s "
            f"({last_problem}).\nlog:\n{self.log_text()}"
        )

    # -- users and mail ----------------------------------------------------------------

    def add_user(self, name: str, password: str) -> None:
        """Create a user who can log in at once."""
        if not _USERNAME.match(name):
            raise ValueError(f"user name {name!r} must match {_USERNAME.pattern}")
        if ":" in password or "\n" in password:
            raise ValueError("a passwd-file password cannot contain ':' or a newline")
        # A file per user rather than one shared file: Dovecot re-reads a changed
        # passwd file at most once per second, so a user appended in the same second
        # as an earlier login would be refused. A new file is always read fresh.
        path = self.users_dir / name
        staging = path.with_name(f".{name}.new")
        staging.write_text(f"{name}:{{PLAIN}}{password}::::::\n")
        staging.chmod(0o644)
        staging.replace(path)
        self._passwords[name] = password

    def connect(self, user: str) -> IMAPClient:
        """Return a logged-in plaintext client for ``user`` with timezone-aware times."""
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=10)
        client.normalise_times = False
        client.login(user, self._passwords[user])
        return client

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        internaldate: datetime,
        flags: Sequence[str] = (),
    ) -> int:
        """APPEND one message with exactly this INTERNALDATE; return its UID."""
        return self.append_many(user, folder, [(raw, internaldate, flags)])[0]

    def append_many(
        self,
        user: str,
        folder: str,
        messages: Iterable[tuple[bytes, datetime, Sequence[str]]],
    ) -> list[int]:
        """APPEND several messages over one connection; return their UIDs in order."""
        client = self.connect(user)
        try:
            # Selecting first makes Dovecot create an auto=create folder such as Sent
            # and keeps one open mailbox for the whole run instead of one per APPEND.
            client.select_folder(folder, readonly=True)
            uids = []
            for raw, internaldate, flags in messages:
                response = client.append(folder, raw, flags=tuple(flags), msg_time=internaldate)
                match = _APPENDUID.search(response)
                if match is None:
                    raise RuntimeError(f"APPEND answered without APPENDUID: {response!r}")
                uids.append(int(match.group(1)))
            return uids
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def flags(self, user: str, folder: str) -> dict[int, tuple[str, ...]]:
        """Return every message's flags (EXAMINE + FETCH FLAGS, which change nothing)."""
        client = self.connect(user)
        try:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
            return {
                int(uid): tuple(
                    flag.decode() if isinstance(flag, bytes) else str(flag)
                    for flag in data[b"FLAGS"]
                )
                for uid, data in fetched.items()
            }
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def uidvalidity(self, user: str, folder: str) -> int:
        """Return the folder's UIDVALIDITY."""
        client = self.connect(user)
        try:
            value: int = client.select_folder(folder, readonly=True)[b"UIDVALIDITY"]
            return value
        finally:
            with contextlib.suppress(Exception):
                client.logout()
