"""Session persistence: a sticky client moves only when its backend stops being a candidate."""

from __future__ import annotations

from portway.balance.persistence import (
    Stickiness,
    backend_token,
    cookie_value,
    set_cookie_value,
)
from portway.model import Backend, SessionPersistence


def pool(n: int) -> list[Backend]:
    return [Backend(id=f"b{i}", address="127.0.0.1", port=9000 + i) for i in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_cookie_parsing() -> None:
    assert cookie_value('a=1; PORTWAY_SRV="abc"; b=2', "PORTWAY_SRV") == "abc"
    assert cookie_value("a=1", "PORTWAY_SRV") is None
    assert set_cookie_value("JSESSIONID=xyz; Path=/; HttpOnly", "JSESSIONID") == "xyz"
    assert set_cookie_value("OTHER=1", "JSESSIONID") is None


def test_inserted_cookie_pins_the_client_until_its_backend_goes() -> None:
    sticky = Stickiness(SessionPersistence(type="cookie"))
    backends = pool(3)
    header = sticky.bind(backends[1], "c", request_cookie="", set_cookies=[])
    assert header is not None and header.startswith(f"PORTWAY_SRV={backend_token('b1')};")
    cookie = header.split(";", 1)[0]
    assert sticky.sticky_backend(backends, "c", cookie) == backends[1]
    # once the client carries the right cookie, nothing more is set
    assert sticky.bind(backends[1], "c", request_cookie=cookie, set_cookies=[]) is None
    # its backend is down: no binding, the balancer chooses again
    assert sticky.sticky_backend([backends[0], backends[2]], "c", cookie) is None


def test_app_cookie_follows_the_application_session() -> None:
    sticky = Stickiness(SessionPersistence(type="app_cookie", cookie_name="SID"))
    backends = pool(2)
    assert sticky.bind(backends[1], "c", request_cookie="", set_cookies=["SID=s1; Path=/"]) is None
    assert sticky.sticky_backend(backends, "other-client", "SID=s1") == backends[1]
    assert sticky.sticky_backend(backends, "c", "SID=unknown") is None


def test_source_ip_binding_expires_after_idle_ttl() -> None:
    clock = Clock()
    sticky = Stickiness(SessionPersistence(type="source_ip"), ttl=60, clock=clock)
    backends = pool(2)
    sticky.bind(backends[0], "10.1.1.1", request_cookie="", set_cookies=[])
    clock.now = 59
    assert sticky.sticky_backend(backends, "10.1.1.1", "") == backends[0]
    clock.now = 200
    assert sticky.sticky_backend(backends, "10.1.1.1", "") is None


def test_learned_table_is_bounded() -> None:
    sticky = Stickiness(SessionPersistence(type="source_ip"), capacity=10)
    backends = pool(1)
    for i in range(100):
        sticky.bind(backends[0], f"10.0.0.{i}", request_cookie="", set_cookies=[])
    assert sticky.sticky_backend(backends, "10.0.0.99", "") == backends[0]
    assert sticky.sticky_backend(backends, "10.0.0.0", "") is None


def test_a_cookie_name_outside_the_token_grammar_is_never_written() -> None:
    # The API and the snapshot builder refuse such names; the writer refuses them too.
    backends = pool(2)
    sticky = Stickiness(SessionPersistence(type="cookie", cookie_name="s\r\nX-Injected: yes"))
    assert sticky.bind(backends[0], "1.2.3.4", request_cookie="", set_cookies=()) is None
    plain = Stickiness(SessionPersistence(type="cookie", cookie_name="sid"))
    line = plain.bind(backends[0], "1.2.3.4", request_cookie="", set_cookies=())
    assert line is not None and line.startswith("sid=")
