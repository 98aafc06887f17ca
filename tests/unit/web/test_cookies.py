"""The ``Set-Cookie`` headers Sekisho writes itself are the ones Starlette's
``set_cookie``/``delete_cookie`` wrote, for every cookie it sets and clears, and a value
that could split a header or add an attribute is refused."""

from __future__ import annotations

import re
import secrets
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from starlette.responses import Response

import sekisho
from sekisho.core import onetime
from sekisho.web.cookies import (
    AUTHORIZATION_MAX_AGE,
    BINDING_MAX_AGE,
    CONFIRMATION_MAX_AGE,
    DEVICE_MAX_AGE,
    LANGUAGE_MAX_AGE,
    Cookies,
    is_cookie_value,
)
from sekisho.web.pages import NUDGE_MAX_AGE

#: Every cookie set in src/sekisho/web and src/sekisho/oidc: its name, a value of the
#: kind it carries and the lifetime it is given there.
SET = [
    ("session", onetime.new_session_token(), None),
    ("binding", onetime.new_binding(), BINDING_MAX_AGE),
    ("csrf", secrets.token_urlsafe(32), None),
    ("language", "ja", LANGUAGE_MAX_AGE),
    ("language", "en", None),
    ("authorization", secrets.token_urlsafe(32), AUTHORIZATION_MAX_AGE),
    ("confirmation", secrets.token_urlsafe(24), CONFIRMATION_MAX_AGE),
    ("device", secrets.token_urlsafe(32), DEVICE_MAX_AGE),
    ("passkey_nudge", "1", NUDGE_MAX_AGE),
]
CLEARED = ["session", "confirmation", "authorization"]

SOURCES = [Path(sekisho.__file__).parent / "web", Path(sekisho.__file__).parent / "oidc"]
#: ``jar.set(response, jar.session, ...)``, ``context.cookies(request).clear(response,
#: context.cookies(request).authorization)``, ``self.cookies.header(self.cookies.device``.
CALL = re.compile(r"\.(set|clear)\(\s*\w+,\s*([\w.()]+)[,)]|\.(header)\(\s*([\w.()]+),")


def _calls() -> set[tuple[str, str]]:
    found = set()
    for folder in SOURCES:
        for source in folder.glob("*.py"):
            if source.name == "cookies.py":  # where they are written
                continue
            for match in CALL.finditer(source.read_text()):
                kind = match.group(1) or "set"
                name = (match.group(2) or match.group(4)).rsplit(".", 1)[-1]
                found.add((kind, name))
    return found


def test_the_table_holds_every_cookie_set_or_cleared() -> None:
    calls = _calls()
    assert ("set", "session") in calls  # the pattern finds them
    assert {("set", name) for name, _value, _age in SET} | {
        ("clear", name) for name in CLEARED
    } == calls


def _starlette_set(name: str, value: str, max_age: int | None, secure: bool) -> bytes:
    response = Response()
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax"
    )
    return response.raw_headers[-1][1]


def _starlette_clear(name: str, secure: bool) -> bytes:
    response = Response()
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
    return response.raw_headers[-1][1]


def _parsed(header: bytes) -> tuple[str, str, dict[str, str | bool]]:
    jar: SimpleCookie = SimpleCookie()
    jar.load(header.decode("latin-1"))
    ((name, morsel),) = jar.items()
    attributes: dict[str, str | bool] = {key: morsel[key] for key in morsel if morsel[key]}
    return name, morsel.value, attributes


@pytest.mark.parametrize("secure", [True, False], ids=["https", "development"])
@pytest.mark.parametrize(("attribute", "value", "max_age"), SET)
def test_a_cookie_is_set_as_starlette_set_it(
    secure: bool, attribute: str, value: str, max_age: int | None
) -> None:
    jar = Cookies(secure=secure)
    name = getattr(jar, attribute)
    response = Response()
    jar.set(response, name, value, max_age=max_age)
    header = response.raw_headers[-1]
    assert header[0] == b"set-cookie"
    expected = _starlette_set(name, value, max_age, secure)
    assert _parsed(header[1]) == _parsed(expected)
    assert header[1] == expected  # the same order too
    assert jar.header(name, value, max_age=max_age) == expected
    assert response.headers.getlist("set-cookie") == [expected.decode()]
    assert ("Secure" in expected.decode()) is secure


@pytest.mark.parametrize("secure", [True, False], ids=["https", "development"])
@pytest.mark.parametrize("attribute", CLEARED)
def test_a_cookie_is_cleared_as_starlette_cleared_it(secure: bool, attribute: str) -> None:
    jar = Cookies(secure=secure)
    name = getattr(jar, attribute)
    response = Response()
    jar.clear(response, name)
    ours = _parsed(response.raw_headers[-1][1])
    theirs = _parsed(_starlette_clear(name, secure))
    # Starlette's expires is the current time, ours the epoch: both not in the future, and
    # Max-Age=0 (which browsers obey first) removes the cookie either way.
    our_expiry = parsedate_to_datetime(str(ours[2].pop("expires")))
    their_expiry = parsedate_to_datetime(str(theirs[2].pop("expires")))
    assert our_expiry <= their_expiry
    assert ours == theirs
    assert ours[1] == ""
    assert ours[2]["max-age"] == "0"


@pytest.mark.parametrize(
    "value",
    [
        "a;b",
        "a; Domain=evil.example",
        "a,b",
        "a b",
        "a\r\nSet-Cookie: x=y",
        "a\nb",
        'a"b',
        "a\\b",
        "a\x00b",
        "a\x7fb",
        "a\tb",
        "é",
        "\u3042",
    ],
)
def test_a_value_that_is_not_all_cookie_octets_is_refused(value: str) -> None:
    jar = Cookies(secure=True)
    assert not is_cookie_value(value)
    with pytest.raises(ValueError, match="not a cookie"):
        jar.set(Response(), jar.session, value)
    with pytest.raises(ValueError, match="not a cookie"):
        jar.header(jar.device, value, max_age=DEVICE_MAX_AGE)


@pytest.mark.parametrize("name", ["", "a b", "a=b", "a;b", "a\r\nb", "é"])
def test_a_name_that_is_not_a_token_is_refused(name: str) -> None:
    jar = Cookies(secure=False)
    with pytest.raises(ValueError, match="not a cookie"):
        jar.set(Response(), name, "v")
    with pytest.raises(ValueError, match="not a cookie"):
        jar.clear(Response(), name)


def test_cookie_octets_are_accepted() -> None:
    octets = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '",;\\')
    assert is_cookie_value(octets)
    assert is_cookie_value("")
    expected = f"n={octets}; HttpOnly; Path=/; SameSite=lax; Secure".encode()
    assert Cookies(secure=True).header("n", octets) == expected
