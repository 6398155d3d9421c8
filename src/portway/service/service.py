"""The ``Service`` facade: every operation, each taking the calling ``Actor`` first."""

from __future__ import annotations

from portway.service.backend_ops import BackendOps
from portway.service.certificates import CertificateOps
from portway.service.dns_ops import DnsOps
from portway.service.mappings import MappingOps
from portway.service.openshift import OpenShiftOps
from portway.service.projects import ProjectOps
from portway.service.proxies import ProxyOps
from portway.service.quotas import QuotaOps
from portway.service.tokens import TokenOps
from portway.service.tools import ToolOps
from portway.service.zones import ZoneOps


class Service(
    ProjectOps,
    TokenOps,
    ZoneOps,
    MappingOps,
    ProxyOps,
    BackendOps,
    CertificateOps,
    ToolOps,
    DnsOps,
    OpenShiftOps,
    QuotaOps,
):
    """The only path for configuration changes. Construct with ``Service(store)``
    (``dns=``: the ``DnsRecords`` the proxies' hostnames get; ``quota_defaults=``: the
    node's quotas, for projects without their own).

    Every method checks the actor's rights, validates input, and performs at most one
    store transaction. Errors are ``portway.errors`` subclasses carrying an HTTP status.
    """
