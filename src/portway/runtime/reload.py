"""SIGHUP: re-read the config file and switch the running node to its live settings.

Settings marked ``live`` in the table apply from the next connection or request, in the
control process's data plane and in every worker; the others keep their running values
and the log names them as needing a restart. A file that fails to load leaves everything
as it was. Every SIGHUP also reopens the access log, so log rotation needs no restart.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from portway.errors import PortwayError
from portway.runtime.config import ServeConfig
from portway.runtime.configfile import changed, take_live
from portway.runtime.plane_handle import DataPlaneHandle

log = logging.getLogger("portway")


class Reloader:
    """Owns the node's running configuration after start-up."""

    def __init__(
        self,
        config: ServeConfig,
        load: Callable[[], ServeConfig] | None,
        handle: DataPlaneHandle,
    ) -> None:
        self.config = config
        self._load = load  # None: no config file, so SIGHUP only reopens the access log
        self._handle = handle

    def reload(self) -> None:
        running = self.config
        try:
            fresh = self._load() if self._load is not None else running
        except PortwayError as exc:
            log.error("SIGHUP: %s; the running settings stay", exc.message)
            return
        live = take_live(running, fresh)
        try:
            # The handle opens the access log before it changes anything, so that a bad
            # path changes nothing.
            self._handle.reconfigure(live.dataplane, live.access_log)
        except OSError as exc:
            log.error("SIGHUP: cannot open the access log: %s; the running settings stay", exc)
            return
        self.config = live
        logging.getLogger().setLevel(live.log_level.upper())
        applied = [s.key for s in changed(running, live)]
        restart = [s.key for s in changed(running, fresh) if not s.live]
        if applied:
            log.info("SIGHUP: applied %s", ", ".join(applied))
        else:
            log.info("SIGHUP: no live setting changed; access log reopened")
        if restart:
            log.warning(
                "SIGHUP: %s changed but need a restart; the running values stay",
                ", ".join(restart),
            )
