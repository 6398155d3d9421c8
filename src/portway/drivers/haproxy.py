"""The HAProxy driver: applies snapshots to a real HAProxy (master-worker) through its
files, its Runtime API and its master CLI.

One task (``ApplyLoop``) owns the files on disk and the HAProxy process. ``apply`` and
``set_down`` only record the latest snapshot and verdicts and wake that task, so a
burst of changes is one render and at most one reload. Each round:

1. render (pure, in a thread), keeping each member in the server slot it had, and with
   the members Portway's active checks declare down in maintenance;
2. ``haproxy_plan`` compares it with what HAProxy runs. If only members, weights,
   drains, verdicts and simple hostnames changed, the files are written and the Runtime API
   commands sent: no reload. A command that fails falls back to a reload;
3. otherwise write the difference, run ``haproxy -c``; refused: write the reverse
   difference, so the last good configuration stays on disk and in force, keep the
   error in ``errors``, try again with the next snapshot;
4. accepted: ``reload`` on the master CLI, and wait until a new worker answers the
   stats socket and the master counts the reload: only then is the version applied.

With ``expose-fd listeners`` the new worker takes the listening sockets from the old
one, so a reload refuses no connection; old workers finish their requests (up to
``hard-stop-after``). Portway-managed HAProxy is restarted if it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from portway.drivers import file_tree as files
from portway.drivers import haproxy_base as base
from portway.drivers import haproxy_limits, ticket_files
from portway.drivers import haproxy_runtime as runtime
from portway.drivers.apply_loop import ApplyLoop, Down
from portway.drivers.daemon import Daemon, run_command
from portway.drivers.file_tree import FileTree
from portway.drivers.haproxy_config import HaproxyConfig, render
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_plan import plan
from portway.drivers.problems import Problem
from portway.errors import ConfigError
from portway.router import Snapshot
from portway.tls.tickets import NO_KEYS, TicketKeys

log = logging.getLogger("portway.drivers.haproxy")
MASTER_SOCKET = "master.sock"
_SAFE_PATH = re.compile(r"[A-Za-z0-9/._-]+\Z")


@dataclass(frozen=True, kw_only=True, slots=True)
class HaproxySettings:
    """``--haproxy-binary``, ``--haproxy-prefix`` and ``--haproxy-external``, plus timings."""

    prefix: Path
    binary: str = "haproxy"
    external: bool = False
    options: HaproxyOptions = field(default_factory=HaproxyOptions)
    default_certificate: tuple[Path, Path] | None = None  # chain and key, read at start
    coalesce: float = 0.05  # seconds to gather a burst of snapshots into one round
    reload_interval: float = 0.5  # at least this long between two reloads
    reload_timeout: float = 15.0  # until a new worker answers
    restart_backoff: float = 1.0


def _tree(config: HaproxyConfig) -> FileTree:
    """The files as the tree writer takes them: no links."""
    return FileTree(files=config.files, links={}, secrets=config.secrets)


class HaproxyDriver:
    """A data plane made of HAProxy: ``apply`` snapshots, read ``loop.applied_version``."""

    name = "HAProxy"

    def __init__(self, settings: HaproxySettings) -> None:
        self.settings = settings
        self.prefix = settings.prefix.resolve()
        if not _SAFE_PATH.match(str(self.prefix)):
            # The prefix reaches crt-list lines, Runtime API commands (the map's name)
            # and ``-S path,mode,600``, none of which can quote.
            raise ConfigError(f"--haproxy-prefix {self.prefix}: use only [A-Za-z0-9/._-]")
        self.conf = self.prefix / "conf"
        self.run_dir = self.prefix / "run"
        self.options = replace(
            settings.options,
            conf_dir=str(self.conf),
            run_dir=str(self.run_dir),
            default_certificate=settings.default_certificate is not None,
        )
        self.master_socket = str(self.run_dir / MASTER_SOCKET)
        self.stats_socket = str(self.run_dir / base.STATS_SOCKET)
        self.reloads = 0
        self.runtime_rounds = 0  # rounds applied through the Runtime API alone
        self.loop = ApplyLoop(self._round, name="HAProxy", delay=lambda: settings.coalesce)
        args = ["-W", "-db", "-f", str(self.conf / base.CONFIG)]
        self.daemon = Daemon(
            "haproxy",
            [settings.binary, *args, "-S", f"{self.master_socket},mode,600"],
            self.prefix / "logs" / "haproxy.log",
            stop_signal=signal.SIGUSR1,  # soft stop: in-flight requests finish
            backoff=settings.restart_backoff,
            on_exit=self.loop.report,
        )
        self._running: HaproxyConfig | None = None  # what HAProxy runs (and disk holds)
        self._tickets: TicketKeys = NO_KEYS
        self._last_reload = -1e9

    # -- the interface ---------------------------------------------------------------

    @property
    def errors(self) -> tuple[str, ...]:
        return self.loop.errors  # why the last snapshot was refused; empty once one applies

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.loop.problems  # what the applied render said about the proxies

    async def start(self) -> None:
        """Write the empty configuration, check it and start (or reload) HAProxy."""
        await asyncio.to_thread(self._fresh_tree)
        config = render(Snapshot(version=0), self.options)
        rounded = haproxy_limits.node_degradation(self.options)
        if rounded is not None:
            log.warning("%s", rounded)
        await asyncio.to_thread(files.carry_out, self.conf, files.diff(None, _tree(config)))
        ok, output = await self._test()
        if not ok:
            raise ConfigError(f"haproxy -c refused Portway's base configuration: {output}")
        if not self.settings.external:
            await self.daemon.spawn()
            try:
                await self._confirm(frozenset())
            except ConfigError:
                await self.daemon.stop()
                raise
            self._running = config
            self.daemon.supervise()
        else:
            try:  # the operator's HAProxy may not run yet: reloaded with the next round
                await self._reload()
                self._running = config
            except ConfigError as err:
                self.loop.report(err.message)
        self.loop.start()

    def apply(self, snapshot: Snapshot, changed_ids: Iterable[str] = ()) -> None:
        """Hand a snapshot over; call it on the driver's event loop (it wakes a task).
        ``changed_ids`` is accepted for the data-plane interface: the plan diffs the
        rendered configurations, needing no hint."""
        self.loop.offer(snapshot)

    def set_down(self, down: Down) -> None:
        """The active checks' verdicts: ``set server … state maint|ready`` through the
        Runtime API (the files say ``disabled`` too, so a reload agrees), no reload."""
        self.loop.set_down(down)

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        """The tier's TLS ticket keys: a ``tls-ticket-keys`` file, and a reload
        (coalesced like snapshots; ``set ssl tls-key`` could do it live)."""
        self._tickets = keys
        self.loop.rerender()

    async def wait_applied(self, version: int, timeout: float = 30.0) -> bool:
        """Wait until ``version`` (or a later one) is applied or refused; True if applied."""
        return await self.loop.wait_applied(version, timeout)

    async def close(self) -> None:
        await self.loop.close()
        await self.daemon.stop()

    # -- one round -------------------------------------------------------------------

    async def _round(self, snapshot: Snapshot, down: Down) -> tuple[Problem, ...]:
        running = self._running
        layout = running.layout() if running is not None else {}
        text = ticket_files.haproxy_text(self._tickets, time.time()) if self.options.https else ""
        self.options = replace(self.options, ticket_keys=text)
        config = await asyncio.to_thread(render, snapshot, self.options, layout, down)
        decision = plan(running, config, self.options.conf_dir + "/" + base.HOSTS)
        if not decision.reload and await self._live(config, decision.commands):
            self.runtime_rounds += 1
            return config.problems
        await self._reload_with(snapshot, config)
        return config.problems

    async def _live(self, config: HaproxyConfig, commands: tuple[str, ...]) -> bool:
        """Apply through the Runtime API; False (to reload instead) if a command failed."""
        change = files.diff(_tree(self._running) if self._running else None, _tree(config))
        await asyncio.to_thread(files.carry_out, self.conf, change)
        for command in commands:
            answer = await runtime.ask(self.stats_socket, command)
            if not runtime.worked(answer):
                log.warning("HAProxy refused %r (%s): reloading", command, answer.strip())
                return False
        self._running = config
        return True

    async def _reload_with(self, snapshot: Snapshot, config: HaproxyConfig) -> None:
        good = _tree(self._running) if self._running is not None else None
        change = files.diff(good, _tree(config))
        await asyncio.to_thread(files.carry_out, self.conf, change)
        ok, output = await self._test()
        if not ok:
            undo = files.diff(_tree(config), good or _tree(config))
            await asyncio.to_thread(files.carry_out, self.conf, undo)
            raise ConfigError(f"haproxy -c refused snapshot {snapshot.version}: {output}")
        # Reloads retire workers and their keep-alive connections: space them.
        spacing = self._last_reload + self.settings.reload_interval - time.monotonic()
        if spacing > 0:
            await asyncio.sleep(spacing)
        await self._reload()
        self._running = config  # on disk, tested and loaded: what a refusal rolls back to

    # -- HAProxy ---------------------------------------------------------------------

    def _fresh_tree(self) -> None:
        shutil.rmtree(self.conf, ignore_errors=True)  # ours alone: rebuilt from the store
        for name in ("conf", "logs", "run"):
            (self.prefix / name).mkdir(parents=True, exist_ok=True)
        pair = self.settings.default_certificate
        if pair is not None:  # HAProxy takes the chain and the key in one file
            pem = pair[0].read_text().rstrip("\n") + "\n" + pair[1].read_text().rstrip("\n")
            files.write_file(self.conf / base.DEFAULT_CERT, pem + "\n", secret=True)

    async def _test(self) -> tuple[bool, str]:
        cfg = str(self.conf / base.CONFIG)
        code, output = await run_command([self.settings.binary, "-c", "-f", cfg])
        alerts = [line for line in output.splitlines() if "[ALERT]" in line]
        return code == 0, "\n".join(alerts) or output

    async def _reload(self) -> None:
        """``reload`` on the master CLI, confirmed by a new worker on the stats socket."""
        before = await runtime.processes(self.master_socket)
        self.reloads += 1
        self._last_reload = time.monotonic()
        with contextlib.suppress(ConfigError):  # the master closes the CLI as it re-executes
            await runtime.ask(self.master_socket, "reload")
        await self._confirm(frozenset(before.workers), before)

    async def _confirm(self, old: frozenset[int], before: runtime.Processes | None = None) -> None:
        """Wait until the master counts the reload, none of the ``old`` workers is
        current, and a current worker answers the stats socket: from then on, every
        Runtime API command and every new connection reaches the new configuration."""
        deadline = time.monotonic() + self.settings.reload_timeout
        while time.monotonic() < deadline:
            try:
                now: runtime.Processes | None = await runtime.processes(self.master_socket)
            except ConfigError:
                now = None  # the master re-executes: its CLI answers again soon
            if now is not None:
                # Outside the suppression above: a failed load is said at once, not
                # after the reload timeout.
                if before is not None and now.failed > before.failed:
                    raise ConfigError(f"HAProxy failed to load the new configuration ({now})")
                counted = before is None or now.reloads > before.reloads
                fresh = set(now.workers) - old
                if (
                    counted
                    and fresh
                    and not (set(now.workers) & old)
                    and await runtime.worker_pid(self.stats_socket) in fresh
                ):
                    return
            if self.daemon.failed_at_start:
                raise ConfigError(f"haproxy exited at start: {self.daemon.log_tail()}")
            await asyncio.sleep(0.02)
        raise ConfigError("HAProxy did not start a worker on the new configuration in time")
