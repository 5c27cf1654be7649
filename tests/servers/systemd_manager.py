"""A real systemd service manager in private namespaces, for end-to-end tests of the unit.

``/lib/systemd/systemd --system`` runs as PID 1 of a new PID, mount and cgroup namespace
(``unshare``), so it works on a machine or container whose own PID 1 is something else.
What it could change is kept private to the namespace:

- ``/etc``, ``/var`` and ``/usr/local`` are overlays whose writes land in the test's
  directory (users made by ``systemd-sysusers``, ``/etc/sla-daemon``, the state directory,
  the ``/usr/local/bin/sla-daemon`` link);
- ``/run`` is a fresh tmpfs, and the unit directory ``/usr/lib/systemd/system`` is replaced
  by a copy of only the few units a service needs (targets, slices, journald), and the
  generators by nothing, so no other service of the machine is ever started;
- cgroups live below a cgroup made for this manager in the machine's cgroup2 hierarchy,
  removed when it stops.

The network namespace is shared: services reach loopback servers started by the tests.
Commands run inside with ``nsenter`` (``SystemdManager.run``). Needs root.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

SYSTEMD = Path("/lib/systemd/systemd")
UNIT_DIR = Path("/usr/lib/systemd/system")
TARGET = "sla-daemon-test.target"
# The units a service with default dependencies and journal logging needs; everything
# else (udev, getty, timers, the machine's own services) stays out of the namespace.
UNITS = (
    "-.slice",
    "system.slice",
    "sysinit.target",
    "basic.target",
    "sockets.target",
    "paths.target",
    "timers.target",
    "slices.target",
    "local-fs.target",
    "local-fs-pre.target",
    "swap.target",
    "network.target",
    "network-online.target",
    "network-pre.target",
    "multi-user.target",
    "shutdown.target",
    "systemd-journald.service",
    "systemd-journald.socket",
    "systemd-journald-dev-log.socket",
    "systemd-journald-audit.socket",
)
BOOT = r"""
set -eu
work=$1
mount -t tmpfs -o mode=0755 tmpfs /run
for dir in etc var usr/local; do
    name=$(echo "$dir" | tr / -)
    mkdir -p "$work/upper/$name" "$work/overlay-work/$name"
    mount -t overlay overlay \
        -o "lowerdir=/$dir,upperdir=$work/upper/$name,workdir=$work/overlay-work/$name" "/$dir"
done
mount --bind "$work/units" /usr/lib/systemd/system
mount -t tmpfs -o mode=0755 tmpfs /usr/lib/systemd/system-generators
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Private from the machine (unshare), then shared within: systemd propagates mounts it
# makes in a service's namespace (credentials, for one) back, as on a booted machine.
mount --make-rshared /
mkdir -p /run/systemd/system
export container=sla-daemon-test
exec /lib/systemd/systemd --system --unit=sla-daemon-test.target --log-level=info
"""


def cgroup2_root() -> Path | None:
    """Where the machine's cgroup2 hierarchy is mounted (unified or hybrid), if anywhere."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        if fields[separator + 1] == "cgroup2":
            return Path(fields[4])
    return None


def unavailable_reason() -> str | None:
    """Why a private systemd cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "a private systemd manager needs root"
    for command in ("unshare", "nsenter", "systemctl"):
        if shutil.which(command) is None:
            return f"{command} is missing"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} is missing (package systemd)"
    if cgroup2_root() is None:
        return "no cgroup2 hierarchy is mounted"
    return None


class SystemdManager:
    """A systemd system manager as PID 1 of private namespaces (a context manager)."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        root = cgroup2_root()
        assert root is not None, unavailable_reason()
        self.cgroup = root / f"sla-daemon-test-{os.getpid()}-{time.monotonic_ns()}"
        self._unshare: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def __enter__(self) -> SystemdManager:
        units = self.work_dir / "units"
        units.mkdir(parents=True)
        for name in UNITS:
            if (UNIT_DIR / name).exists():
                shutil.copy(UNIT_DIR / name, units / name)
        (units / TARGET).write_text("[Unit]\nDescription=sla-daemon test target\n")
        self.cgroup.mkdir()
        log = (self.work_dir / "systemd.log").open("wb")
        # The manager's cgroup namespace starts at self.cgroup: it is moved there first.
        self._unshare = subprocess.Popen(
            [
                "sh",
                "-c",
                'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
                "sh",
                str(self.cgroup),
                "unshare",
                "--pid",
                "--fork",
                "--mount",
                "--mount-proc",
                "--cgroup",
                "--propagation=private",
                "sh",
                "-c",
                BOOT,
                "boot",
                str(self.work_dir),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        try:
            self.pid = self._manager_pid()
            self._wait_until_running()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # Killing PID 1 of a PID namespace ends every process in it; its mounts go too.
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
        if self._unshare is not None:
            self._unshare.wait(timeout=30)
        for path in sorted(self.cgroup.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            path.rmdir()

    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``command`` inside the manager's namespaces (as root), capturing its output."""
        result = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "-C", "--", *command],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{command} exited {result.returncode}: {result.stderr}")
        return result

    def systemctl(self, *arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``systemctl`` against this manager."""
        return self.run("systemctl", "--no-pager", *arguments, check=check)

    def properties(self, unit: str, *names: str) -> dict[str, str]:
        """The unit's properties ``names`` as ``systemctl show`` reports them."""
        shown = self.systemctl("show", unit, "--property=" + ",".join(names)).stdout
        return dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        """Write a file at ``path`` as seen inside the namespace (parents created)."""
        result = subprocess.run(
            [
                *("nsenter", "-t", str(self.pid), "-m", "--", "sh", "-c"),
                'mkdir -p "$(dirname "$1")" && cat > "$1" && chmod "$2" "$1"',
                *("sh", path, f"{mode:o}"),
            ],
            input=text,
            text=True,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"writing {path}: {result.stderr}")

    def _manager_pid(self) -> int:
        """The host PID of the namespace's PID 1 (the child ``unshare --fork`` made)."""
        assert self._unshare is not None
        children = Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children")
        for _ in range(300):
            if self._unshare.poll() is not None:
                break
            found = children.read_text().split() if children.exists() else []
            if found:
                return int(found[0])
            time.sleep(0.1)
        raise AssertionError(f"systemd did not start: {self._log()}")

    def _wait_until_running(self) -> None:
        """Wait until the manager has reached its target and answers on its private bus."""
        for _ in range(300):
            if self._unshare is not None and self._unshare.poll() is not None:
                break
            state = self.systemctl("is-active", TARGET, check=False).stdout.strip()
            if state == "active":
                return
            time.sleep(0.1)
        raise AssertionError(f"systemd did not reach {TARGET}: {self._log()}")

    def _log(self) -> str:
        return (self.work_dir / "systemd.log").read_text(errors="replace")
