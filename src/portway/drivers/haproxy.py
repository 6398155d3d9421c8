"""The HAProxy driver: applies snapshots to a real HAProxy (master-worker) through its
files, its Runtime API and its master CLI.

One task owns the files on disk and the HAProxy process. ``apply`` only records the
latest snapshot and wakes that task, so a burst of snapshots is one render and at most
one reload. Each round:

1. render (pure, in a thread), keeping each member in the server slot it had;
2. ``haproxy_plan`` compares it with what HAProxy runs. If only members, weights,
   drains and simple hostnames changed, the files are written and the Runtime API
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

from portway.drivers import haproxy_base as base
from portway.drivers import haproxy_runtime as runtime
from portway.drivers import nginx_files as files
from portway.drivers.haproxy_config import HaproxyConfig, Problem, render
from portway.drivers.haproxy_options import HaproxyOptions
from portway.drivers.haproxy_plan import plan
from portway.drivers.nginx import run_command
from portway.drivers.nginx_config import NginxTree
from portway.errors import ConfigError, PortwayError
from portway.router import Snapshot

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


def _tree(config: HaproxyConfig) -> NginxTree:
    """The files as the tree writer (nginx_files) takes them: no links."""
    return NginxTree(files=config.files, links={}, secrets=config.secrets)


class HaproxyDriver:
    """A data plane made of HAProxy: ``apply`` snapshots, read ``applied_version``."""

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
        self.applied_version: int | None = None
        self.errors: tuple[str, ...] = ()
        self.problems: tuple[Problem, ...] = ()
        self.reloads = 0
        self.runtime_rounds = 0  # rounds applied through the Runtime API alone
        self._running: HaproxyConfig | None = None  # what HAProxy runs (and disk holds)
        self._latest: Snapshot | None = None
        self._wake = asyncio.Event()
        self._applied = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._failed: int | None = None  # the last version refused
        self._last_reload = -1e9

    # -- the interface ---------------------------------------------------------------

    async def start(self) -> None:
        """Write the empty configuration, check it and start (or reload) HAProxy."""
        await asyncio.to_thread(self._fresh_tree)
        config = render(Snapshot(version=0), self.options)
        await asyncio.to_thread(files.carry_out, self.conf, files.diff(None, _tree(config)))
        ok, output = await self._test()
        if not ok:
            raise ConfigError(f"haproxy -c refused Portway's base configuration: {output}")
        if not self.settings.external:
            await self._spawn()
            try:
                await self._confirm(frozenset())
            except ConfigError:
                await self._stop_process()
                raise
            self._running = config
            self._supervisor = asyncio.create_task(self._supervise(), name="haproxy-supervisor")
        else:
            try:  # the operator's HAProxy may not run yet: reloaded with the next round
                await self._reload()
                self._running = config
            except ConfigError as err:
                self.errors = (err.message,)
        self._task = asyncio.create_task(self._run(), name="haproxy-driver")

    def apply(self, snapshot: Snapshot, changed_ids: Iterable[str] = ()) -> None:
        """Hand a snapshot over; call it on the driver's event loop (it wakes a task).
        ``changed_ids`` is accepted for the data-plane interface: the plan diffs the
        rendered configurations, needing no hint."""
        if self._latest is None or snapshot.version >= self._latest.version:
            self._latest = snapshot
            self._wake.set()

    async def wait_applied(self, version: int, timeout: float = 30.0) -> bool:
        """Wait until ``version`` (or a later one) is applied or refused; True if applied."""

        def done() -> bool:
            return (self.applied_version or 0) >= version or (self._failed or 0) >= version

        async with self._applied:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._applied.wait_for(done), timeout)
        return (self.applied_version or 0) >= version

    async def close(self) -> None:
        self._closing = True
        for task in (self._task, self._supervisor):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self._stop_process()

    # -- one round -------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            await asyncio.sleep(self.settings.coalesce)  # the rest of the burst joins in
            self._wake.clear()
            snapshot = self._latest
            if snapshot is None or (self.applied_version or -1) >= snapshot.version:
                continue
            try:
                await self._round(snapshot)
            except PortwayError as err:
                self._refused(snapshot, err.message)
            except OSError as err:
                self._refused(snapshot, f"HAProxy files could not be written: {err}")
            except Exception as err:  # a bug must not end the only task that applies
                log.exception("applying snapshot %s to HAProxy failed", snapshot.version)
                self._refused(snapshot, f"applying to HAProxy failed: {err!r}")
            async with self._applied:
                self._applied.notify_all()

    async def _round(self, snapshot: Snapshot) -> None:
        running = self._running
        layout = running.layout() if running is not None else {}
        config = await asyncio.to_thread(render, snapshot, self.options, layout)
        decision = plan(running, config, self.options.conf_dir + "/" + base.HOSTS)
        if not decision.reload and await self._live(config, decision.commands):
            self.runtime_rounds += 1
            self._accepted(snapshot, config)
            return
        await self._reload_with(snapshot, config)
        self._accepted(snapshot, config)

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

    def _accepted(self, snapshot: Snapshot, config: HaproxyConfig) -> None:
        self.applied_version = snapshot.version
        self.problems = config.problems
        self.errors = ()

    def _refused(self, snapshot: Snapshot, message: str) -> None:
        log.error("%s", message)
        self._failed = snapshot.version
        self.errors = (message,)

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
            with contextlib.suppress(ConfigError):
                now = await runtime.processes(self.master_socket)
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
            process = self._process
            if process is not None and process.returncode is not None and not self._supervisor:
                raise ConfigError(f"haproxy exited at start: {self._log_tail()}")
            await asyncio.sleep(0.02)
        raise ConfigError("HAProxy did not start a worker on the new configuration in time")

    async def _spawn(self) -> None:
        out = open(self.prefix / "logs" / "haproxy.log", "ab")  # noqa: SIM115 (child owns it)
        args = [
            self.settings.binary,
            "-W",
            "-db",
            "-f",
            str(self.conf / base.CONFIG),
            "-S",
            f"{self.master_socket},mode,600",
        ]
        try:
            self._process = await asyncio.create_subprocess_exec(
                *args, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        except OSError as err:
            raise ConfigError(f"cannot start {self.settings.binary}: {err}") from err
        finally:
            out.close()

    async def _supervise(self) -> None:
        while True:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._closing:
                return
            message = f"haproxy exited with {code}; restarting: {self._log_tail()}"
            log.error("%s", message)
            self.errors = (message,)
            await asyncio.sleep(self.settings.restart_backoff)
            with contextlib.suppress(ConfigError):
                await self._spawn()  # it loads the files on disk: the last good ones

    def _log_tail(self) -> str:
        try:
            return (self.prefix / "logs" / "haproxy.log").read_text(errors="replace")[-500:]
        except OSError:
            return ""

    async def _stop_process(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGUSR1)  # soft stop: in-flight requests finish
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
