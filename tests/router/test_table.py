"""Route table matching: exact host, one-level wildcard, longest segment-aware prefix."""

from hypothesis import given
from hypothesis import strategies as st

from portway.model import Proxy
from portway.router import RouteTable, normalize_request_host


def proxy(pid: str, hostname: str, prefix: str = "/") -> Proxy:
    return Proxy(id=pid, project="p", hostname=hostname, path_prefix=prefix)


def matched(table: RouteTable, host: str, path: str) -> str | None:
    route = table.match(host, path)
    return None if route is None else route.proxy.id


TABLE = RouteTable.build(
    [
        proxy("root", "tools.example.org"),
        proxy("tool", "tools.example.org", "/tool"),
        proxy("deep", "tools.example.org", "/tool/deep"),
        proxy("wild", "*.example.org"),
        proxy("wildapi", "*.example.org", "/api"),
        proxy("only", "only.example.org", "/only"),
    ]
)


def test_exact_host_wins_over_wildcard() -> None:
    assert matched(TABLE, "tools.example.org", "/") == "root"


def test_longest_prefix_wins() -> None:
    assert matched(TABLE, "tools.example.org", "/tool/deep/x") == "deep"
    assert matched(TABLE, "tools.example.org", "/tool/x") == "tool"
    assert matched(TABLE, "tools.example.org", "/tool") == "tool"


def test_prefix_matches_on_segment_boundary_only() -> None:
    assert matched(TABLE, "tools.example.org", "/toolbox") == "root"


def test_wildcard_matches_one_level_only() -> None:
    assert matched(TABLE, "x.example.org", "/") == "wild"
    assert matched(TABLE, "x.example.org", "/api/v1") == "wildapi"
    assert matched(TABLE, "a.b.example.org", "/") is None


def test_exact_host_without_matching_prefix_falls_back_to_wildcard() -> None:
    assert matched(TABLE, "only.example.org", "/only/x") == "only"
    assert matched(TABLE, "only.example.org", "/other") == "wild"


def test_unknown_host_matches_nothing() -> None:
    assert matched(TABLE, "nothere.org", "/") is None


def test_with_changes_returns_new_table_and_leaves_old_intact() -> None:
    new = TABLE.with_changes(
        upserts=[proxy("tool", "other.example.net", "/")], removed=["deep", "missing"]
    )
    assert matched(new, "tools.example.org", "/tool/deep") == "root"
    assert matched(new, "other.example.net", "/") == "tool"
    assert matched(TABLE, "tools.example.org", "/tool/deep") == "deep"
    assert len(new) == len(TABLE) - 1


def test_removing_last_proxy_of_a_host_forgets_the_host() -> None:
    new = TABLE.with_changes(removed=["wild", "wildapi"])
    assert matched(new, "x.example.org", "/") is None


def test_request_host_normalization() -> None:
    assert normalize_request_host("Tools.Example.ORG.:8080") == "tools.example.org"
    assert normalize_request_host("[::1]:8080") == "[::1]"
    assert normalize_request_host("host:abc") is None
    assert normalize_request_host("") is None
    assert normalize_request_host("[::1") is None


labels = st.sampled_from(["a", "b", "c"])
hosts = st.builds(lambda a, b: f"{a}.{b}.org", labels, labels)
prefixes = st.lists(st.sampled_from(["x", "y", "xy"]), max_size=3).map(lambda s: "/" + "/".join(s))
paths = st.lists(st.sampled_from(["x", "y", "xy", "z"]), max_size=4).map(
    lambda s: "/" + "/".join(s)
)


@given(st.lists(st.tuples(hosts, prefixes), max_size=12, unique=True), hosts, paths)
def test_match_is_the_longest_segment_prefix_on_the_host(
    entries: list[tuple[str, str]], host: str, path: str
) -> None:
    proxies = [proxy(f"p{i}", h, p) for i, (h, p) in enumerate(entries)]
    table = RouteTable.build(proxies)

    def covers(prefix: str) -> bool:
        return prefix == "/" or path == prefix or path.startswith(prefix + "/")

    candidates = [p for p in proxies if p.hostname == host and covers(p.path_prefix)]
    route = table.match(host, path)
    if not candidates:
        assert route is None
    else:
        assert route is not None
        best = max(len(p.path_prefix) for p in candidates)
        assert len(route.proxy.path_prefix) == best
        assert covers(route.prefix)


@given(
    st.lists(st.tuples(hosts, prefixes), max_size=10, unique=True),
    st.lists(st.integers(0, 9), max_size=5),
)
def test_incremental_changes_equal_a_full_rebuild(
    entries: list[tuple[str, str]], removed: list[int]
) -> None:
    proxies = [proxy(f"p{i}", h, p) for i, (h, p) in enumerate(entries)]
    gone = {f"p{i}" for i in removed}
    incremental = RouteTable.build(proxies).with_changes(removed=gone)
    full = RouteTable.build([p for p in proxies if p.id not in gone])
    for h in ("a.a.org", "a.b.org", "b.c.org", "c.c.org"):
        for path in ("/", "/x", "/x/y", "/xy", "/y/x"):
            a, b = incremental.match(h, path), full.match(h, path)
            assert (a and a.proxy.id) == (b and b.proxy.id)
