"""Field rules applied by the service, tested on values alone."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.errors import ValidationError
from portway.model import HealthCheck, Proxy, SessionPersistence
from portway.service import validation


@pytest.mark.parametrize("value", [1, 80, 65535])
def test_ports_in_range_pass(value: int) -> None:
    assert validation.port(value, "port") == value


@pytest.mark.parametrize("value", [0, -1, 65536, True])
def test_ports_out_of_range_name_the_field(value: int) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.port(value, "backends[0].port")
    assert caught.value.field == "backends[0].port"


@pytest.mark.parametrize(("value", "ok"), [(0, True), (256, True), (257, False), (-1, False)])
def test_weight_range_is_0_to_256(value: int, ok: bool) -> None:
    if ok:
        assert validation.weight(value) == value
    else:
        with pytest.raises(ValidationError):
            validation.weight(value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("10.0.0.5", "10.0.0.5"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("Backend.SVC.", "backend.svc"),
        ("my_container", "my_container"),
    ],
)
def test_backend_addresses_are_ip_literals_or_hostnames(value: str, expected: str) -> None:
    assert validation.address(value) == expected


@pytest.mark.parametrize("value", ["", "bad host", "-x.org", "a..b", "x" * 64])
def test_bad_backend_addresses_are_rejected(value: str) -> None:
    with pytest.raises(ValidationError):
        validation.address(value)


def test_proxy_is_normalised() -> None:
    proxy = Proxy(id="x", project="p", hostname="WWW.Example.ORG.", path_prefix="/a/b/")
    result = validation.proxy(proxy)
    assert (result.hostname, result.path_prefix) == ("www.example.org", "/a/b")


@pytest.mark.parametrize(
    ("check", "field"),
    [
        (HealthCheck(type="udp"), "health_check.type"),
        (HealthCheck(path="x"), "health_check.path"),
        (HealthCheck(interval=0), "health_check.interval"),
        (HealthCheck(rise=0), "health_check.rise"),
        (HealthCheck(expected_codes="ok"), "health_check.expected_codes"),
    ],
)
def test_bad_health_checks_name_the_subfield(check: HealthCheck, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.health_check(check)
    assert caught.value.field == field


@pytest.mark.parametrize("name", ["projects", "zones", "-x", "a b", "x" * 65])
def test_project_names_reject_reserved_and_malformed(name: str) -> None:
    with pytest.raises(ValidationError):
        validation.project_name(name)


# -- strings that reach the wire (issue 7, defects 4 and 5) ----------------------------


@pytest.mark.parametrize(
    ("check", "field"),
    [
        (HealthCheck(method="GET / HTTP/1.1\r\nX: y\r\n\r\nGET"), "health_check.method"),
        (HealthCheck(method="GE T"), "health_check.method"),
        (HealthCheck(method=""), "health_check.method"),
        (HealthCheck(method="M" * 129), "health_check.method"),
        (HealthCheck(path="/\r\nX-Injected: yes"), "health_check.path"),
        (HealthCheck(path="/a b"), "health_check.path"),
        (HealthCheck(path="/%zz"), "health_check.path"),
        (HealthCheck(path="/a#b"), "health_check.path"),
        (HealthCheck(host="a.example.org\r\nX: y"), "health_check.host"),
        (HealthCheck(interval="5"), "health_check.interval"),  # type: ignore[arg-type]
        (HealthCheck(fall=True), "health_check.fall"),
        (HealthCheck(expected_codes=200), "health_check.expected_codes"),  # type: ignore[arg-type]
    ],
)
def test_probe_strings_follow_their_rfc_grammar(check: HealthCheck, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.health_check(check)
    assert caught.value.field == field


@pytest.mark.parametrize(
    "check",
    [
        HealthCheck(),
        HealthCheck(method="HEAD", path="/health?full=1&x=%2F"),
        HealthCheck(method="OPTIONS", path="//x/;p=1/@:", host="status.example.org"),
    ],
)
def test_valid_probes_pass_unchanged(check: HealthCheck) -> None:
    assert validation.health_check(check) is check


@pytest.mark.parametrize("kind", ["cookie", "app_cookie", "source_ip"])
@pytest.mark.parametrize("name", ["s\r\nX-Injected: yes", "a b", "a=b", "a;b", "", "é", "x" * 129])
def test_cookie_names_are_tokens(kind: str, name: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validation.session_persistence(SessionPersistence(type=kind, cookie_name=name))
    assert caught.value.field == "session_persistence.cookie_name"


def test_cookie_name_may_be_left_out_or_a_token() -> None:
    for name in (None, "JSESSIONID", "x" * 128):
        value = SessionPersistence(type="cookie", cookie_name=name)
        assert validation.session_persistence(value) is value


def test_proxy_refuses_a_crlf_cookie_name() -> None:
    bad = Proxy(
        id="x",
        project="p",
        hostname="a.example.org",
        session_persistence=SessionPersistence(type="cookie", cookie_name="a\r\nb: c"),
    )
    with pytest.raises(ValidationError) as caught:
        validation.proxy(bad)
    assert caught.value.field == "session_persistence.cookie_name"


def _stored(**fields: object) -> Proxy:
    base: dict[str, object] = {"id": "x", "project": "p", "hostname": "a.example.org"}
    return Proxy(**{**base, **fields})  # type: ignore[arg-type]


def test_problems_lists_every_broken_rule_in_field_order() -> None:
    bad = _stored(
        hostname="a b",
        session_persistence=SessionPersistence(type="cookie", cookie_name="a\r\nb"),
        health_check=HealthCheck(path="/\r\nX: y"),
        hash_key="header:a b",
    )
    assert [p.field for p in validation.problems(bad)] == [
        "session_persistence.cookie_name",
        "health_check.path",
        "hostname",
        "hash_key",
    ]
    assert validation.problems(_stored()) == ()


def test_problems_of_unreadable_stored_values_do_not_raise() -> None:
    # A hand-written row can hold any JSON type where a string belongs.
    odd = _stored(
        health_check=HealthCheck(method=["GET"]),  # type: ignore[arg-type]
        timeouts=None,
        path_prefix=None,
    )
    found = validation.problems(odd)
    assert [p.field for p in found] == ["health_check.method", "timeouts", "path_prefix"]
    assert "unreadable" in found[1].message


def test_the_api_refuses_exactly_what_problems_reports() -> None:
    for proxy in (
        _stored(),
        _stored(health_check=HealthCheck(method="G T")),
        _stored(session_persistence=SessionPersistence(type="x")),
        _stored(path_prefix="/a b"),
    ):
        found = validation.problems(proxy)
        if found:
            with pytest.raises(ValidationError) as caught:
                validation.proxy(proxy)
            assert caught.value.field == found[0].field
        else:
            validation.proxy(proxy)


settings_strategy = st.builds(
    HealthCheck,
    method=st.sampled_from(["GET", "G T", "HEAD", "GET\r\n"]),
    path=st.sampled_from(["/", "/a b", "/ok?x=1"]),
)
persistence_strategy = st.one_of(
    st.none(),
    st.builds(
        SessionPersistence,
        type=st.sampled_from(["cookie", "app_cookie", "nope"]),
        cookie_name=st.sampled_from([None, "sid", "a\r\nb"]),
    ),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a.example.org", "b.example.org", "bad host", "x"]),
            st.sampled_from(["/", "/t", "/a b"]),
            st.one_of(st.none(), settings_strategy),
            persistence_strategy,
        ),
        max_size=12,
    )
)
def test_a_screen_reports_what_problems_reports(rows: list[tuple[str, str, Any, Any]]) -> None:
    # Shared option objects, as the store's bulk decoder hands them out.
    shared: dict[object, object] = {}
    screen = validation.Screen()
    for i, (hostname, prefix, check, persistence) in enumerate(rows):
        check = shared.setdefault(check, check)
        persistence = shared.setdefault(persistence, persistence)
        proxy = _stored(
            id=str(i),
            hostname=hostname,
            path_prefix=prefix,
            health_check=check,
            session_persistence=persistence,
        )
        assert screen.problems(proxy) == validation.problems(proxy)
