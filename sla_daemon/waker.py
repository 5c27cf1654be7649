"""A wake-up that a signal handler may set: a pipe to oneself, not a lock.

A Python signal handler runs in the main thread between two bytecodes, possibly while
that thread holds a lock (``threading.Event``'s, or a log stream's). A handler that
takes the same lock waits for itself forever; that is how a SIGTERM arriving while the
daemon wrote a log line once hung it. Writing a byte to a pipe takes no lock, so
``set`` is safe anywhere: in a signal handler, in another thread, in the loop itself.
"""

from __future__ import annotations

import contextlib
import select
import socket


class Waker:
    """``set`` from anywhere; ``wait`` in the loop until set or a timeout.

    A socket pair rather than ``os.pipe``: a closed socket object refuses later writes,
    where a closed descriptor number could meanwhile belong to another file.
    """

    def __init__(self) -> None:
        self._receiver, self._sender = socket.socketpair()
        self._receiver.setblocking(False)
        self._sender.setblocking(False)

    def set(self) -> None:
        """Make the current or next ``wait`` return True; safe in a signal handler."""
        # A full buffer already holds a wake-up, and a closed waker wakes nobody.
        with contextlib.suppress(OSError):
            self._sender.send(b"!")

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds; True when ``set`` was called (and clear it)."""
        if self._receiver.fileno() < 0:  # closed
            return False
        poller = select.poll()  # not select(): it fails on descriptors above 1023
        poller.register(self._receiver, select.POLLIN)
        ready = bool(poller.poll(max(0.0, timeout) * 1000))
        if ready:
            self.clear()
        return ready

    def clear(self) -> None:
        """Forget any wake-up not yet waited for."""
        with contextlib.suppress(OSError):
            while self._receiver.recv(4096):
                pass

    def close(self) -> None:
        """Release the sockets; a later ``set`` does nothing."""
        self._receiver.close()
        self._sender.close()
