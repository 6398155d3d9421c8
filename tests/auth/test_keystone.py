"""KeystoneTokens against a real Keystone, with clients doing what OpenStack's do."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portway.auth.keystone import KeystoneTokens
from portway.auth.tokens import TokenChain, TokenValidator
from portway.errors import AuthError, ForbiddenError, KeystoneError
from portway.model import Proxy, Role
from portway.service import Actor, Service
from portway.store import open_store
from tests.auth.conftest import session_for
from tests.auth.keystone_server import LONG_USER, Keystone
from tests.dns.bind import free_port

# The session's first test starts Keystone (a minute or more on two busy cores).
pytestmark = pytest.mark.timeout(600)


class Counting(httpx.HTTPTransport):
    """The real transport, noting each request of Portway's that Keystone answered (not
    those sent on a kept-alive connection uWSGI had closed, which are sent again)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.sent.append(f"{request.method} {request.url.path}")
        return response


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def wire() -> Counting:
    return Counting()


@pytest.fixture
def validator(keystone: Keystone, wire: Counting) -> Iterator[KeystoneTokens]:
    tokens = KeystoneTokens(keystone.config(), transport=wire)
    yield tokens
    tokens.close()


def test_keystone_keeps_its_state_in_its_temporary_directory(keystone: Keystone) -> None:
    assert Path("/etc/keystone").exists() == keystone.etc_keystone_existed
    assert (keystone.root / "keystone.db").is_file()
    assert any((keystone.root / "fernet-keys").iterdir())


def test_a_keystoneauth_session_finds_the_proxy_api_and_its_token_maps_to_the_project(
    keystone: Keystone, validator: KeystoneTokens
) -> None:
    session = session_for(keystone, "alice", "alpha")
    endpoint = session.get_endpoint(service_type="proxy", interface="public")
    alpha = keystone.project_ids["alpha"]
    # Keystone put the token's project id in place of $(tenant_id)s.
    assert endpoint == f"http://127.0.0.1:{keystone.api_port}/dynamicproxy-api/v1/{alpha}"
    identity = validator.validate(session.get_token())
    assert (identity.project_id, identity.project_name, identity.user_name) == (
        alpha,
        "alpha",
        "alice",
    )
    assert identity.role is Role.MEMBER
    assert identity.project == endpoint.rsplit("/", 1)[1]
    assert identity.actor() == Actor(name="keystone:alice", role=Role.MEMBER, project=alpha)


@pytest.mark.parametrize(
    ("user", "role", "writes"),
    [("adam", Role.ADMIN, True), ("alice", Role.MEMBER, True), ("rita", Role.READER, False)],
)
def test_keystone_roles_map_to_portway_roles(
    keystone: Keystone, validator: KeystoneTokens, user: str, role: Role, writes: bool
) -> None:
    actor = validator.authenticate(keystone.user_token(user))
    assert (actor.role, actor.role.can_write, actor.is_admin) == (role, writes, False)


def test_a_token_of_project_beta_is_not_a_token_of_alpha(
    keystone: Keystone, validator: KeystoneTokens
) -> None:
    actor = validator.authenticate(keystone.user_token("bob"))
    assert actor.project == keystone.project_ids["beta"] != keystone.project_ids["alpha"]


def test_a_token_without_a_known_role_is_refused(
    keystone: Keystone, validator: KeystoneTokens
) -> None:
    with pytest.raises(ForbiddenError, match="none of the roles admin, member or reader"):
        validator.validate(keystone.user_token("olga"))


def test_an_unscoped_token_is_refused(keystone: Keystone, validator: KeystoneTokens) -> None:
    with pytest.raises(AuthError, match="not scoped to a project"):
        validator.validate(keystone.token("alice", "alice-pw", None))


def test_an_invalid_token_is_refused(keystone: Keystone, validator: KeystoneTokens) -> None:
    with pytest.raises(AuthError) as caught:
        validator.validate("gAAAAA" + secrets.token_urlsafe(140))
    assert caught.value.status == 401
    assert "Keystone does not know it" in caught.value.message


def test_a_malformed_token_never_reaches_keystone(
    validator: KeystoneTokens, wire: Counting
) -> None:
    with pytest.raises(AuthError, match="malformed token"):
        validator.validate("token\r\nX-Subject-Token: someone-elses")
    assert wire.sent == []


def test_a_revoked_token_is_refused_once_the_cache_lets_go(
    keystone: Keystone, wire: Counting
) -> None:
    clock = Clock()
    validator = KeystoneTokens(keystone.config(cache_ttl=30), transport=wire, clock=clock)
    token = keystone.user_token("alice")
    assert validator.validate(token).project_name == "alpha"
    keystone.revoke(token)
    assert validator.validate(token).project_name == "alpha"  # cached: the known trade-off
    clock.offset = 30
    with pytest.raises(AuthError, match="Keystone does not know it, or it has expired"):
        validator.validate(token)


def test_a_valid_token_is_asked_about_once_per_cache_period(
    keystone: Keystone, wire: Counting
) -> None:
    clock = Clock()
    validator = KeystoneTokens(keystone.config(cache_ttl=30), transport=wire, clock=clock)
    token = keystone.user_token("rita")
    for _ in range(5):
        assert validator.validate(token).role is Role.READER
    assert wire.sent == ["POST /v3/auth/tokens", "GET /v3/auth/tokens"]  # service token, check
    clock.offset = 31
    validator.validate(token)
    assert wire.sent.count("GET /v3/auth/tokens") == 2


def test_a_revoked_service_token_is_renewed(keystone: Keystone, wire: Counting) -> None:
    validator = KeystoneTokens(keystone.config(cache_ttl=0), transport=wire)
    validator.validate(keystone.user_token("alice"))
    # Disabling a user revokes its tokens: Portway's service token is now refused.
    keystone.set_enabled("portway", False)
    keystone.set_enabled("portway", True)
    time.sleep(1.1)  # a token issued in the revocation's second counts as revoked
    assert validator.validate(keystone.user_token("bob")).project_name == "beta"
    assert wire.sent == [
        "POST /v3/auth/tokens",
        "GET /v3/auth/tokens",
        "GET /v3/auth/tokens",  # 401: the service token was revoked
        "POST /v3/auth/tokens",  # a new one
        "GET /v3/auth/tokens",
    ]


def test_an_expiring_service_token_is_replaced_before_it_expires(
    keystone: Keystone, wire: Counting
) -> None:
    clock = Clock()
    validator = KeystoneTokens(keystone.config(cache_ttl=0), transport=wire, clock=clock)
    validator.validate(keystone.user_token("alice"))
    clock.offset = 3600 - 59  # Keystone's tokens here last an hour
    validator.validate(keystone.user_token("alice"))
    assert wire.sent.count("POST /v3/auth/tokens") == 2
    assert "GET /v3/auth/tokens" in wire.sent[-1]


def test_wrong_service_credentials_give_503_and_never_accept(keystone: Keystone) -> None:
    validator = KeystoneTokens(keystone.config(password="wrong"))
    with pytest.raises(KeystoneError) as caught:
        validator.validate(keystone.user_token("alice"))
    assert caught.value.status == 503
    assert caught.value.message == (
        f"Keystone at {keystone.url} refused the service credentials of 'portway': 401 UNAUTHORIZED"
    )


def test_a_hanging_keystone_gives_503_after_the_timeout(keystone: Keystone) -> None:
    validator = KeystoneTokens(keystone.config(timeout=1.0))
    token = keystone.user_token("alice")
    keystone.pause()
    try:
        with pytest.raises(KeystoneError) as caught:
            validator.validate(token)
    finally:
        keystone.resume()
    assert caught.value.status == 503
    assert caught.value.message == (
        f"Keystone at {keystone.url} did not answer within 1 s: tokens cannot be checked"
    )


@pytest.fixture
def second_keystone(keystone: Keystone) -> Iterator[Keystone]:
    """Another uWSGI on the same state, for a test that stops it."""
    other = Keystone(root=keystone.root, port=free_port(), project_ids=keystone.project_ids)
    other.start()
    yield other
    other.stop()


def test_a_stopped_keystone_gives_503_while_portways_own_tokens_keep_working(
    second_keystone: Keystone, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'portway.db'}")
    service = Service(store)
    admin = Actor.system("test")
    service.create_project(admin, "alpha")
    _, own = service.create_token(admin, "alpha", Role.MEMBER)
    keystone_tokens = KeystoneTokens(second_keystone.config(cache_ttl=0))
    chain: TokenValidator = TokenChain(service, keystone_tokens)
    token = second_keystone.user_token("alice")
    assert chain.authenticate(token).project == second_keystone.project_ids["alpha"]
    assert chain.authenticate(own).project == "alpha"

    second_keystone.stop()
    assert chain.authenticate(own).project == "alpha"
    for refused in (token, "not-a-portway-token"):
        with pytest.raises(KeystoneError) as caught:
            chain.authenticate(refused)
        assert caught.value.status == 503
        assert caught.value.message.startswith(f"cannot reach Keystone at {second_keystone.url}: ")
        assert caught.value.message.endswith("tokens cannot be checked")
    store.close()


def test_a_keystone_user_with_a_255_character_name_can_write_and_is_in_the_change_log(
    keystone: Keystone, validator: KeystoneTokens, store_url: str
) -> None:
    # "keystone:" + a 255-character user name does not fit the change log's actor column
    # (255): PostgreSQL refused the whole write.
    assert len(LONG_USER) == 255
    actor = validator.authenticate(keystone.user_token(LONG_USER))
    store = open_store(store_url)
    try:
        service = Service(store)
        service.create_project(Actor.system("test"), actor.project or "")
        service.create_proxy(
            actor, actor.project or "", Proxy(id="", project="", hostname="long.test")
        )
        [change] = service.list_changes(actor, actor.project or "", limit=1)
        assert change.actor.startswith("keystone:lll") and len(change.actor) <= 255
    finally:
        store.close()
