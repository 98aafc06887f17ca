"""The provider's endpoints at the HTTP edge: discovery and the JWKS are the only
dynamic answers shared caches may keep; HEAD never runs an authorization request (405,
nothing stored, no code); the token endpoint is rate limited per IP and per
authenticated client with a stable ``rate_limited`` body; HTTP Basic credentials that
do not decode as UTF-8 are a failed client authentication, never a 500."""

from __future__ import annotations

import base64

import httpx
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.browser import FormBrowser
from tests.support.oidc import (
    authorize_url,
    exchange,
    query_of,
    register_client,
    sign_in_by_code,
    signed_in_browser,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

PUBLIC = "public, max-age=300"
METADATA = (
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwks.json",
)


def _rows(server: LiveServer) -> dict[str, int]:
    with server.database.engine.connect() as connection:
        return {
            table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
            for table in ("oidc_pending_requests", "oidc_grants", "oidc_codes")
        }


def test_only_metadata_and_keys_may_be_cached(server: LiveServer) -> None:
    registered = register_client(server)
    with server.client() as http:
        for path in METADATA:
            for answer in (http.get(path), http.head(path)):
                assert answer.status_code == 200, path
                assert answer.headers["cache-control"] == PUBLIC, path
                assert "pragma" not in answer.headers
        private = [
            http.post("/.well-known/jwks.json"),  # 405: not a successful answer
            http.get("/.well-known/unknown"),
            http.get(authorize_url(registered.client_id)),
            http.get(authorize_url("nobody")),
            http.post("/token", data={"grant_type": "authorization_code"}),
            http.get("/userinfo"),
            http.get("/signin"),
            http.get("/healthz"),
        ]
        static = http.get("/static/sekisho.css")
    for answer in private:
        assert answer.headers["cache-control"] == "no-store", answer.request.url
    assert private[0].status_code == 405
    assert static.headers.get("cache-control") != "no-store"
    assert PUBLIC not in static.headers.get("cache-control", "")


def test_head_never_runs_an_authorization_request(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server)
    server.add_user("ao@example.com")
    browser = FormBrowser(server.url)
    try:
        url = authorize_url(registered.client_id)
        head = browser.http.head(url)
        assert head.status_code == 405
        assert head.headers["allow"] == "GET, POST"
        assert "location" not in head.headers
        assert "sekisho_authorization" not in head.headers.get("set-cookie", "")
        assert head.content == b""
        assert _rows(server) == {"oidc_pending_requests": 0, "oidc_grants": 0, "oidc_codes": 0}
        put = browser.http.put(url)
        assert put.status_code == 405
        assert put.headers["allow"] == "GET, POST"

        # a request waiting for the sign-in: HEAD on resume neither spends nor answers it
        assert browser.http.get(url).headers["location"] == "/signin"
        assert _rows(server)["oidc_pending_requests"] == 1
        sign_in_by_code(browser, smtp, "ao@example.com")
        resume_head = browser.http.head("/authorize/resume")
        assert resume_head.status_code == 405
        assert resume_head.headers["allow"] == "GET"
        assert _rows(server)["oidc_codes"] == 0
        resumed = browser.http.get("/authorize/resume")
        assert resumed.status_code == 200
        assert _rows(server)["oidc_codes"] == 1

        # signed in: HEAD would have minted a code at once
        assert browser.http.head(url).status_code == 405
        assert _rows(server)["oidc_codes"] == 1
        answer = browser.http.get(url)
        assert answer.status_code == 303
        assert "code" in query_of(answer.headers["location"])
        assert _rows(server)["oidc_codes"] == 2
    finally:
        browser.close()


def _token_request(http: httpx.Client, client_id: str, secret: str | None) -> httpx.Response:
    return http.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "made-up",
            "redirect_uri": "https://rp.example/callback",
            "code_verifier": "v" * 43,
        },
        auth=(client_id, secret or ""),
    )


def _assert_rate_limited(answer: httpx.Response) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json() == {
        "error": "rate_limited",
        "error_description": "Too many attempts. Wait a little and try again.",
    }
    assert int(answer.headers["retry-after"]) > 0
    assert answer.headers["cache-control"] == "no-store"


def test_the_token_endpoint_is_limited_per_ip(make_server: ServerFactory) -> None:
    server = make_server(limit_token_per_ip="3/minute")
    registered = register_client(server)
    with server.client() as http:
        answers = [_token_request(http, registered.client_id, registered.secret) for _ in range(3)]
        assert [answer.json()["error"] for answer in answers] == ["invalid_grant"] * 3
        _assert_rate_limited(_token_request(http, registered.client_id, registered.secret))
        # before anything else: no client, no form
        _assert_rate_limited(http.post("/token", content=b"x"))


def test_the_token_endpoint_is_limited_per_authenticated_client(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    server = make_server(limit_token_per_client="2/minute")
    busy = register_client(server)
    other = register_client(server)
    browser = signed_in_browser(server, smtp, "kai@example.com")
    try:
        with server.client() as http:
            for _ in range(2):
                assert _token_request(http, busy.client_id, busy.secret).status_code == 400
            _assert_rate_limited(_token_request(http, busy.client_id, busy.secret))
            code = query_of(browser.http.get(authorize_url(busy.client_id)).headers["location"])
            _assert_rate_limited(exchange(server, busy, code["code"]))
            # only an authenticated client counts: a stranger naming `other` with wrong
            # secrets cannot use up its allowance
            for _ in range(5):
                stranger = _token_request(http, other.client_id, "not-the-secret")
                assert stranger.status_code == 401
            code = query_of(browser.http.get(authorize_url(other.client_id)).headers["location"])
            assert exchange(server, other, code["code"]).status_code == 200
    finally:
        browser.close()


def test_basic_credentials_that_are_not_utf8_fail_client_authentication(
    server: LiveServer,
) -> None:
    """RFC 7617 §2.1 credentials are UTF-8 text; bytes that are not (here 0xff) are
    refused like a wrong secret on every endpoint that reads Basic credentials."""
    registered = register_client(server)
    garbled = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\x80").decode()}
    form = {"grant_type": "authorization_code", "code": "x", "token": "x"}
    with server.client() as http:
        for path in ("/token", "/par", "/revoke", "/introspect"):
            answer = http.post(path, data=form, headers=garbled)
            assert answer.status_code == 401, (path, answer.text)
            assert answer.json()["error"] == "invalid_client", path
            assert answer.headers["cache-control"] == "no-store", path
        for answer in (
            http.get("/api/v1/confirmations/abc", headers=garbled),
            http.post(
                "/api/v1/confirmations/abc/redeem",
                json={"action": "withdrawal", "details": {}},
                headers=garbled,
            ),
        ):
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"] == "client_authentication_failed"
        # the client itself still authenticates
        assert _token_request(http, registered.client_id, registered.secret).status_code == 400
