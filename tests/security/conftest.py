"""The API fixture of tests/api, for the attacks that go through the API."""

from tests.api.conftest import api

__all__ = ["api"]
