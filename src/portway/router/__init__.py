"""Route tables: pure, immutable, swapped atomically by the data plane."""

from portway.router.snapshot import Snapshot
from portway.router.table import Route, RouteTable, normalize_request_host

__all__ = ["Route", "RouteTable", "Snapshot", "normalize_request_host"]
