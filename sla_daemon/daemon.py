"""The long-running daemon: the runner over a service, signals, and configuration reload.

SIGTERM and SIGINT let the cycle in hand finish (the message or notice being stored or
sent), close the connections and end ``run`` with status 0. SIGHUP re-reads the
configuration file: when it validates and its secrets can be read, the pipeline is built
anew from it (new mailboxes connect, removed ones are closed, changed policies apply at
the next cycle; the outbox keys keep every notice decided before from being decided
again); when it does not, the daemon keeps running on the configuration it has and logs
each problem.

With ``http.listen`` set, a ``Listener`` serves /metrics and /healthz from the start of
``run`` to its end; it is not rebuilt on reload (a changed ``http`` section applies at
the next start), and the metrics and the status page's evaluations it serves are
updated after every cycle.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from sla_daemon.config import Config
from sla_daemon.errors import ConfigError
from sla_daemon.heap import HeapTrimmer
from sla_daemon.metrics import DaemonMetrics
from sla_daemon.ports import ServiceNotifier
from sla_daemon.runner import Runner
from sla_daemon.service import CycleReport, SlaService
from sla_daemon.status_board import StatusBoard

log = structlog.get_logger(__name__)

ServiceFactory = Callable[[Config], SlaService]
ConfigLoader = Callable[[Path], Config]


class Listener(Protocol):
    """Something served in the background while the daemon runs (the HTTP listener)."""

    def start(self) -> None:
        """Begin serving; raise ``OSError`` when it cannot."""

    def stop(self) -> None:
        """Stop serving."""


class Daemon:
    """Runs cycles until stopped; rebuilds the pipeline on a valid reload."""

    def __init__(
        self,
        config: Config,
        config_path: Path,
        *,
        build_service: ServiceFactory,
        load_config: ConfigLoader,
        notifier: ServiceNotifier,
        metrics: DaemonMetrics | None = None,
        listener: Listener | None = None,
        board: StatusBoard | None = None,
        heap: HeapTrimmer | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        self.build_service = build_service
        self.load_config = load_config
        self.notifier = notifier
        self.metrics = metrics
        self.listener = listener
        self.board = board
        self.heap = heap
        self.reloads = 0
        self._reload_requested = False
        self._stopping = False
        self._runner: Runner | None = None
        self.signals_received: list[int] = []
        """Signals the handlers took, logged by the loop (a handler must not log)."""

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (main thread only, as Python requires)."""

        # The handlers only set flags and wake the loop, which logs the signal: a handler
        # runs between two bytecodes of the main thread, maybe while it holds the log
        # stream's lock, and logging there would wait for itself forever.
        def _stop(signum: int, frame: FrameType | None) -> None:
            self.signals_received.append(signum)
            self.stop()

        def _reload(signum: int, frame: FrameType | None) -> None:
            self.signals_received.append(signum)
            self.request_reload()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGHUP, _reload)

    def stop(self) -> None:
        """Finish the cycle in hand, then end ``run``; safe from a signal handler."""
        self._stopping = True
        if self._runner is not None:
            self._runner.stop()

    def request_reload(self) -> None:
        """Re-read the configuration after the cycle in hand; safe from a signal handler."""
        self._reload_requested = True
        if self._runner is not None:
            self._runner.stop()

    def run(self) -> int:
        """Run until stopped; raise ``ConfigError`` when the first login is refused."""
        if self.listener is not None:
            self.listener.start()
        try:
            return self._run()
        finally:
            if self.listener is not None:
                self.listener.stop()

    def _cycle(self, service: SlaService) -> CycleReport:
        """One cycle; damage found in the state database ends it as ``StateDatabaseError``."""
        with service.store.damage_as_error():
            return self._observed_cycle(service)

    def _observed_cycle(self, service: SlaService) -> CycleReport:
        """One cycle of ``service``, then the metrics brought up to date from it."""
        report = service.run_cycle()
        if self.metrics is not None:
            self.metrics.observe_cycle(
                report,
                service.evaluation_cache.counts(),
                service.store.open_delivery_counts(),
                service.store.next_delivery_at(),
            )
        if self.board is not None:
            self.board.observe(
                service.last_evaluations,
                service.rules,
                ZoneInfo(self.config.timezone),
                service.clock.now(),
            )
        if self.heap is not None and (report.fetched or report.sent or report.failed):
            self.heap.release()  # see sla_daemon.heap: what a busy cycle freed goes back
        return report

    def _watched(self, service: SlaService) -> SlaService:
        """``service``, with its mailboxes and poll interval told to the metrics."""
        if self.metrics is not None:
            self.metrics.watch([s.name for s in service.sources], self.config.poll_interval)
        return service

    def _run(self) -> int:
        service = self._watched(self.build_service(self.config))
        first: CycleReport | None = self._cycle(service)
        if first is not None and first.login_failures:
            # A refused login at start-up needs a person; systemd must not restart-loop.
            service.close()
            raise ConfigError(first.login_failures)
        while True:
            runner = Runner(
                partial(self._cycle, service),
                self.config.poll_interval,
                stop_event=threading.Event(),
                notifier=self.notifier,
            )
            runner.ready_sent = first is None  # after a reload, READY=1 was sent for it
            self._runner = runner
            if self._stopping:
                runner.stop()
            for source in service.sources:
                source.watch(runner.wake, runner.stop_event)
            if first is not None:
                # The first cycle ran above (to catch a refused login); wait as after any.
                runner.after_cycle(first)
                runner.wait_after(first)
                first = None
            runner.run()
            runner.close()
            self._log_signals()
            if self._stopping or not self._reload_requested:
                break
            self._reload_requested = False
            service = self._watched(self._reloaded(service))
        self.notifier.stopping()
        service.close()
        return 0

    def _log_signals(self) -> None:
        """Log the signals the handlers recorded since the last time."""
        while self.signals_received:
            signum = self.signals_received.pop(0)
            log.info("runner.signal", signal=signal.Signals(signum).name)

    def _reloaded(self, service: SlaService) -> SlaService:
        """The service built from the re-read configuration, or ``service`` when invalid."""
        self.notifier.reloading()
        try:
            config = self.load_config(self.config_path)
            if config.state_dir != self.config.state_dir:
                # This process holds the lock of the old directory only; another daemon
                # could be running on the new one.
                raise ConfigError(
                    [
                        f"state_dir: changed from {self.config.state_dir} to "
                        f"{config.state_dir}; the state directory changes only with a "
                        "restart (stop, move the database, start)"
                    ]
                )
            new_service = self.build_service(config)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload.refused", problem=problem)
            log.warning("reload.kept_running", reason="the new configuration is not valid")
            self.notifier.ready("reload refused: the configuration has errors (see the log)")
            return service
        if config.http != self.config.http:
            log.warning(
                "reload.http_unchanged", reason="a changed http section applies at the next start"
            )
        before = {m.name for m in self.config.mailboxes}
        after = {m.name for m in config.mailboxes}
        service.close()
        self.config = config
        self.reloads += 1
        log.info(
            "reload.applied",
            mailboxes_added=sorted(after - before),
            mailboxes_removed=sorted(before - after),
        )
        self.notifier.ready(f"configuration reloaded; {len(after)} mailbox(es)")
        return new_service
