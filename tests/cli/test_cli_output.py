"""The renderers and the ADDR[:PORT] parser, without any I/O."""

from __future__ import annotations

import pytest

from portway.cli.options import Address, parse_address
from portway.cli.output import cell, render, render_table


def test_table_columns_follow_preference_and_skip_absent_ones():
    rows = [{"name": "a", "id": "1", "extra": "x"}]
    assert render_table(rows, ("id", "name", "created_at")) == "ID  NAME\n1   a"


def test_table_without_preference_shows_every_key():
    assert render_table([{"a": 1}, {"b": True}]) == "A  B\n1  -\n-  yes"


def test_cells():
    assert cell(None) == "-"
    assert cell(False) == "no"
    assert cell({"a": 1, "b": None}) == "a=1, b=-"
    assert cell([1, 2]) == "1, 2"


def test_yaml_keeps_key_order():
    assert render({"b": 1, "a": 2}, "yaml") == "b: 1\na: 2"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1", Address("10.0.0.1", None)),
        ("10.0.0.1:80", Address("10.0.0.1", 80)),
        ("backend.internal:8080", Address("backend.internal", 8080)),
        ("[::1]:8080", Address("::1", 8080)),
        ("[::1]", Address("::1", None)),
        ("fd00::1", Address("fd00::1", None)),
    ],
)
def test_parse_address(text, expected):
    assert parse_address(text) == expected


@pytest.mark.parametrize("text", ["", ":80", "h:0", "h:x", "h:65536", "[::1", "[::1]x"])
def test_parse_address_rejects(text):
    with pytest.raises(ValueError):
        parse_address(text)
