"""Sekisho with a relying party nobody here wrote: panva's openid-client 6 in the plain
Node.js app of examples/node, as docs/integrations/node-openid-client.md configures it,
over real HTTP and SMTP. openid-client reads discovery, sends the code request with PKCE
S256 (in the browser, or pushed first to ``/par``, RFC 9126),
checks the answer's ``state`` and ``iss`` (RFC 9207), redeems the code with
``client_secret_basic``, validates the ID token against the JWKS (signature, ``iss``,
``aud``, ``exp``, ``iat``, ``nonce``, ``auth_time`` against ``max_age``, with panva's
``jose``) and calls UserInfo."""

from __future__ import annotations

from contextlib import AbstractContextManager
from urllib.parse import urlencode, urlsplit

import httpx

from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser
from tests.support.node_rp import node_app, node_relying_party
from tests.support.oidc import query_of, register_client, response_of, sign_in_by_code
from tests.support.ports import free_port
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

PUSHED = "urn:ietf:params:oauth:request_uri:"


def _to_sekisho(browser: FormBrowser, origin: str, path: str) -> str:
    """The Node app's redirect to Sekisho's /authorize, as a path and query."""
    answer = browser.http.get(origin + path)
    assert answer.status_code == 303, answer.text
    location = urlsplit(answer.headers["location"])
    return f"{location.path}?{location.query}"


def _me(browser: FormBrowser, origin: str) -> httpx.Response:
    return browser.http.get(origin + "/me")


def test_openid_client_signs_in_by_email_code(server: LiveServer, smtp: SmtpCapture) -> None:
    user_id = server.add_user("haru@example.com")
    with node_app(server) as (registered, origin):
        browser = FormBrowser(server.url)
        try:
            authorize = _to_sekisho(browser, origin, "/login")
            request = query_of(authorize)
            assert authorize.startswith("/authorize?")
            assert request["code_challenge_method"] == "S256"
            assert len(request["code_challenge"]) == 43
            assert request["redirect_uri"] == origin + "/callback"
            assert {"state", "nonce"} <= set(request)
            assert browser.http.get(authorize).headers["location"] == "/signin"
            sign_in_by_code(browser, smtp, "haru@example.com")
            callback = response_of(browser.http.get("/authorize/resume"))
            assert query_of(callback)["iss"] == server.settings.public_origin
            finished = browser.http.get(callback)
            assert finished.status_code == 303, finished.text
            me = _me(browser, origin)
            assert me.status_code == 200, me.text
            claims = me.json()["claims"]
            assert claims["iss"] == server.settings.public_origin
            assert claims["sub"] == user_id
            assert claims["aud"] == registered.client_id
            assert claims["nonce"] == request["nonce"]
            assert claims["amr"] == ["email"]
            assert claims["acr"] == "urn:sekisho:acr:aal1"
            assert me.json()["userinfo"] == {
                "sub": user_id,
                "email": "haru@example.com",
                "email_verified": True,
            }
            page = browser.http.get(origin + "/").text
            assert 'id="amr">email<' in page

            # Signed in at Sekisho now: a second round needs no page, and max_age=0
            # forces a new proof, whose auth_time openid-client checks.
            again = _to_sekisho(browser, origin, "/login?max_age=0")
            assert browser.http.get(again).headers["location"] == "/signin"
            sign_in_by_code(browser, smtp, "haru@example.com")
            callback = response_of(browser.http.get("/authorize/resume"))
            assert browser.http.get(callback).status_code == 303
            assert _me(browser, origin).json()["claims"]["auth_time"] >= claims["auth_time"]
        finally:
            browser.close()


def _refused_page(answer: httpx.Response, reason: str) -> None:
    assert answer.status_code == 400, answer.text
    assert "location" not in answer.headers
    assert f'data-error="{reason}"' in answer.text


def test_openid_client_signs_in_through_par(server: LiveServer, smtp: SmtpCapture) -> None:
    """``buildAuthorizationUrlWithPAR``: the parameters go to ``/par`` with the client's
    credentials, the browser carries only ``client_id`` and a single-use ``request_uri``,
    and the sign-in by email code resumes that pushed request."""
    user_id = server.add_user("kou@example.com")
    with node_app(server, par=True) as (registered, origin):
        browser = FormBrowser(server.url)
        try:
            authorize = _to_sekisho(browser, origin, "/login")
            assert authorize.startswith("/authorize?")
            request = query_of(authorize)
            assert set(request) == {"client_id", "request_uri"}
            assert request["client_id"] == registered.client_id
            assert request["request_uri"].startswith(PUSHED)
            assert browser.http.get(authorize).headers["location"] == "/signin"
            sign_in_by_code(browser, smtp, "kou@example.com")
            callback = response_of(browser.http.get("/authorize/resume"))
            assert callback.startswith(origin + "/callback?")
            assert query_of(callback)["iss"] == server.settings.public_origin
            assert browser.http.get(callback).status_code == 303
            me = _me(browser, origin)
            assert me.status_code == 200, me.text
            claims = me.json()["claims"]
            assert claims["iss"] == server.settings.public_origin
            assert claims["sub"] == user_id
            assert claims["aud"] == registered.client_id
            assert claims["amr"] == ["email"]
            assert claims["acr"] == "urn:sekisho:acr:aal1"
            assert me.json()["userinfo"]["email"] == "kou@example.com"

            # The request_uri was spent by the first visit.
            _refused_page(browser.http.get(authorize), "invalid_request_uri")
            # Signed in at Sekisho now: a new push is answered at once, and max_age=0
            # pushed with it forces a new proof, whose auth_time openid-client checks.
            again = _to_sekisho(browser, origin, "/login?max_age=0")
            assert query_of(again)["request_uri"] != request["request_uri"]
            assert browser.http.get(again).headers["location"] == "/signin"
            sign_in_by_code(browser, smtp, "kou@example.com")
            callback = response_of(browser.http.get("/authorize/resume"))
            assert browser.http.get(callback).status_code == 303
            assert _me(browser, origin).json()["claims"]["auth_time"] >= claims["auth_time"]
        finally:
            browser.close()


def test_openid_client_with_a_client_that_requires_par(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """A client registered with ``require_par``: the plain mode of the app gets
    ``invalid_request`` back, raised by openid-client, and no sign-in; the PAR mode of
    the same client signs in. A push Sekisho refuses (a redirect URI the client never
    registered, a wrong secret) stops at the app, before any browser redirect."""
    server.add_user("mei@example.com")
    plain_port, par_port, stray_port, forged_port = (free_port() for _ in range(4))
    registered = register_client(
        server,
        redirect_uris=(
            f"http://127.0.0.1:{plain_port}/callback",
            f"http://127.0.0.1:{par_port}/callback",
        ),
        require_par=True,
    )
    assert registered.secret is not None
    secret = registered.secret
    browser = FormBrowser(server.url)

    def app(port: int, *, par: bool, client_secret: str = secret) -> AbstractContextManager[str]:
        return node_relying_party(
            issuer=server.settings.public_origin,
            client_id=registered.client_id,
            client_secret=client_secret,
            port=port,
            par=par,
        )

    try:
        with app(plain_port, par=False) as origin:
            authorize = _to_sekisho(browser, origin, "/login")
            assert "code_challenge" in query_of(authorize)
            refused = browser.http.get(authorize)
            assert refused.status_code == 303
            answer = query_of(refused.headers["location"])
            assert answer["error"] == "invalid_request"
            assert "code" not in answer
            stopped = browser.http.get(refused.headers["location"])
            assert stopped.status_code == 400
            assert 'id="error">invalid_request<' in stopped.text
            assert _me(browser, origin).status_code == 401
        with app(stray_port, par=True) as origin:
            pushed = browser.http.get(origin + "/login")
            assert pushed.status_code == 400
            assert "location" not in pushed.headers
            assert 'id="error">invalid_request<' in pushed.text
        with app(forged_port, par=True, client_secret="not-the-secret") as origin:
            pushed = browser.http.get(origin + "/login")
            assert pushed.status_code == 400
            assert "location" not in pushed.headers
            # Sekisho's 401 carries a Basic challenge, which openid-client raises first
            assert 'id="error">OAUTH_WWW_AUTHENTICATE_CHALLENGE<' in pushed.text
        with app(par_port, par=True) as origin:
            authorize = _to_sekisho(browser, origin, "/login")
            assert query_of(authorize)["request_uri"].startswith(PUSHED)
            assert browser.http.get(authorize).headers["location"] == "/signin"
            sign_in_by_code(browser, smtp, "mei@example.com")
            callback = response_of(browser.http.get("/authorize/resume"))
            assert browser.http.get(callback).status_code == 303
            me = _me(browser, origin)
            assert me.status_code == 200, me.text
            assert me.json()["claims"]["aud"] == registered.client_id
    finally:
        browser.close()


def test_openid_client_refusals(server: LiveServer, smtp: SmtpCapture) -> None:
    """A forged ``iss`` in the answer is refused by openid-client (RFC 9207 §2.4); an
    ``acr_values`` the account cannot reach comes back as the OIDC error, which
    openid-client raises as such."""
    server.add_user("rin@example.com")
    with node_app(server) as (_registered, origin):
        browser = FormBrowser(server.url)
        try:
            authorize = _to_sekisho(browser, origin, "/login")
            browser.http.get(authorize)
            sign_in_by_code(browser, smtp, "rin@example.com")
            callback = response_of(browser.http.get("/authorize/resume"))
            answer = query_of(callback)
            forged = origin + "/callback?" + urlencode({**answer, "iss": "https://evil.example"})
            refused = browser.http.get(forged)
            assert refused.status_code == 400
            assert 'id="error">OAUTH_INVALID_RESPONSE<' in refused.text
            assert _me(browser, origin).status_code == 401
            # the refusal was openid-client's own: a new request, answered with
            # Sekisho's iss, goes through (signed in now: Sekisho answers at once)
            authorize = _to_sekisho(browser, origin, "/login")
            callback = browser.http.get(authorize).headers["location"]
            assert browser.http.get(callback).status_code == 303
            assert _me(browser, origin).status_code == 200

            stepping_up = _to_sekisho(browser, origin, "/login?acr_values=phr&max_age=300")
            unmet = browser.http.get(stepping_up)
            assert unmet.status_code == 303
            stopped = browser.http.get(unmet.headers["location"])
            assert stopped.status_code == 400
            assert 'id="error">unmet_authentication_requirements<' in stopped.text
            assert _me(browser, origin).json()["claims"]["acr"] == "urn:sekisho:acr:aal1"
        finally:
            browser.close()


def test_openid_client_reads_the_token_endpoints_rate_limit(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    """Over ``limit_token_per_client``, openid-client raises Sekisho's 429 body as a
    ``ResponseBodyError`` whose ``error`` is ``rate_limited``."""
    server = make_server(limit_token_per_client="1/minute")
    server.add_user("sou@example.com")
    with node_app(server) as (_registered, origin):
        browser = FormBrowser(server.url)
        try:
            browser.http.get(_to_sekisho(browser, origin, "/login"))
            sign_in_by_code(browser, smtp, "sou@example.com")
            assert (
                browser.http.get(response_of(browser.http.get("/authorize/resume"))).status_code
                == 303
            )
            again = browser.http.get(_to_sekisho(browser, origin, "/login"))
            limited = browser.http.get(again.headers["location"])
            assert limited.status_code == 400
            assert 'id="error">rate_limited<' in limited.text
        finally:
            browser.close()
