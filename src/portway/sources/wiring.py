"""The Toolforge, Kubernetes and OpenShift parts of ``portway serve``, built from its
config.

``portway serve`` (runtime/control.py) needs three things from here:

- ``toolforge_domains(config)`` → the ``DataPlaneSettings.toolforge`` value of every data
  plane (None: no tool routing);
- ``build_sources(config, service, snapshot=...)`` → the ``SourceSet`` to ``start()``
  in the control process (and ``stop()`` on shutdown); its ``states()`` and
  ``gauges()`` feed ``/healthz`` and ``/metrics``. ``snapshot`` returns the snapshot in
  force; the /list listener serves from it;
- the ``Service`` built with the node's backend policy, so that tools get the same
  address checks as the API.
"""

from __future__ import annotations

from collections.abc import Callable

from portway.errors import ConfigError
from portway.model import TlsSettings
from portway.router import Snapshot
from portway.router.tools import ToolDomains
from portway.runtime.config import ServeConfig
from portway.service import Service
from portway.sources.base import Source, SourceSet
from portway.sources.kubernetes import KubernetesSettings, KubernetesWatcher
from portway.sources.openshift import OpenShiftSource, openshift_settings
from portway.sources.openshift_service import ServiceOpenShiftRoutes
from portway.sources.registration import ListenerSettings, RegistrationListener
from portway.sources.tool_list import ToolList
from portway.sources.tool_service import TOOL_TLS, ServiceToolRoutes

_NEEDS_DOMAIN = (
    "toolforge_listen",
    "toolforge_legacy_domain",
    "toolforge_default_backend",
    "toolforge_list",
    "kubernetes_api",
)


def check(config: ServeConfig) -> None:
    """The Toolforge settings that only make sense with a canonical domain."""
    if config.toolforge_canonical_domain is not None:
        return
    for key in _NEEDS_DOMAIN:
        if getattr(config, key) is not None:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(f"{flag} needs --toolforge-canonical-domain", field=flag)


def toolforge_domains(config: ServeConfig) -> ToolDomains | None:
    check(config)
    if config.toolforge_canonical_domain is None:
        return None
    return ToolDomains.build(
        config.toolforge_canonical_domain,
        legacy=config.toolforge_legacy_domain,
        default_backend=config.toolforge_default_backend,
        https=config.https is not None,  # redirect only when there is an HTTPS listener
    )


def build_sources(
    config: ServeConfig,
    service: Service,
    *,
    snapshot: Callable[[], Snapshot] | None = None,
) -> SourceSet:
    """Every configured source (none configured: an empty set)."""
    check(config)
    domain = config.toolforge_canonical_domain
    sources: list[Source] = []
    if domain is not None:
        tls = TOOL_TLS if config.https is not None else TlsSettings()
        if config.toolforge_listen is not None:
            routes = ServiceToolRoutes(
                service, source="toolforge", canonical_domain=domain, tls=tls
            )
            listener = ListenerSettings(
                host=config.toolforge_listen.host,
                port=config.toolforge_listen.port,
                user_prefix=config.toolforge_user_prefix,
                ident_port=config.toolforge_identd_port,
            )
            sources.append(RegistrationListener(routes, listener))
        if config.kubernetes_api is not None:
            routes = ServiceToolRoutes(
                service, source="kubernetes", canonical_domain=domain, tls=tls
            )
            watch = KubernetesSettings(
                api_url=config.kubernetes_api,
                token_file=config.kubernetes_token_file,
                ca_file=config.kubernetes_ca_file,
                label_selector=config.kubernetes_label_selector,
            )
            sources.append(KubernetesWatcher(routes, watch))
        if config.toolforge_list is not None:
            if snapshot is None:
                raise ConfigError("--toolforge-list needs the snapshot in force")
            listen = config.toolforge_list
            sources.append(ToolList(snapshot, domain, host=listen.host, port=listen.port))
    openshift = openshift_settings(config)
    if openshift is not None:
        events = ServiceOpenShiftRoutes(service, openshift.policy)
        sources.append(OpenShiftSource(events, openshift))
    return SourceSet(sources)
