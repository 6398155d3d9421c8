"""The HTTP → HTTPS redirect and the HSTS check, on bytes alone."""

from __future__ import annotations

import pytest

from portway.protocol.redirect import has_hsts, https_location, redirect_response, request_path


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"/a/b?x=1", b"/a/b?x=1"),
        (b"http://h.example.org/a?x", b"/a?x"),
        (b"http://h.example.org?x", b"/?x"),
        (b"http://h.example.org", b"/"),
        (b"*", b"/"),
    ],
)
def test_request_path_keeps_origin_form(target: bytes, path: bytes) -> None:
    assert request_path(target) == path


def test_location_omits_port_443_and_keeps_others() -> None:
    assert https_location("a.example.org", b"/x?y", 443) == b"https://a.example.org/x?y"
    assert https_location("a.example.org", b"/x", 0) == b"https://a.example.org/x"
    assert https_location("a.example.org", b"/", 8443) == b"https://a.example.org:8443/"


def test_redirect_response_is_a_complete_empty_301() -> None:
    answer = redirect_response(b"https://a.example.org/", close=True)
    assert answer.startswith(b"HTTP/1.1 301 Moved Permanently\r\n")
    assert b"\r\nLocation: https://a.example.org/\r\n" in answer
    assert answer.endswith(
        b"Content-Length: 0\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )


def test_backend_hsts_is_detected_case_insensitively() -> None:
    assert has_hsts([b"strict-transport-security", b": ", b"max-age=1", b"\r\n"])
    assert not has_hsts([b"X-Other", b": ", b"strict-transport-security", b"\r\n"])
