"""The nginx driver: applies snapshots to a real nginx through its configuration tree.

One task owns the tree on disk and the nginx process. ``apply`` only records the latest
snapshot and wakes that task, so a burst of snapshots is one render, one ``nginx -t``
and one reload (envoy's rule: the latest consistent snapshot wins). Each round:

1. render (pure, in a thread: a large snapshot takes a while) and compare with the tree
   nginx serves; an identical tree is applied without a reload;
2. write the difference (atomic renames, keys 0600) and run ``nginx -t`` on the tree;
3. refused: write the reverse difference, so the last good tree stays on disk and in
   force, keep the error in ``errors``, and try again with the next snapshot;
4. accepted: bump the generation that the control socket answers, reload (SIGHUP to
   the nginx Portway supervises, or ``nginx -s reload`` for an external one) and wait
   until nginx's workers answer that generation: only then is the version applied.

nginx keeps its listening sockets across a reload and old workers finish their requests,
so a reload refuses no connection. Portway-managed nginx is restarted if it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from portway.drivers import nginx_files as files
from portway.drivers import nginx_http
from portway.drivers.nginx_config import NginxTree, Problem, render
from portway.drivers.nginx_options import NginxOptions
from portway.errors import ConfigError, PortwayError
from portway.router import Snapshot

log = logging.getLogger("portway.drivers.nginx")
_DIRS = ("conf", "logs", "run", "temp")


@dataclass(frozen=True, kw_only=True, slots=True)
class NginxSettings:
    """``--nginx-binary``, ``--nginx-prefix`` and ``--nginx-external``, plus timings."""

    prefix: Path
    binary: str = "nginx"
    external: bool = False
    options: NginxOptions = field(default_factory=NginxOptions)
    coalesce: float = 0.05  # seconds to gather a burst of snapshots into one reload
    reload_interval: float = 0.5  # at least this long between two reloads
    reload_timeout: float = 15.0  # until the new workers answer
    restart_backoff: float = 1.0


class NginxDriver:
    """A data plane made of nginx: ``apply`` snapshots, read ``applied_version``."""

    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings
        self.prefix = settings.prefix.resolve()
        self.conf = self.prefix / "conf"
        socket_path = str(self.prefix / "run" / "ctl.sock")
        self.options = replace(settings.options, control_socket=socket_path)
        self.applied_version: int | None = None
        self.errors: tuple[str, ...] = ()
        self.problems: tuple[Problem, ...] = ()
        self.reloads = 0
        self._good: NginxTree | None = None
        self._latest: Snapshot | None = None
        self._generation = 0
        self._wake = asyncio.Event()
        self._applied = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._failed: int | None = None  # the last version refused
        self._confirmed = False  # nginx answered the current generation
        self._last_reload = -1e9

    # -- the interface ---------------------------------------------------------------

    async def start(self) -> None:
        """Write the empty tree, check it and start (or reload) nginx."""
        self.prefix.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(self._fresh_tree)
        tree = render(Snapshot(version=0), self.options)
        await asyncio.to_thread(files.carry_out, self.conf, files.diff(None, tree))
        await self._write_generation()
        ok, output = await self._test()
        if not ok:
            raise ConfigError(f"nginx -t refused Portway's base configuration: {output}")
        self._good = tree
        self._task = asyncio.create_task(self._run(), name="nginx-driver")
        if not self.settings.external:
            await self._spawn()
            await self._confirm()
            self._supervisor = asyncio.create_task(self._supervise(), name="nginx-supervisor")
            return
        try:  # the operator's nginx may not run yet: it is reloaded with each snapshot
            await self._reload()
            await self._confirm()
        except ConfigError as err:
            self.errors = (err.message,)

    def apply(self, snapshot: Snapshot, changed_ids: Iterable[str] = ()) -> None:
        """Hand a snapshot over; call it on the driver's event loop (it wakes a task).
        It is applied soon after, once for a whole burst. ``changed_ids`` is accepted
        for the data-plane interface: the tree is diffed file by file, needing no hint."""
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
            # The rest of the burst joins in; under a stream of changes, reloads are also
            # spaced, since each one retires workers and their keep-alive connections.
            spacing = self._last_reload + self.settings.reload_interval - time.monotonic()
            await asyncio.sleep(max(self.settings.coalesce, spacing))
            self._wake.clear()
            snapshot = self._latest
            if snapshot is None or (self.applied_version or -1) >= snapshot.version:
                continue
            try:
                await self._round(snapshot)
            except PortwayError as err:
                self._refused(snapshot, err.message)
            except OSError as err:
                self._refused(snapshot, f"nginx tree could not be written: {err}")
            except Exception as err:  # a bug must not end the only task that applies
                log.exception("applying snapshot %s to nginx failed", snapshot.version)
                self._refused(snapshot, f"applying to nginx failed: {err!r}")
            async with self._applied:
                self._applied.notify_all()

    async def _round(self, snapshot: Snapshot) -> None:
        tree = await asyncio.to_thread(render, snapshot, self.options)
        if files.same(self._good, tree) and self._confirmed:
            self._accepted(snapshot, tree)
            return
        change = files.diff(self._good, tree)
        await asyncio.to_thread(files.carry_out, self.conf, change)
        ok, output = await self._test()
        if not ok:
            undo = files.diff(tree, self._good or tree)
            await asyncio.to_thread(files.carry_out, self.conf, undo)
            raise ConfigError(f"nginx -t refused snapshot {snapshot.version}: {output}")
        self._good = tree  # on disk and tested: what a refused tree rolls back to
        await self._write_generation()
        old = await asyncio.to_thread(self._workers)
        await self._reload()
        await self._confirm(old)
        self._accepted(snapshot, tree)

    def _accepted(self, snapshot: Snapshot, tree: NginxTree) -> None:
        self.applied_version = snapshot.version
        self.problems = tree.problems
        self.errors = ()

    def _refused(self, snapshot: Snapshot, message: str) -> None:
        log.error("%s", message)
        self._failed = snapshot.version
        self.errors = (message,)

    # -- nginx -----------------------------------------------------------------------

    def _args(self, *extra: str) -> list[str]:
        return [
            self.settings.binary,
            "-p",
            f"{self.prefix}/",
            "-c",
            str(self.conf / "nginx.conf"),
            *extra,
        ]

    def _fresh_tree(self) -> None:
        shutil.rmtree(self.conf, ignore_errors=True)  # ours alone: rebuilt from the store
        for name in _DIRS:
            (self.prefix / name).mkdir(parents=True, exist_ok=True)

    async def _write_generation(self) -> None:
        self._generation += 1
        text = nginx_http.generation(self._generation)
        await asyncio.to_thread(files.write_file, self.conf / nginx_http.GENERATION, text)

    async def _test(self) -> tuple[bool, str]:
        code, output = await run_command(self._args("-t", "-q"))
        return code == 0, output

    async def _reload(self) -> None:
        self.reloads += 1
        self._last_reload = time.monotonic()
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGHUP)
            return
        if self.settings.external:
            code, output = await run_command(self._args("-s", "reload"))
            if code != 0:
                raise ConfigError(f"nginx -s reload failed: {output}")

    async def _confirm(self, old: frozenset[int] = frozenset()) -> None:
        """Wait until nginx's new workers answer the current generation and every
        worker of the ``old`` ones has stopped accepting (it says it is shutting down
        once it closed its listeners, or it is gone): from then on, every new
        connection gets the new tree."""
        deadline = time.monotonic() + self.settings.reload_timeout
        want = str(self._generation)
        self._confirmed = False
        while time.monotonic() < deadline:
            answered = await _ask(self.options.control_socket) == want
            if answered and not (old & await asyncio.to_thread(self._workers)):
                await asyncio.sleep(0.005)  # the title changes just before the close
                self._confirmed = True
                return
            process = self._process
            if process is not None and process.returncode is not None and not self._supervisor:
                raise ConfigError(f"nginx exited at start: {self._stderr_tail()}")
            await asyncio.sleep(0.01)
        raise ConfigError(f"nginx did not take generation {want} within the reload timeout")

    def _workers(self) -> frozenset[int]:
        """The pids of the master's workers that still accept connections."""
        try:
            master = int((self.prefix / "run" / "nginx.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return frozenset()
        return frozenset(_accepting_children(master))

    async def _spawn(self) -> None:
        stderr = open(self.prefix / "logs" / "stderr.log", "ab")  # noqa: SIM115 (child owns it)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._args("-g", "daemon off;"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=stderr,
            )
        except OSError as err:
            raise ConfigError(f"cannot start {self.settings.binary}: {err}") from err
        finally:
            stderr.close()

    async def _supervise(self) -> None:
        while True:
            process = self._process
            assert process is not None
            code = await process.wait()
            if self._closing:
                return
            message = f"nginx exited with {code}; restarting: {self._stderr_tail()}"
            log.error("%s", message)
            self.errors = (message,)
            await asyncio.sleep(self.settings.restart_backoff)
            with contextlib.suppress(ConfigError):
                await self._spawn()

    def _stderr_tail(self) -> str:
        path = self.prefix / "logs" / "stderr.log"
        try:
            return path.read_text(errors="replace")[-500:].strip()
        except OSError:
            return ""

    async def _stop_process(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGQUIT)  # graceful: in-flight requests finish
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run_command(args: list[str]) -> tuple[int, str]:
    try:
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as err:
        raise ConfigError(f"cannot run {args[0]}: {err}") from err
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace").strip()


def _accepting_children(master: int) -> list[int]:
    """Children of ``master`` whose title is not ``... is shutting down`` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command, which may hold spaces.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == str(master) and b"shutting down" not in cmdline:
            found.append(int(entry.name))
    return found


async def _ask(socket_path: str) -> str | None:
    """The generation nginx answers on its control socket, None while it cannot."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path), 1)
    except (OSError, TimeoutError):
        return None
    try:
        writer.write(b"GET /generation HTTP/1.0\r\nHost: portway\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 2)
    except (OSError, TimeoutError):
        return None
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode(errors="replace").strip() if head.startswith(b"HTTP/1.1 200") else None
