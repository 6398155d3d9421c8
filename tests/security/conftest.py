"""The whole-system fixtures (real ``portway serve``, real backends) for the security tests."""

from tests.integration.conftest import backends, portway

__all__ = ["backends", "portway"]
