"""Which DNS changes a write makes (pure), and that proxy rows have one write path."""

from __future__ import annotations

import re
from pathlib import Path

from portway.service.hostnames import Step, steps

SERVICE = Path(__file__).resolve().parents[2] / "src" / "portway" / "service"


def test_a_first_proxy_claims_its_hostname() -> None:
    assert steps({"a.x": (0, 1)}) == (Step("claim", ("a.x",)),)


def test_a_second_proxy_on_a_hostname_changes_nothing() -> None:
    assert steps({"a.x": (1, 2)}) == ()


def test_the_last_proxy_going_releases_its_hostname() -> None:
    assert steps({"a.x": (1, 0)}) == (Step("release", ("a.x",)),)
    assert steps({"a.x": (2, 1)}) == ()


def test_a_rename_is_one_move() -> None:
    assert steps({"old.x": (1, 0), "new.x": (0, 1)}) == (Step("move", ("old.x", "new.x")),)


def test_a_rename_from_a_shared_hostname_claims_and_onto_one_releases() -> None:
    assert steps({"old.x": (2, 1), "new.x": (0, 1)}) == (Step("claim", ("new.x",)),)
    assert steps({"old.x": (1, 0), "new.x": (1, 2)}) == (Step("release", ("old.x",)),)


def test_claims_come_before_releases() -> None:
    found = steps({"a.x": (1, 0), "b.x": (1, 0), "c.x": (0, 1)})
    assert [s.verb for s in found] == ["claim", "release", "release"]


def test_only_proxy_rows_writes_proxy_rows() -> None:
    """Every insert, update and delete of a proxy row in the service goes through
    ProxyRows, so no write path can skip the DNS records."""
    writes = re.compile(r"\btx\.(insert_proxy|update_proxy|delete_proxy)\(")
    offenders = [
        f"{path.name}: {match.group(0)}"
        for path in sorted(SERVICE.glob("*.py"))
        if path.name != "hostnames.py"
        for match in writes.finditer(path.read_text())
    ]
    assert offenders == []
