"""expected_codes parsing is bounded, linear and total: any string gives a set or a
ValidationError, never another exception and never a slow parse (issue 7, defect 7)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import ValidationError
from portway.health.expect import MAX_EXPECTED_CODES, parse_expected_codes


def test_overlong_text_is_refused_without_parsing_it() -> None:
    text = ",".join(["200-599"] * 100_000)  # 800 KB: took 0.9 s before the bound
    started = time.perf_counter()
    with pytest.raises(ValidationError) as info:
        parse_expected_codes(text)
    assert time.perf_counter() - started < 0.01
    assert info.value.field == "health_check.expected_codes"
    assert str(MAX_EXPECTED_CODES) in info.value.message


def test_worst_case_at_the_bound_is_fast() -> None:
    text = ",".join(["100-599"] * (MAX_EXPECTED_CODES // 8))[:MAX_EXPECTED_CODES].rstrip("-,")
    started = time.perf_counter()
    for _ in range(100):
        assert len(parse_expected_codes(text)) == 500
    assert (time.perf_counter() - started) / 100 < 0.001


@pytest.mark.parametrize("text", ["²00", "2\u06600", "0200", "1" * 5000, "200-" + "9" * 5000])
def test_non_ascii_digits_and_long_numbers_are_validation_errors(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_expected_codes(text[:MAX_EXPECTED_CODES])


ranges = st.lists(
    st.tuples(st.integers(100, 599), st.integers(0, 50)).map(
        lambda t: (t[0], min(599, t[0] + t[1]))
    ),
    min_size=1,
    max_size=20,
)


@given(ranges)
def test_ranges_give_their_union(parts: list[tuple[int, int]]) -> None:
    text = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in parts)
    expected = {c for a, b in parts for c in range(a, b + 1)}
    assert parse_expected_codes(text) == expected


@given(st.text(max_size=MAX_EXPECTED_CODES))
def test_any_text_gives_codes_or_a_validation_error(text: str) -> None:
    try:
        codes = parse_expected_codes(text)
    except ValidationError as err:
        assert err.field == "health_check.expected_codes"
    else:
        assert codes and all(100 <= c <= 599 for c in codes)
