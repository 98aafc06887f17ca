"""``login_hint`` (OIDC Core §3.1.2.1): an authorization request that needs a sign-in
brings the person to Sekisho's sign-in page with the hinted address filled in; the hint
only fills the field, HTML-escaped, whatever the client sent."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
from markupsafe import escape

from tests.support.oidc import authorize_url, query_of, register_client
from tests.support.server import LiveServer

HOSTILE = '"><script>alert(1)</script><input value="'


def _signin_page(server: LiveServer, client_id: str, hint: str) -> str:
    with httpx.Client(base_url=server.url) as browser:
        asked = browser.get(authorize_url(client_id, login_hint=hint))
        assert asked.status_code == 303, asked.text
        target = asked.headers["location"]
        assert urlsplit(target).path == "/signin"
        assert query_of(target)["login_hint"] == hint
        page = browser.get(target)
    assert page.status_code == 200, page.text
    return page.text


def test_the_hinted_address_is_filled_in(server: LiveServer) -> None:
    registered = register_client(server)
    page = _signin_page(server, registered.client_id, "a@example.com")
    assert 'name="email" type="email"' in page
    assert 'value="a@example.com"' in page


def test_a_hostile_hint_is_escaped(server: LiveServer) -> None:
    registered = register_client(server)
    page = _signin_page(server, registered.client_id, HOSTILE)
    assert "<script>alert(1)</script>" not in page
    assert f'value="{escape(HOSTILE)}"' in page
