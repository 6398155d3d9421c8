"""Domain rules that live on the proxy model itself."""

from __future__ import annotations

from portway.model import Backend


def test_a_backend_of_weight_zero_is_draining() -> None:
    assert Backend(id="a", address="10.0.0.1", port=80, weight=0).draining
    assert not Backend(id="b", address="10.0.0.1", port=80, weight=1).draining
