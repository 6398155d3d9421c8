"""The only path for configuration changes: validation, ownership, zones, provenance.

``Service(store)`` offers every operation; callers identify themselves with an
``Actor`` (from ``Service.authenticate(secret)`` or ``Actor.system(source)``). Callers
(the API, the CLI, the sources) import from here only: the limits the service enforces
and ``proxy_problems`` (the rules a stored proxy breaks) are part of that surface.
"""

from portway.service.auth import Actor
from portway.service.backends import MAX_BACKENDS, BackendSpec, ProxyBackend
from portway.service.certificates import MAX_NAME as MAX_CERTIFICATE_NAME
from portway.service.certificates import MAX_PEM
from portway.service.projects import MAX_CHANGES
from portway.service.service import Service
from portway.service.validation import MAX_DENY, MAX_RATE, MAX_WEIGHT
from portway.service.validation import problems as proxy_problems

__all__ = [
    "MAX_BACKENDS",
    "MAX_CERTIFICATE_NAME",
    "MAX_CHANGES",
    "MAX_DENY",
    "MAX_PEM",
    "MAX_RATE",
    "MAX_WEIGHT",
    "Actor",
    "BackendSpec",
    "ProxyBackend",
    "Service",
    "proxy_problems",
]
