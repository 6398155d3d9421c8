"""The pure parts of token validation: role mapping, token shape, the cache's bounds
(the chain is tested with real validators in test_keystone.py)."""

from __future__ import annotations

import pytest

from portway.auth.tokens import (
    Identity,
    TokenCache,
    check_token_shape,
    portway_role,
)
from portway.errors import AuthError
from portway.model import Role


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def identity(project: str = "p1", expires_at: float = 10_000.0) -> Identity:
    return Identity(
        project_id=project,
        project_name=project,
        user_id="u1",
        user_name="alice",
        role=Role.MEMBER,
        expires_at=expires_at,
    )


@pytest.mark.parametrize(
    ("roles", "role"),
    [
        (["reader"], Role.READER),
        (["reader", "member"], Role.MEMBER),
        (["member", "admin", "reader", "manager"], Role.ADMIN),
        (["Member"], Role.MEMBER),
        (["observer", "service"], None),
        ([], None),
    ],
)
def test_the_highest_known_keystone_role_wins(roles: list[str], role: Role | None) -> None:
    assert portway_role(roles) is role


def test_a_keystone_admin_is_the_admin_of_its_project_only() -> None:
    actor = Identity(
        project_id="p1", project_name="alpha", user_id="u", user_name="adam",
        role=Role.ADMIN, expires_at=0,
    ).actor()  # fmt: skip
    assert (actor.project, actor.role, actor.is_admin) == ("p1", Role.ADMIN, False)


@pytest.mark.parametrize("token", ["", "a b", "tok\r\nX-Evil: 1", "é", "x" * 4097])
def test_tokens_that_cannot_be_a_header_value_are_refused(token: str) -> None:
    with pytest.raises(AuthError, match="malformed token"):
        check_token_shape(token)


def test_the_cache_keeps_a_token_for_its_ttl() -> None:
    clock = Clock()
    cache = TokenCache(size=8, ttl=30, clock=clock)
    cache.put("t1", identity())
    clock.now += 29.9
    assert cache.get("t1") == identity()
    clock.now += 0.1
    assert cache.get("t1") is None


def test_the_cache_never_keeps_a_token_past_its_expiry() -> None:
    clock = Clock()
    cache = TokenCache(size=8, ttl=30, clock=clock)
    cache.put("t1", identity(expires_at=clock.now + 5))
    clock.now += 5
    assert cache.get("t1") is None
    cache.put("t2", identity(expires_at=clock.now - 1))  # expired already: not kept
    assert len(cache) == 0


def test_the_cache_drops_the_least_recently_used_beyond_its_size() -> None:
    cache = TokenCache(size=2, ttl=30, clock=Clock())
    cache.put("t1", identity("p1"))
    cache.put("t2", identity("p2"))
    assert cache.get("t1") is not None  # t1 used: t2 is now the oldest
    cache.put("t3", identity("p3"))
    assert (cache.get("t1"), cache.get("t2")) == (identity("p1"), None)
    assert len(cache) == 2


def test_a_cache_of_size_or_ttl_zero_keeps_nothing() -> None:
    for size, ttl in ((0, 30), (8, 0)):
        cache = TokenCache(size=size, ttl=ttl, clock=Clock())
        cache.put("t1", identity())
        assert cache.get("t1") is None


def test_the_cache_keeps_no_secret() -> None:
    cache = TokenCache(size=8, ttl=30, clock=Clock())
    cache.put("the-secret", identity())
    assert all(b"the-secret" not in key for key in cache._entries)
