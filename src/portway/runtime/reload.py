"""SIGHUP: re-read the config file and switch the running node to its live settings.

Settings marked ``live`` in the table apply from the next connection or request, in the
control process's data plane and in every worker; the others keep their running values
and the log names them as needing a restart. A file that fails to load leaves everything
as it was. Every SIGHUP also reopens the access log, so log rotation needs no restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from portway.dataplane.server import DataPlane
from portway.errors import PortwayError
from portway.observability.access_log import AccessLog
from portway.runtime.config import ServeConfig
from portway.runtime.configfile import changed, take_live
from portway.runtime.workers import WorkerPool, open_access_log

log = logging.getLogger("portway")


class Reloader:
    """Owns the node's running configuration after start-up."""

    def __init__(
        self,
        config: ServeConfig,
        load: Callable[[], ServeConfig] | None,
        *,
        plane: DataPlane | None,
        pool: WorkerPool | None,
    ) -> None:
        self.config = config
        self._load = load  # None: no config file, so SIGHUP only reopens the access log
        self._plane = plane
        self._pool = pool

    def reload(self) -> None:
        running = self.config
        try:
            fresh = self._load() if self._load is not None else running
        except PortwayError as exc:
            log.error("SIGHUP: %s; the running settings stay", exc.message)
            return
        try:
            # Opened before anything changes, so that a bad path changes nothing.
            access_log = open_access_log(fresh.access_log) if self._plane is not None else None
        except OSError as exc:
            log.error("SIGHUP: cannot open the access log: %s; the running settings stay", exc)
            return
        restart = [s.key for s in changed(running, fresh) if not s.live]
        self.config = take_live(running, fresh)
        applied = [s.key for s in changed(running, self.config)]
        self._apply(self.config, access_log)
        if applied:
            log.info("SIGHUP: applied %s", ", ".join(applied))
        else:
            log.info("SIGHUP: no live setting changed; access log reopened")
        if restart:
            log.warning(
                "SIGHUP: %s changed but need a restart; the running values stay",
                ", ".join(restart),
            )

    def _apply(self, config: ServeConfig, access_log: AccessLog | None) -> None:
        logging.getLogger().setLevel(config.log_level.upper())
        if self._plane is not None:
            self._plane.reconfigure(config.dataplane)
            old, self._plane.access_log = self._plane.access_log, access_log
            if old is not None:
                old.close()
        if self._pool is not None:
            self._pool.reconfigure(config.dataplane, config.access_log)
