"""The RFC grammars of tenant strings that reach the wire: examples from the RFCs, and
properties (nothing accepted can end a line; what is accepted parses back unchanged)."""

from __future__ import annotations

import string
import unicodedata

import h11
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portway.protocol.grammar import is_cookie_name, is_field_value, is_origin_form, is_token

TCHAR = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
PCHAR = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"
# VCHAR and the obs-text that is not a C1 control.
VISIBLE = "".join(chr(c) for c in (*range(0x21, 0x7F), *range(0xA0, 0x100)))

tokens = st.text(alphabet=TCHAR, min_size=1, max_size=40)
pct = st.builds(lambda a, b: f"%{a}{b}", *(st.sampled_from(string.hexdigits),) * 2)
segments = st.lists(st.one_of(st.sampled_from(PCHAR), pct), max_size=8).map("".join)
paths = st.lists(segments, min_size=1, max_size=5).map(lambda s: "/" + "/".join(s))
queries = st.lists(st.one_of(st.sampled_from(PCHAR + "/?"), pct), max_size=12).map("".join)
origin_forms = st.one_of(paths, st.builds(lambda p, q: f"{p}?{q}", paths, queries))
field_values = st.one_of(
    st.just(""),
    st.builds(
        lambda a, mid, b: a + mid + b if mid else a,
        st.sampled_from(VISIBLE),
        st.text(alphabet=VISIBLE + " \t", max_size=30),
        st.sampled_from(VISIBLE),
    ),
)
# Anything at all, biased towards the characters that matter.
anything = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from('\r\n\x00\t \x7f:;=%/?#"')),
    max_size=40,
)


def _controls(text: str) -> set[str]:
    return {c for c in text if unicodedata.category(c) == "Cc"}


# -- examples -------------------------------------------------------------------------


@pytest.mark.parametrize("ok", ["GET", "HEAD", "OPTIONS", "M-SEARCH", "x", "!#$%&'*+-.^_`|~09Az"])
def test_tokens_from_rfc_9110_are_accepted(ok: str) -> None:
    assert is_token(ok) and is_cookie_name(ok)


@pytest.mark.parametrize(
    "bad", ["", "GET ", " GET", "G T", "a\r\nb", "a\n", "a\x00", "a:b", "a;b", "a=b", "a,b",
            '"a"', "(a)", "a/b", "[a]", "{a}", "a\\b", "a?b", "a@b", "caf\u00e9", "a\tb", "\x7f"],
)  # fmt: skip
def test_non_tokens_are_refused(bad: str) -> None:
    assert not is_token(bad) and not is_cookie_name(bad)


@pytest.mark.parametrize(
    "ok", ["/", "/a/b", "//x", "/a/./b", "/health?full=1", "/?", "/a?b/c?d", "/%2F%2f",
           "/~user/!$&'()*+,;=:@", "/a?x=%20"],
)  # fmt: skip
def test_origin_forms_are_accepted(ok: str) -> None:
    assert is_origin_form(ok)


@pytest.mark.parametrize(
    "bad", ["", "a", "*", "http://x/", "/a b", "/a\r\nX: y", "/a\n", "/\x00", "/%", "/%4",
            "/%zz", "/a#b", "/a?b#c", "/a?b c", "/caf\u00e9", "/a\\b", "/a\"b", "/<a>", "/a|b",
            "/a^b", "/a`b", "/{a}", "/a\t"],
)  # fmt: skip
def test_non_origin_forms_are_refused(bad: str) -> None:
    assert not is_origin_form(bad)


@pytest.mark.parametrize("ok", ["", "a", "text/html; q=0.9", "a\tb", "caf\u00e9", '"x, y"'])
def test_field_values_are_accepted(ok: str) -> None:
    assert is_field_value(ok)


@pytest.mark.parametrize(
    "bad", [" a", "a ", "\ta", "a\t", "a\r\nX: y", "a\nb", "a\rb", "a\x00b", "a\x7fb",
            "a\x01b", "\u0100", "\u2028", "a\u0085b", "\x80", "\x9f"],
)  # fmt: skip
def test_non_field_values_are_refused(bad: str) -> None:
    assert not is_field_value(bad)


def test_non_strings_are_refused() -> None:
    for check in (is_token, is_field_value, is_origin_form, is_cookie_name):
        assert not check(None)  # type: ignore[arg-type]
        assert not check(b"GET")  # type: ignore[arg-type]


# -- properties -----------------------------------------------------------------------


@given(anything)
def test_nothing_accepted_can_break_a_line(text: str) -> None:
    if is_token(text) or is_origin_form(text):
        assert text.isascii() and not _controls(text)
    if is_field_value(text):
        assert _controls(text) <= {"\t"}  # HTAB is the one control field-value allows
        assert not text.startswith((" ", "\t")) and not text.endswith((" ", "\t"))
        assert all(ord(c) <= 0xFF for c in text)
    for crlf_or_nul in "\r\n\x00":
        assert not (is_token(text) or is_origin_form(text) or is_field_value(text)) or (
            crlf_or_nul not in text
        )


@given(tokens, origin_forms, tokens, field_values)
def test_accepted_strings_parse_back_from_the_request_they_are_written_into(
    method: str, target: str, name: str, value: str
) -> None:
    assert is_token(method) and is_origin_form(target)
    assert is_token(name) and is_field_value(value)
    wire = f"{method} {target} HTTP/1.1\r\nHost: a.example.org\r\n{name}: {value}\r\n\r\n"
    server = h11.Connection(h11.SERVER)
    server.receive_data(wire.encode("latin-1"))
    request = server.next_event()
    assert isinstance(request, h11.Request)
    assert request.method.decode() == method and request.target.decode() == target
    assert [(k.decode(), v.decode("latin-1")) for k, v in request.headers] == [
        ("host", "a.example.org"),
        (name.lower(), value),
    ]
    assert isinstance(server.next_event(), h11.EndOfMessage)
    assert server.trailing_data == (b"", False)  # one request, nothing smuggled after it


@given(tokens)
def test_a_cookie_name_is_the_name_of_the_cookie_portway_sets(name: str) -> None:
    line = f"{name}=0123abcd; Path=/; HttpOnly"
    # RFC 6265 §5.2: the name is up to the first "=" of the part before the first ";".
    pair = line.split(";", 1)[0]
    assert pair.split("=", 1) == [name, "0123abcd"]


@given(anything)
def test_generated_strings_outside_the_alphabets_are_refused(text: str) -> None:
    if any(c not in TCHAR for c in text) or not text:
        assert not is_token(text)
    if not text.startswith("/") or any(c in "\r\n\x00 #" for c in text):
        assert not is_origin_form(text)
