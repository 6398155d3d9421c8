"""The nginx driver: applies snapshots to a real nginx through its configuration tree.

One task (``ApplyLoop``) owns the tree on disk and the nginx process. ``apply`` and
``set_down`` only record the latest snapshot and verdicts and wake that task, so a
burst of changes is one render, one ``nginx -t`` and one reload. Each round:

1. render (pure, in a thread: a large snapshot takes a while), with the members the
   active checks declare down marked ``down``, and compare with the tree
   nginx serves; an identical tree is applied without a reload;
2. write the difference (atomic renames, keys 0600) and run ``nginx -t`` on the tree;
3. refused: write the reverse difference, so the last good tree stays on disk and in
   force, keep the error in ``errors``, and try again with the next snapshot;
4. accepted: bump the generation that the control socket answers, reload (SIGHUP to
   the nginx Portway supervises, or ``nginx -s reload`` for an external one) and wait
   until nginx's workers answer that generation: only then is the version applied.

nginx keeps its listening sockets across a reload and old workers finish their requests,
so a reload refuses no connection. Portway-managed nginx is restarted if it exits.

``purge`` (the API's) waits for the snapshots offered before it, then asks the cache
purge module on the control socket once per URL (drivers/nginx_cache.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from portway.cache.store import Purge
from portway.drivers import file_tree as files
from portway.drivers import nginx_cache, nginx_http, ticket_files
from portway.drivers.apply_loop import ApplyLoop, Down
from portway.drivers.daemon import Daemon, run_command
from portway.drivers.file_tree import FileTree
from portway.drivers.nginx_config import render
from portway.drivers.nginx_options import NginxOptions
from portway.drivers.problems import Problem
from portway.errors import ConfigError, DependencyError, ValidationError
from portway.router import Snapshot
from portway.tls.tickets import NO_KEYS, TicketKeys

_DIRS = ("conf", "logs", "run", "temp", "cache")


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
    """A data plane made of nginx: ``apply`` snapshots, read ``loop.applied_version``."""

    name = "nginx"

    def __init__(self, settings: NginxSettings) -> None:
        self.settings = settings
        self.prefix = settings.prefix.resolve()
        self.conf = self.prefix / "conf"
        socket_path = str(self.prefix / "run" / "ctl.sock")
        module = settings.options.stream_module
        if module is not None and not Path(module).is_file():
            module = None  # not installed: tcp and tls-passthrough ports are refused
        purge_module = settings.options.cache_purge_module
        if purge_module is not None and not Path(purge_module).is_file():
            purge_module = None  # not installed: proxies with cache.enabled are refused
        self.options = replace(
            settings.options,
            control_socket=socket_path,
            stream_module=module,
            cache_purge_module=purge_module,
            cache_refused=_unreachable_cache(self.prefix, settings.options.user),
        )
        self.reloads = 0
        self.loop = ApplyLoop(self._round, name="nginx", delay=self._delay)
        self.daemon = Daemon(
            "nginx",
            self._args("-g", "daemon off;"),
            self.prefix / "logs" / "stderr.log",
            stop_signal=signal.SIGQUIT,  # graceful: in-flight requests finish
            backoff=settings.restart_backoff,
            on_exit=self.loop.report,
        )
        self._good: FileTree | None = None
        self._generation = 0
        self._confirmed = False  # nginx answered the current generation
        self._last_reload = -1e9
        self._tickets: TicketKeys = NO_KEYS
        self._ticket_dir = self.prefix / "tickets"

    # -- the interface ---------------------------------------------------------------

    @property
    def errors(self) -> tuple[str, ...]:
        return self.loop.errors  # why the last snapshot was refused; empty once one applies

    @property
    def problems(self) -> tuple[Problem, ...]:
        return self.loop.problems  # what the applied render said about the proxies

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
        self.loop.start()
        if not self.settings.external:
            await self.daemon.spawn()
            await self._confirm()
            self.daemon.supervise()
            return
        try:  # the operator's nginx may not run yet: it is reloaded with each snapshot
            await self._reload()
            await self._confirm()
        except ConfigError as err:
            self.loop.report(err.message)

    def apply(self, snapshot: Snapshot, changed_ids: Iterable[str] = ()) -> None:
        """Hand a snapshot over; call it on the driver's event loop (it wakes a task).
        It is applied soon after, once for a whole burst. ``changed_ids`` is accepted
        for the data-plane interface: the tree is diffed file by file, needing no hint."""
        self.loop.offer(snapshot)

    def set_down(self, down: Down) -> None:
        """The active checks' verdicts: a reload, coalesced like snapshots (nginx OSS
        cannot mark a server down at runtime)."""
        self.loop.set_down(down)

    def set_ticket_keys(self, keys: TicketKeys) -> None:
        """The tier's TLS ticket keys: written as ``ssl_session_ticket_key`` files, a
        reload (coalesced like snapshots)."""
        self._tickets = keys
        self.loop.rerender()

    async def wait_applied(self, version: int, timeout: float = 30.0) -> bool:
        """Wait until ``version`` (or a later one) is applied or refused; True if applied."""
        return await self.loop.wait_applied(version, timeout)

    async def purge(self, proxy_id: str, purge: Purge) -> int:
        """The API's purge, after every snapshot offered before it: one request per URL
        to the cache purge module on the control socket; the entries it dropped.
        Raises ValidationError for what nginx cannot purge (nginx_cache)."""
        snapshot = await self.loop.settled()
        route = snapshot.routes.get(proxy_id) if snapshot is not None else None
        if route is None or not nginx_cache.cached(route.proxy, self.options):
            return 0  # served without a cache: nothing is stored
        gone = 0
        for path, host, target in nginx_cache.purge_requests(route.proxy, purge):
            gone += await _purge_one(self.options.control_socket, path, host, target)
        return gone

    async def close(self) -> None:
        await self.loop.close()
        await self.daemon.stop()

    # -- one round -------------------------------------------------------------------

    def _delay(self) -> float:
        # The rest of the burst joins in; under a stream of changes, reloads are also
        # spaced, since each one retires workers and their keep-alive connections.
        spacing = self._last_reload + self.settings.reload_interval - time.monotonic()
        return max(self.settings.coalesce, spacing)

    async def _round(self, snapshot: Snapshot, down: Down) -> tuple[Problem, ...]:
        keys = ticket_files.ordered(self._tickets, time.time()) if self.options.https else []
        paths = await asyncio.to_thread(ticket_files.write_keys, self._ticket_dir, keys)
        self.options = replace(self.options, ticket_keys=paths)
        tree = await asyncio.to_thread(render, snapshot, self.options, down)
        if files.same(self._good, tree) and self._confirmed:
            return tree.problems
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
        await asyncio.to_thread(ticket_files.remove_others, self._ticket_dir, paths)
        return tree.problems

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
        process = self.daemon.process
        if self.daemon.running and process is not None:
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
            if self.daemon.failed_at_start:
                raise ConfigError(f"nginx exited at start: {self.daemon.log_tail()}")
            await asyncio.sleep(0.01)
        raise ConfigError(f"nginx did not take generation {want} within the reload timeout")

    def _workers(self) -> frozenset[int]:
        """The pids of the master's workers that still accept connections."""
        try:
            master = int((self.prefix / "run" / "nginx.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return frozenset()
        return frozenset(_accepting_children(master))


def _unreachable_cache(prefix: Path, user: str | None) -> str | None:
    """Why nginx's workers could not open the cache under ``prefix``, or None. Started
    by root without a ``user``, they run as ``nobody``: every directory above the cache
    must let others through, or each cached request would be nginx's own 500."""
    if os.geteuid() != 0 or user is not None:
        return None  # as the operator's user: it owns the prefix, or chose the user
    for directory in (prefix, *prefix.parents):
        try:
            mode = directory.stat().st_mode
        except OSError:
            continue  # made later, by Portway (0755)
        if not mode & stat.S_IXOTH:
            return (
                f"nginx's workers (nobody) cannot enter {directory} to reach the cache"
                f" under {prefix}: proxies with cache.enabled are refused"
            )
    return None


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


async def _purge_one(socket_path: str, path: str, host: str, target: str) -> int:
    """1 if the module dropped the entry of ``host`` and ``target``, 0 if none was held."""
    for value in (host, target):
        if not value or not all("!" <= c <= "~" for c in value):
            raise ValidationError(f"{value!r} cannot be purged", field="purge.urls")
    request = (
        f"GET {path} HTTP/1.0\r\nHost: portway\r\n{nginx_cache.HOST_HEADER}: {host}\r\n"
        f"{nginx_cache.TARGET_HEADER}: {target}\r\n\r\n"
    )
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path), 5)
    except (OSError, TimeoutError) as err:
        raise DependencyError(f"nginx's control socket did not answer: {err}") from err
    try:
        writer.write(request.encode("ascii"))
        data = await asyncio.wait_for(reader.read(), 5)
    except (OSError, TimeoutError) as err:
        raise DependencyError(f"nginx did not answer a purge: {err}") from err
    finally:
        writer.close()
    status = data.split(b" ", 2)[1:2]
    if status == [b"200"]:
        return 1
    if status == [b"404"]:
        return 0
    raise DependencyError(f"nginx answered a purge with {data[:40]!r}")


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
