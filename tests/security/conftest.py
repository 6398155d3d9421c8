"""The security tests attack every layer, so they borrow each layer's real fixtures."""

from tests.api.conftest import api
from tests.dataplane.conftest import make_origin, make_proxy, origin, proxy
from tests.integration.conftest import backends, portway

__all__ = ["api", "backends", "make_origin", "make_proxy", "origin", "portway", "proxy"]
