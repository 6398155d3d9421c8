"""The service-backed ToolRoutes over a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from portway.errors import AuthError, ConflictError, RefusedAddressError, ValidationError
from portway.model import Proxy, Role
from portway.model.backend_policy import BackendPolicy
from portway.protocol.registration import parse_destination
from portway.service import Actor, BackendSpec, Service
from portway.service.tools import ToolRouteSpec
from portway.sources.tool_service import ServiceToolRoutes
from portway.sources.tools import ToolRoute
from portway.store import open_store

ADMIN = Actor.system("test")
DOMAIN = "toolforge.org"
# The API listener on 127.0.0.1:8443; loopback otherwise allowed, as in the tests.
POLICY = BackendPolicy.build(allow=["127.0.0.0/8", "10.0.0.0/8"], listeners=[("127.0.0.1", 8443)])


@pytest.fixture
def service(store_url: str) -> Iterator[Service]:
    store = open_store(store_url)
    yield Service(store, backend_policy=POLICY)
    store.close()


def routes_of(service: Service, source: str = "toolforge") -> ServiceToolRoutes:
    return ServiceToolRoutes(service, source=source, canonical_domain=DOMAIN)


def route(tool: str, pattern: str, dest: str, canonical: bool = False) -> ToolRoute:
    return ToolRoute(
        tool=tool, pattern=pattern, destination=parse_destination(dest), canonical=canonical
    )


def tool_proxy(service: Service, tool: str) -> Proxy:
    return service.get_proxy(ADMIN, tool, f"{tool}.{DOMAIN}")


def patterns(service: Service, tool: str) -> dict[str | None, str]:
    return {b.pattern: f"{b.address}:{b.port}" for b in tool_proxy(service, tool).backends}


def test_first_registration_creates_project_proxy_and_route_by_the_source(
    service: Service,
) -> None:
    routes_of(service).register(route("alpha", ".*", "http://10.0.0.9:4242"))
    proxy = tool_proxy(service, "alpha")
    assert proxy.project == "alpha"
    assert proxy.path_prefix == "/"
    assert proxy.source == "toolforge"
    assert proxy.toolforge is not None and not proxy.toolforge.canonical
    assert proxy.tls.redirect_http and proxy.tls.hsts
    [backend] = proxy.backends
    assert (backend.pattern, backend.address, backend.port) == (".*", "10.0.0.9", 4242)
    assert backend.source == "toolforge"
    [change] = service.list_changes(ADMIN, "alpha")
    assert (change.actor, change.kind, change.action) == ("toolforge", "tool", "register")


def test_a_member_token_of_the_tool_sees_its_routes(service: Service) -> None:
    tools = routes_of(service)
    tools.register(route("alpha", ".*", "http://10.0.0.9:4242"))
    _, secret = service.create_token(ADMIN, "alpha", Role.MEMBER)
    member = service.authenticate(secret)
    [proxy] = service.list_proxies(member, "alpha")
    assert proxy.hostname == "alpha.toolforge.org"
    assert tools.tool_for_token(secret) == "alpha"


def test_a_reader_token_does_not_identify_a_tool(service: Service) -> None:
    routes_of(service).register(route("alpha", ".*", "http://10.0.0.9:4242"))
    _, secret = service.create_token(ADMIN, "alpha", Role.READER)
    with pytest.raises(AuthError):
        routes_of(service).tool_for_token(secret)


def test_registering_a_pattern_again_replaces_its_destination(service: Service) -> None:
    tools = routes_of(service)
    tools.register(route("alpha", ".*", "http://10.0.0.9:4242"))
    tools.register(route("alpha", "/api.*", "http://10.0.0.9:4242"))
    tools.register(route("alpha", ".*", "10.0.0.10:80"))
    assert patterns(service, "alpha") == {".*": "10.0.0.10:80", "/api.*": "10.0.0.9:4242"}


def test_the_same_registration_again_keeps_the_backend(service: Service) -> None:
    tools = routes_of(service)
    tools.register(route("alpha", ".*", "http://10.0.0.9:4242"))
    first = tool_proxy(service, "alpha").backends[0].id
    tools.register(route("alpha", ".*", "http://10.0.0.9:4242"))
    assert [b.id for b in tool_proxy(service, "alpha").backends] == [first]


def test_register_canonical_marks_and_unregister_clears_route_and_mark(service: Service) -> None:
    tools = routes_of(service)
    tools.register(route("alpha", ".*", "http://10.0.0.9:4242", canonical=True))
    tools.register(route("alpha", "/x.*", "http://10.0.0.9:4243"))
    proxy = tool_proxy(service, "alpha")
    assert proxy.toolforge is not None and proxy.toolforge.canonical
    tools.unregister("alpha", ".*")
    proxy = tool_proxy(service, "alpha")
    assert proxy.toolforge is not None and not proxy.toolforge.canonical
    assert patterns(service, "alpha") == {"/x.*": "10.0.0.9:4243"}
    actions = [c.action for c in service.list_changes(ADMIN, "alpha")]
    assert actions == ["unregister", "register", "register"]


def test_unregistering_what_is_not_there_writes_nothing(service: Service) -> None:
    revision = service.store.current_revision()
    routes_of(service).unregister("nobody", ".*")
    assert service.store.current_revision() == revision


def test_a_tool_cannot_touch_another_tools_routes(service: Service) -> None:
    tools = routes_of(service)
    tools.register(route("alpha", ".*", "http://10.0.0.9:4242"))
    tools.register(route("beta", ".*", "http://10.0.0.20:80"))
    tools.unregister("beta", ".*")  # beta's identity names beta's proxy only
    tools.register(route("beta", ".*", "http://10.0.0.21:80"))
    assert patterns(service, "alpha") == {".*": "10.0.0.9:4242"}
    assert patterns(service, "beta") == {".*": "10.0.0.21:80"}


def test_a_source_cannot_overwrite_or_remove_another_sources_route(service: Service) -> None:
    routes_of(service).register(route("alpha", ".*", "http://10.0.0.9:4242"))
    kube = routes_of(service, "kubernetes")
    with pytest.raises(ConflictError):
        kube.register(route("alpha", ".*", "http://10.0.0.30:80"))
    with pytest.raises(ConflictError):
        kube.unregister("alpha", ".*")
    kube.register(route("alpha", "/k8s.*", "http://10.0.0.30:80"))
    assert patterns(service, "alpha") == {".*": "10.0.0.9:4242", "/k8s.*": "10.0.0.30:80"}


def test_a_hostname_an_ordinary_proxy_routes_is_never_taken_over(service: Service) -> None:
    service.create_project(ADMIN, "other")
    draft = Proxy(id="", project="", hostname="alpha.toolforge.org")
    service.create_proxy(ADMIN, "other", draft, [BackendSpec(address="10.0.0.1", port=80)])
    with pytest.raises(ConflictError):
        routes_of(service).register(route("alpha", ".*", "http://10.0.0.9:4242"))
    assert service.get_project(ADMIN, "other")
    with pytest.raises(Exception, match="not found"):
        service.get_project(ADMIN, "alpha")  # nothing half-applied: no project either


@pytest.mark.parametrize(
    "dest",
    ["http://169.254.169.254:80", "http://127.0.0.1:8443", "http://0.0.0.0:80", "1.1.1.1:80"],
)
def test_the_backend_policy_refuses_what_it_refuses_for_the_api(
    service: Service, dest: str
) -> None:
    with pytest.raises(RefusedAddressError):
        routes_of(service).register(route("alpha", ".*", dest))
    with pytest.raises(Exception, match="not found"):
        service.get_project(ADMIN, "alpha")


@pytest.mark.parametrize(
    ("tool", "pattern", "dest"),
    [
        ("alpha", "(a", "http://10.0.0.9:80"),  # does not compile
        ("alpha", "(?=x)", "http://10.0.0.9:80"),  # look-ahead: RE2 refuses it
        ("alpha", "x" * 1025, "http://10.0.0.9:80"),  # too long
        ("a.b", ".*", "http://10.0.0.9:80"),  # not one DNS label
        ("Alpha", ".*", "http://10.0.0.9:80"),
    ],
)
def test_bad_routes_are_refused(service: Service, tool: str, pattern: str, dest: str) -> None:
    with pytest.raises(ValidationError):
        routes_of(service).register(route(tool, pattern, dest))


def test_an_https_destination_is_a_tls_backend(service: Service) -> None:
    tools = routes_of(service)
    tools.register(route("alpha", ".*", "https://10.0.0.9:4443"))
    [backend] = tool_proxy(service, "alpha").backends
    assert (backend.address, backend.port, backend.tls) == ("10.0.0.9", 4443, True)
    tools.register(route("alpha", ".*", "http://10.0.0.9:4443"))  # same address, plain now
    [backend] = tool_proxy(service, "alpha").backends
    assert not backend.tls


def test_a_resync_that_only_switches_to_https_is_a_change(service: Service) -> None:
    kube = routes_of(service, "kubernetes")
    kube.resync([route("alpha", ".*", "http://10.0.0.9:443")])
    kube.resync([route("alpha", ".*", "https://10.0.0.9:443")])
    assert [b.tls for b in tool_proxy(service, "alpha").backends] == [True]


def test_resync_replaces_only_the_sources_own_routes(service: Service) -> None:
    routes_of(service).register(route("alpha", ".*", "http://10.0.0.9:4242"))
    kube = routes_of(service, "kubernetes")
    kube.register(route("alpha", "/old.*", "http://10.0.0.30:80"))
    kube.register(route("gone", ".*", "http://10.0.0.31:80"))
    kube.resync(
        [
            route("alpha", "/new.*", "http://10.0.0.32:80"),
            route("gamma", ".*", "http://10.0.0.33:80"),
            route("delta", ".*", "http://169.254.169.254:80"),  # refused: the rest applies
        ]
    )
    assert patterns(service, "alpha") == {".*": "10.0.0.9:4242", "/new.*": "10.0.0.32:80"}
    assert patterns(service, "gone") == {}
    assert patterns(service, "gamma") == {".*": "10.0.0.33:80"}
    assert tool_proxy(service, "gamma").source == "kubernetes"
    with pytest.raises(Exception, match="not found"):
        service.get_project(ADMIN, "delta")
    revision = service.store.current_revision()
    kube.resync(
        [route("alpha", "/new.*", "http://10.0.0.32:80"), route("gamma", ".*", "10.0.0.33:80")]
    )
    assert service.store.current_revision() == revision  # nothing changed: nothing written


def test_every_proxy_a_resync_changes_reaches_the_change_feed(service: Service) -> None:
    kube = routes_of(service, "kubernetes")
    kube.register(route("gone", ".*", "http://10.0.0.31:80"))
    gone = tool_proxy(service, "gone").id
    before = service.store.current_revision()
    kube.resync([route("alpha", ".*", "http://10.0.0.32:80"), route("beta", ".*", "10.0.0.1:80")])
    _, changed = service.store.changed_proxy_ids(before)
    # The reconciler rebuilds only these: a proxy missing here would never be served.
    assert changed == {gone, tool_proxy(service, "alpha").id, tool_proxy(service, "beta").id}


KUBE = Actor.system("kubernetes")


def spec(tool: str, address: str, port: int = 80) -> ToolRouteSpec:
    return ToolRouteSpec(
        tool=tool, hostname=f"{tool}.{DOMAIN}", pattern=".*", address=address, port=port
    )


def commits_during(service: Service, call: Callable[[], object]) -> list[int]:
    """The revisions each commit ended at while ``call`` ran (one entry per commit)."""
    seen: list[int] = []
    service.store.add_commit_listener(seen.append)
    call()
    return seen


def test_a_resync_writes_many_tools_per_transaction_with_one_change_row_each(
    service: Service,
) -> None:
    specs = [spec(f"t{i}", f"10.0.1.{i + 1}") for i in range(7)]
    before = service.store.current_revision()
    commits = commits_during(service, lambda: service.resync_tool_routes(KUBE, specs, batch=3))
    assert commits == [before + 3, before + 6, before + 7]  # 3 transactions, 7 revisions
    changes = service.store.read(lambda r: r.list_changes(project=None, since=before))
    assert sorted(c.revision for c in changes) == list(range(before + 1, before + 8))
    assert {(c.kind, c.action, c.actor) for c in changes} == {("tool", "resync", KUBE.name)}
    assert sorted(c.project or "" for c in changes) == [f"t{i}" for i in range(7)]
    for c in changes:  # each row is that tool's proxy, stamped with that row's revision
        assert tool_proxy(service, c.project or "").revision == c.revision


def test_a_refused_tool_in_a_batch_leaves_no_trace_and_the_rest_applies(
    service: Service,
) -> None:
    specs = [spec("alpha", "10.0.1.1"), spec("meta", "169.254.169.254"), spec("beta", "10.0.1.2")]
    before = service.store.current_revision()
    result = service.resync_tool_routes(KUBE, specs, batch=10)
    assert result.changed == 2 and [tool for tool, _ in result.refused] == ["meta"]
    assert service.store.current_revision() == before + 2  # no revision for the refused one
    assert patterns(service, "alpha") == {".*": "10.0.1.1:80"}
    assert patterns(service, "beta") == {".*": "10.0.1.2:80"}
    with pytest.raises(Exception, match="not found"):
        service.get_project(ADMIN, "meta")  # its project was never written


def test_a_batch_of_only_refused_tools_writes_no_revision(service: Service) -> None:
    before = service.store.current_revision()
    result = service.resync_tool_routes(KUBE, [spec("meta", "169.254.169.254")])
    assert result.changed == 0 and len(result.refused) == 1
    assert service.store.current_revision() == before


def test_a_batched_resync_still_never_touches_what_others_made(service: Service) -> None:
    routes_of(service).register(route("alpha", "/api.*", "http://10.0.0.9:4242"))
    kube = [spec(f"t{i}", f"10.0.1.{i + 1}") for i in range(4)] + [spec("alpha", "10.0.0.40")]
    service.resync_tool_routes(KUBE, kube, batch=2)
    assert patterns(service, "alpha") == {"/api.*": "10.0.0.9:4242", ".*": "10.0.0.40:80"}
    service.resync_tool_routes(KUBE, [], batch=2)  # the cluster emptied: only its routes go
    assert patterns(service, "alpha") == {"/api.*": "10.0.0.9:4242"}
    assert all(patterns(service, f"t{i}") == {} for i in range(4))
