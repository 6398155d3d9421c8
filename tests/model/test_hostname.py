"""Hostname and path-prefix rules (compat.md §1)."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import ValidationError
from portway.model.hostname import in_zone, normalize_hostname, normalize_path_prefix


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Wiki.Alpha.Example.ORG", "wiki.alpha.example.org"),
        ("wiki.example.org.", "wiki.example.org"),
        ("*.alpha.example.org", "*.alpha.example.org"),
        ("a-b.c0.example", "a-b.c0.example"),
        ("x" * 63 + ".org", "x" * 63 + ".org"),
    ],
)
def test_valid_hostnames_are_normalized(raw: str, expected: str) -> None:
    assert normalize_hostname(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost",
        "-bad.example.org",
        "bad-.example.org",
        "under_score.example.org",
        "x" * 64 + ".org",
        "a..b.org",
        "wiki.example.org..",
        "*.org.*",
        "a.*.example.org",
        "sp ace.example.org",
        ".".join(["abcdefghi"] * 26),
    ],
)
def test_invalid_hostnames_are_rejected_naming_the_field(raw: str) -> None:
    with pytest.raises(ValidationError) as info:
        normalize_hostname(raw)
    assert info.value.field == "hostname"


def test_wildcard_refused_where_not_allowed() -> None:
    with pytest.raises(ValidationError, match="wildcard"):
        normalize_hostname("*.example.org", wildcard_ok=False)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("/", "/"), ("/tool", "/tool"), ("/tool/", "/tool"), ("//a//b/", "/a/b")],
)
def test_path_prefixes_are_canonical(raw: str, expected: str) -> None:
    assert normalize_path_prefix(raw) == expected


@pytest.mark.parametrize("raw", ["", "tool", "/a/../b", "/a/./b", "/a b", "/%2e%2e", "/x?y"])
def test_bad_path_prefixes_are_rejected(raw: str) -> None:
    with pytest.raises(ValidationError):
        normalize_path_prefix(raw)


def test_zone_membership_needs_a_label_boundary() -> None:
    assert in_zone("wiki.example.org", "example.org")
    assert in_zone("*.example.org", "example.org")
    assert not in_zone("wiki.badexample.org", "example.org")


def test_a_zone_holds_its_own_name_and_one_label_under_it() -> None:
    assert in_zone("example.org", "example.org")
    assert not in_zone("a.wiki.example.org", "example.org")
    assert not in_zone("*.wiki.example.org", "example.org")


@given(
    st.from_regex(
        r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?){1,4}",
        fullmatch=True,
    ).filter(lambda name: not re.fullmatch(r"[0-9]+|0x[0-9a-f]*", name.rsplit(".", 1)[1]))
)
def test_normalization_is_idempotent(name: str) -> None:
    once = normalize_hostname(name.upper() + ".")
    assert normalize_hostname(once) == once == name
