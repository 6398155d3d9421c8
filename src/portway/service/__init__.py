"""The only path for configuration changes: validation, ownership, zones, provenance.

``Service(store)`` offers every operation; callers identify themselves with an
``Actor`` (from ``Service.authenticate(secret)`` or ``Actor.system(source)``).
"""

from portway.service.auth import Actor
from portway.service.backends import BackendSpec
from portway.service.service import Service

__all__ = ["Actor", "BackendSpec", "Service"]
