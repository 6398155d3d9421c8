"""The control process: store, service, API, reconciler, and the data plane (in-process or
as workers). This is the only place that knows how the parts are wired together."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
import sys
from collections.abc import Callable, Generator, Mapping
from datetime import UTC, datetime

import uvicorn
from starlette.applications import Starlette

from portway import __version__
from portway.api.app import create_app
from portway.api.convert import PurgeFn
from portway.auth.provision import api_tokens
from portway.cache.store import Purge
from portway.dataplane.tls import new_context
from portway.dns.node import DnsCheckJob, node_records
from portway.drivers import client_limits
from portway.errors import ConfigError
from portway.health.monitor import HealthMonitor, Target
from portway.health.state import DOWN, Health
from portway.model.backend_policy import BackendPolicy
from portway.model.node import Node
from portway.observability.propagation import Propagation
from portway.reconciler.reconciler import Reconciler
from portway.router import Snapshot
from portway.runtime.config import Listen, ServeConfig, TlsListen, name_of_node
from portway.runtime.datadir import prepare_data_dir
from portway.runtime.driver_plane import DriverPlane
from portway.runtime.haproxy_plane import haproxy_plane
from portway.runtime.inprocess import InProcessPlane
from portway.runtime.nginx_plane import nginx_plane
from portway.runtime.node_reports import NodeReporter
from portway.runtime.plane_handle import DataPlaneHandle
from portway.runtime.reload import Reloader
from portway.runtime.report import Gauge, NodeReport
from portway.runtime.ticket_keeper import TicketKeeper, check_ticket_support
from portway.runtime.worker_process import settle_heap
from portway.runtime.workers import WorkerPool
from portway.service import Actor, Service
from portway.sources.wiring import build_sources, toolforge_domains
from portway.store import Store, open_store
from portway.store.keyfile import FileKeyring
from portway.store.sealing import prepare_keys
from portway.tls.local_ca import ensure_default_certificate
from portway.tls.tickets import Schedule
from portway.tls.upstream import upstream_context

log = logging.getLogger("portway")


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the control process owns shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _bind(listen: Listen) -> socket.socket:
    family = socket.AF_INET6 if ":" in listen.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((listen.host, listen.port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def run(config: ServeConfig, *, reload: Callable[[], ServeConfig] | None = None) -> int:
    """Run until SIGTERM/SIGINT, then drain and return the exit code. On SIGHUP,
    ``reload`` (the config file read again) gives the settings to switch to."""
    policy = config.backend_policy  # first: a bad CIDR stops the start with one line
    upstream = upstream_context(config.dataplane.upstream_ca_file)  # and a bad CA bundle
    config = _with_tools(config)  # a bad Toolforge combination stops it the same way
    dns = node_records(config)  # [dns] (else none); a missing setting stops it the same way
    reread = None if reload is None else _rereader(reload)
    prepare_data_dir(config.data_dir, leave=config.secret_key_path)
    keys = FileKeyring(config.secret_key_path)
    store = await asyncio.to_thread(open_store, config.database_url, keys)
    # Only a lone SQLite node may make its own key: PostgreSQL nodes must share one.
    may_create = config.secret_key_file is None and store.dialect == "sqlite"
    await asyncio.to_thread(prepare_keys, store, keys, may_create=may_create)
    service = Service(
        store,
        backend_policy=policy,
        dns=dns,
        quota_defaults=config.quota_defaults,
        listen_policy=config.listen_policy,
    )
    authenticate, close_auth = api_tokens(config, service)  # [keystone]: its tokens too
    secret = await asyncio.to_thread(service.ensure_admin_token, config.admin_token)
    tls = await asyncio.to_thread(_tls_listen, config)

    handle = _data_plane(config, tls, policy)
    monitor = HealthMonitor(
        lambda health: handle.set_health(_down(health)),
        backend_policy=policy,
        upstream_tls=upstream,
    )

    propagation = Propagation()
    if isinstance(handle, WorkerPool):
        handle.on_applied = propagation.applied

    def publish(snapshot: Snapshot, changed: set[str] | None) -> None:
        propagation.published(snapshot.version, reconciler.pending_since)
        handle.publish(snapshot, changed)
        monitor.update(snapshot, changed)
        propagation.applied(handle.applied_version)  # the in-process plane: at once

    reconciler = Reconciler(store, publish, cache_quota_default=config.quota_cache_bytes)
    first = await asyncio.to_thread(reconciler.load_initial)
    keeper = _ticket_keeper(config, store, handle)
    if keeper is not None:
        await keeper.refresh()  # before the first handshake, so none gets a local ticket
    await handle.start(first)
    reconciler.commit(first, None)
    settle_heap()
    # Writes through other nodes' APIs: their notification wakes the reconciler at once
    # (its own poll stays the fallback). A lone SQLite node's writes are all its own.
    # store.close() stops the watcher.
    if store.dialect == "postgresql":
        store.listen(reconciler.notify)

    api_sock = _bind(config.api)
    metrics_sock = _bind(config.metrics) if config.metrics is not None else None
    sources = build_sources(config, service, snapshot=lambda: reconciler.snapshot or first)
    driven = handle if isinstance(handle, DriverPlane) else None  # nginx or HAProxy
    report = NodeReport(
        reconciler,
        monitor,
        handle,
        extra=_gauges(sources.gauges, driven),
        propagation=propagation,
    )
    app = create_app(
        service,
        extra_routes=report.admin_routes(service),
        backend_health=report.backend_health,
        dataplane_status=driven.proxy_status if driven is not None else None,
        purge=purger(handle, asyncio.get_running_loop()),
        authenticate=authenticate,
        health_details=lambda: {"sources": sources.states()},
        readiness=report.readiness,
    )
    server = _ApiServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False))
    servers = [server]
    tasks = [
        asyncio.create_task(server.serve(sockets=[api_sock]), name="api"),
        asyncio.create_task(reconciler.run(), name="reconciler"),
    ]
    if config.dns_server is not None and config.dns_check_interval > 0:
        checks = DnsCheckJob(
            lambda: service.check_dns(Actor.system("dns-check")), config.dns_check_interval
        )
        tasks.append(asyncio.create_task(checks.run(), name="dns-check"))
    if metrics_sock is not None:
        # Its own listener and app: only /metrics, no token, never the API's routes.
        metrics_app = Starlette(routes=report.routes())
        metrics_server = _ApiServer(
            uvicorn.Config(metrics_app, log_level="warning", lifespan="off", access_log=False)
        )
        servers.append(metrics_server)
        tasks.append(
            asyncio.create_task(metrics_server.serve(sockets=[metrics_sock]), name="metrics")
        )

    if keeper is not None:
        tasks.append(asyncio.create_task(keeper.run(), name="ticket-keys"))
    reporter = NodeReporter(store, reconciler, handle, _identity(config))
    tasks.append(asyncio.create_task(reporter.run(), name="node-report"))
    sources.start()
    _banner(config, secret, first)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # nginx habit: SIGHUP re-reads the config file (and never kills the node).
    loop.add_signal_handler(signal.SIGHUP, Reloader(config, reread, handle).reload)
    await stop.wait()

    log.info("draining (up to %.0fs)", config.drain_timeout)
    await sources.stop()  # no new outside changes while the node drains
    await handle.close()
    await monitor.close()
    for each in servers:
        each.should_exit = True
    for task in tasks:
        if task.get_name() not in ("api", "metrics"):
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    close_auth()
    store.close()
    return 0


def _data_plane(
    config: ServeConfig, tls: TlsListen | None, policy: BackendPolicy
) -> DataPlaneHandle:
    """nginx or HAProxy (``--dataplane nginx|haproxy``), the built-in plane in this
    process (``--workers 0``) or the worker processes."""
    if config.plane_kind != "builtin":
        refused = client_limits.start_problem(config.dataplane, config.plane_kind)
        if refused is not None:
            raise ConfigError(refused)
    if config.plane_kind == "nginx":
        if config.workers:
            raise ConfigError("--workers: nginx has its own worker processes; leave it 0")
        return nginx_plane(
            config.http,
            config.dataplane,
            prefix=config.nginx_prefix or config.data_dir / "nginx",
            binary=config.nginx_binary,
            external=config.nginx_external,
            tls=tls,
            access_log=config.access_log,
            listen_policy=config.listen_policy,
        )
    if config.plane_kind == "haproxy":
        if config.workers:
            raise ConfigError("--workers: HAProxy has its own threads; leave it 0")
        return haproxy_plane(
            config.http,
            config.dataplane,
            prefix=config.haproxy_prefix or config.data_dir / "haproxy",
            binary=config.haproxy_binary,
            external=config.haproxy_external,
            cache_memory=config.haproxy_cache_memory,
            tls=tls,
            listen_policy=config.listen_policy,
        )
    if config.workers == 0:
        return InProcessPlane(
            config.http,
            config.dataplane,
            config.drain_timeout,
            tls=tls,
            access_log=config.access_log,
            backend_policy=policy,
            listen_policy=config.listen_policy,
        )
    return WorkerPool(
        config.workers,
        config.http,
        config.dataplane,
        config.drain_timeout,
        tls=tls,
        access_log=config.access_log,
        backend_policy=policy,
        listen_policy=config.listen_policy,
        nice=config.worker_nice,
    )


def _ticket_keeper(
    config: ServeConfig, store: Store, handle: DataPlaneHandle
) -> TicketKeeper | None:
    """The keeper of the tier's shared TLS ticket keys, when this node serves HTTPS and
    ``--tls-ticket-rotation`` is not 0."""
    if config.https is None or not config.tls_ticket_rotation:
        return None
    if config.plane_kind == "builtin":
        check_ticket_support(new_context())
    schedule = Schedule(config.tls_ticket_rotation)
    return TicketKeeper(store, handle, schedule, name_of_node(config))


def _identity(config: ServeConfig) -> Node:
    """The fixed part of this node's reports."""
    listeners = [config.http, config.https]
    started = datetime.now(UTC)
    return Node(
        name=name_of_node(config),
        addresses=tuple(str(x) for x in listeners if x is not None),
        version=__version__,
        applied_revision=0,
        digest="",
        started_at=started,
        last_seen=started,
        report_interval=config.node_report_interval,
    )


def _gauges(
    sources: Callable[[], Mapping[str, Gauge]], driven: DriverPlane | None
) -> Callable[[], Mapping[str, Gauge]]:
    """The sources' gauges, and an external data plane's."""
    if driven is None:
        return sources
    return lambda: {**sources(), **driven.gauges()}


def _rereader(reload: Callable[[], ServeConfig]) -> Callable[[], ServeConfig]:
    return lambda: _with_tools(reload())


def _with_tools(config: ServeConfig) -> ServeConfig:
    """The data plane's Toolforge hostnames, derived from the toolforge_* settings."""
    tools = toolforge_domains(config)
    return dataclasses.replace(
        config, dataplane=dataclasses.replace(config.dataplane, toolforge=tools)
    )


def _down(health: Mapping[Target, Health]) -> frozenset[Target]:
    return frozenset(t for t, h in health.items() if h.status == DOWN)


def _tls_listen(config: ServeConfig) -> TlsListen | None:
    """The HTTPS listener with the default certificate, made by the local CA on first
    start (``ca.pem`` in the data dir is what clients may choose to trust)."""
    if config.https is None:
        return None
    chain, key = ensure_default_certificate(config.data_dir, config.default_zone)
    return TlsListen(listen=config.https, chain=chain, key=key)


def _banner(config: ServeConfig, secret: str | None, first: Snapshot) -> None:
    out = sys.stdout
    workers = "in-process" if config.workers == 0 else f"{config.workers} workers"
    print(f"Portway is running (data dir {config.data_dir}, {workers})", file=out)
    print(f"  API:        http://{config.api}/   (PORTWAY_URL=http://{config.api})", file=out)
    print(f"  HTTP proxy: http://{config.http}/", file=out)
    metrics = f"http://{config.metrics}/metrics" if config.metrics is not None else "off"
    print(f"  metrics:    {metrics}", file=out)
    if config.https is not None:
        ca = config.data_dir / "ca.pem"
        print(
            f"  HTTPS proxy: https://{config.https}/   (default *.{config.default_zone})", file=out
        )
        print(f"  local CA: {ca}", file=out)
    print(f"  config revision {first.version}, {len(first.routes)} proxies", file=out)
    if secret:
        print(f"  admin token (shown once, store it): {secret}", file=out)
        print(f"    export PORTWAY_TOKEN={secret}", file=out)
    out.flush()


def purger(handle: DataPlaneHandle, loop: asyncio.AbstractEventLoop) -> PurgeFn:
    """The API's purge (its handlers run in threads) as a call on the control loop,
    where the handle lives; the handle bounds the wait for its workers."""

    def purge(proxy_id: str, wanted: Purge) -> int:
        future = asyncio.run_coroutine_threadsafe(handle.purge(proxy_id, wanted), loop)
        return future.result(timeout=30)

    return purge
