"""The built-in data plane: a thin asyncio shell (uvloop + httptools) over protocol/ and router/.

``server`` (DataPlane: listeners, snapshot, sweep timer), ``client`` (one Protocol per
client connection), ``upstream`` (one Protocol per backend connection), ``pool`` (idle
connection bookkeeping, pure), ``plans`` (balancer state per proxy), ``settings``.
"""

from portway.dataplane.server import DataPlane
from portway.dataplane.settings import DataPlaneSettings

__all__ = ["DataPlane", "DataPlaneSettings"]
