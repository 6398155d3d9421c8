"""Rise/fall state machine and expected-code parsing."""

from __future__ import annotations

import pytest

from portway.errors import ValidationError
from portway.health.expect import parse_expected_codes
from portway.health.state import DOWN, UNKNOWN, UP, Health, observe


def run(results: str, rise: int = 2, fall: int = 3) -> list[str]:
    health = Health()
    seen = []
    for i, r in enumerate(results):
        health = observe(health, r == "+", rise=rise, fall=fall, at=float(i), error=None)
        seen.append(health.status)
    return seen


def test_backend_goes_up_after_rise_successes() -> None:
    assert run("++") == [UNKNOWN, UP]


def test_backend_goes_down_after_fall_failures_in_a_row() -> None:
    assert run("++--+---") == [UNKNOWN, UP, UP, UP, UP, UP, UP, DOWN]


def test_down_backend_needs_rise_successes_to_return() -> None:
    assert run("---+-++")[-4:] == [DOWN, DOWN, DOWN, UP]


def test_unknown_is_routable_down_is_not() -> None:
    assert Health().routable
    assert not Health(status=DOWN).routable


def test_last_error_is_kept_until_success() -> None:
    h = observe(Health(), False, rise=1, fall=1, at=1.0, error="status 500")
    assert (h.status, h.last_error, h.last_check) == (DOWN, "status 500", 1.0)
    h = observe(h, True, rise=1, fall=1, at=2.0, error=None)
    assert (h.status, h.last_error) == (UP, None)


@pytest.mark.parametrize(
    ("text", "inside", "outside"),
    [
        ("200-399", [200, 302, 399], [400, 199]),
        ("200,204", [200, 204], [201]),
        ("2xx", [200, 299], [300]),
        ("200, 300-301", [200, 300, 301], [302]),
    ],
)
def test_expected_codes(text: str, inside: list[int], outside: list[int]) -> None:
    codes = parse_expected_codes(text)
    assert all(c in codes for c in inside)
    assert not any(c in codes for c in outside)


@pytest.mark.parametrize("text", ["", "abc", "99", "200-100", "600", "2-x"])
def test_bad_expected_codes_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_expected_codes(text)
    assert info.value.field == "health_check.expected_codes"
