"""Fixtures of tests/api (the API over a fresh store) and tests/dataplane (a real data
plane on loopback and origin servers), for the attacks that go through either."""

from tests.api.conftest import api
from tests.dataplane.conftest import make_origin, make_proxy, origin, proxy

__all__ = ["api", "make_origin", "make_proxy", "origin", "proxy"]
