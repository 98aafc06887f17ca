"""Pushed Authorization Requests (RFC 9126; SECURITY.md case 45) over real HTTP: the
client pushes its request to /par (authenticated as at /token) and sends the browser to
/authorize with only ``client_id`` and the ``request_uri``. The sign-in on the way and
its resume, also from an email link approved on another device, work as on the plain
path. A ``request_uri`` is single use, short-lived and bound to its client; parameters
outside the pushed request are ignored; a client that requires PAR gets nothing from a
plain request."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sqlalchemy import text, update

from sekisho.store.tables import oidc_pushed_requests
from tests.support.browser import FormBrowser
from tests.support.oidc import (
    REDIRECT_URI,
    Registered,
    authorize_url,
    challenge,
    exchange,
    query_of,
    register_client,
    response_of,
    sign_in_by_code,
    signed_in_browser,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

PREFIX = "urn:ietf:params:oauth:request_uri:"
NUMBER = re.compile(r'id="approval-number"[^>]*>(\d+)<')


def _request(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid email",
        "state": "pushed-state",
        "nonce": "pushed-nonce",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        **overrides,
    }
    return {name: value for name, value in params.items() if value is not None}


def _push(server: LiveServer, registered: Registered, **overrides: str | None) -> httpx.Response:
    with server.client() as http:
        return http.post(
            "/par",
            data=_request(**overrides),
            auth=(registered.client_id, registered.secret or ""),
        )


def _request_uri(server: LiveServer, registered: Registered, **overrides: str | None) -> str:
    pushed = _push(server, registered, **overrides)
    assert pushed.status_code == 201, pushed.text
    value = pushed.json()["request_uri"]
    assert isinstance(value, str)
    return value


def _authorize(client_id: str, request_uri: str, **extra: str) -> str:
    return "/authorize?" + urlencode({"client_id": client_id, "request_uri": request_uri, **extra})


def _pushed_rows(server: LiveServer) -> list[dict[str, Any]]:
    with server.database.engine.connect() as connection:
        return [
            dict(row)
            for row in connection.execute(text("SELECT * FROM oidc_pushed_requests")).mappings()
        ]


def _refused_page(answer: httpx.Response, reason: str) -> None:
    assert answer.status_code == 400, answer.text
    assert "location" not in answer.headers
    assert f'data-error="{reason}"' in answer.text


def test_discovery_advertises_par_and_private_key_jwt(server: LiveServer) -> None:
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["pushed_authorization_request_endpoint"] == server.url + "/par"
    assert metadata["require_pushed_authorization_requests"] is False
    assert "private_key_jwt" in metadata["token_endpoint_auth_methods_supported"]
    assert metadata["token_endpoint_auth_signing_alg_values_supported"] == [
        "ES256",
        "RS256",
        "PS256",
    ]


def test_a_pushed_request_signs_in_and_resumes(server: LiveServer, smtp: SmtpCapture) -> None:
    user_id = server.add_user("tomo@example.com")
    registered = register_client(server)
    pushed = _push(server, registered, scope="openid profile", ui_locales="ja")
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["cache-control"] == "no-store"
    body = pushed.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith(PREFIX)
    reference = body["request_uri"].removeprefix(PREFIX)
    assert len(reference) >= 43
    assert reference not in json.dumps(_pushed_rows(server), default=str)
    browser = FormBrowser(server.url)
    try:
        # Parameters beside request_uri are ignored, never merged (RFC 9126 §4).
        start = browser.http.get(
            _authorize(
                registered.client_id,
                body["request_uri"],
                state="evil",
                redirect_uri="https://evil.example/cb",
                scope="openid email",
                prompt="none",
            )
        )
        assert start.status_code == 303, start.text
        assert start.headers["location"] == "/signin"
        assert browser.http.cookies.get("sekisho_lang") == "ja"
        signed = sign_in_by_code(browser, smtp, "tomo@example.com")
        assert signed.headers["location"] == "/authorize/resume"
        callback = response_of(browser.http.get("/authorize/resume"))
    finally:
        browser.close()
    assert callback.startswith(REDIRECT_URI + "?")
    answer = query_of(callback)
    assert answer["state"] == "pushed-state"
    assert answer["iss"] == server.settings.public_origin
    token = exchange(server, registered, answer["code"])
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "openid profile"
    claims = verify_id_token(server, token.json()["id_token"], client_id=registered.client_id)
    assert claims["sub"] == user_id
    assert claims["nonce"] == "pushed-nonce"
    assert "email" not in claims


def test_the_email_link_on_another_device_resumes_a_pushed_request(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    user_id = server.add_user("nao@example.com")
    registered = register_client(server, require_par=True)
    request_uri = _request_uri(server, registered)
    laptop = FormBrowser(server.url)
    phone = FormBrowser(server.url, user_agent="Mozilla/5.0 (iPhone) Safari/605.1.15")
    try:
        start = laptop.http.get(_authorize(registered.client_id, request_uri))
        assert start.headers["location"] == "/signin"
        flow = laptop.request_email("nao@example.com")
        wait = laptop.http.get(f"/signin/email/wait?flow={flow}")
        number = NUMBER.search(wait.text)
        assert number is not None, wait.text
        link, _code = link_and_code(smtp.wait_for("nao@example.com"))
        token = parse_qs(urlsplit(link).query)["token"][0]
        approved = phone.post(
            "/signin/email/link/approve", {"token": token, "number": number.group(1)}
        )
        assert approved.status_code == 200, approved.text
        completed = laptop.post("/signin/email/complete", {"flow": flow})
        assert completed.headers["location"] == "/authorize/resume"
        callback = response_of(laptop.http.get("/authorize/resume"))
    finally:
        laptop.close()
        phone.close()
    answer = exchange(server, registered, query_of(callback)["code"])
    assert answer.status_code == 200, answer.text
    claims = verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)
    assert claims["sub"] == user_id


def test_a_request_uri_is_single_use_short_lived_and_bound_to_its_client(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    other = register_client(server, name="Other app")
    browser = signed_in_browser(server, smtp, "sho@example.com")
    try:
        used = _request_uri(server, registered)
        first = browser.http.get(_authorize(registered.client_id, used))
        assert first.status_code == 303
        assert "code" in query_of(first.headers["location"])
        _refused_page(
            browser.http.get(_authorize(registered.client_id, used)), "invalid_request_uri"
        )

        expired = _request_uri(server, registered)
        with server.database.engine.begin() as connection:
            connection.execute(
                update(oidc_pushed_requests)
                .where(oidc_pushed_requests.c.used_at.is_(None))
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        _refused_page(
            browser.http.get(_authorize(registered.client_id, expired)), "invalid_request_uri"
        )

        stolen = _request_uri(server, registered)
        _refused_page(browser.http.get(_authorize(other.client_id, stolen)), "invalid_request_uri")
        # Presented by another client, it is spent: the leak ends it for its owner too.
        _refused_page(
            browser.http.get(_authorize(registered.client_id, stolen)), "invalid_request_uri"
        )

        _refused_page(
            browser.http.get(_authorize(registered.client_id, PREFIX + "made-up")),
            "invalid_request_uri",
        )
        _refused_page(
            browser.http.get(_authorize(registered.client_id, "https://x.example/r")),
            "invalid_request_uri",
        )
        _refused_page(browser.http.get(_authorize("nobody", used)), "unknown_client")
        japanese = browser.http.get(
            _authorize(registered.client_id, used), headers={"Accept-Language": "ja"}
        )
        assert japanese.status_code == 400
        assert "別のアプリケーション" in japanese.text
    finally:
        browser.close()
    with server.database.engine.connect() as connection:
        reasons = [
            json.loads(detail)["error"]
            for detail in connection.execute(
                text("SELECT detail FROM audit_events WHERE event = 'oidc.authorization.refused'")
            ).scalars()
        ]
    assert reasons.count("invalid_request_uri") == 7


def test_a_client_that_requires_par_gets_nothing_from_a_plain_request(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, require_par=True)
    browser = signed_in_browser(server, smtp, "aoi@example.com")
    try:
        plain = browser.http.get(authorize_url(registered.client_id))
        assert plain.status_code == 303
        answer = query_of(plain.headers["location"])
        assert answer["error"] == "invalid_request"
        assert answer["state"] == "st-1"
        assert answer["iss"] == server.settings.public_origin
        assert "code" not in answer
        pushed = browser.http.get(
            _authorize(registered.client_id, _request_uri(server, registered))
        )
        assert "code" in query_of(pushed.headers["location"])
    finally:
        browser.close()


def test_the_par_endpoint_refuses_bad_pushes_and_stores_nothing(server: LiveServer) -> None:
    registered = register_client(server)
    public = register_client(server, auth_method="none")
    wrong_secret = Registered(registered.client_id, "wrong")
    refusals: list[tuple[httpx.Response, int, str]] = [
        (_push(server, wrong_secret), 401, "invalid_client"),
        (_push(server, registered, request_uri=PREFIX + "x"), 400, "invalid_request"),
        (_push(server, registered, code_challenge=None), 400, "invalid_request"),
        (_push(server, registered, code_challenge_method="plain"), 400, "invalid_request"),
        (_push(server, registered, redirect_uri="https://evil.example/cb"), 400, "invalid_request"),
        (_push(server, registered, response_type="token"), 400, "unsupported_response_type"),
        (_push(server, registered, scope="email"), 400, "invalid_scope"),
        (_push(server, registered, client_id=public.client_id), 401, "invalid_client"),
    ]
    with server.client() as http:
        refusals.append(
            (
                http.post(
                    "/par",
                    content=urlencode(_request()) + "&scope=openid",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    auth=(registered.client_id, registered.secret or ""),
                ),
                400,
                "invalid_request",
            )
        )
        refusals.append(
            (
                http.post(
                    "/par", json=_request(), auth=(registered.client_id, registered.secret or "")
                ),
                400,
                "invalid_request",
            )
        )
        assert http.get("/par").status_code == 405
    for answer, status, error in refusals:
        assert (answer.status_code, answer.json()["error"]) == (status, error), answer.text
        assert answer.headers["cache-control"] == "no-store"
    assert _pushed_rows(server) == []
    with server.client() as http:
        public_push = http.post("/par", data={**_request(), "client_id": public.client_id})
    assert public_push.status_code == 201, public_push.text
    assert len(_pushed_rows(server)) == 1


def test_concurrent_uses_of_one_request_uri_give_one_winner(server: LiveServer) -> None:
    registered = register_client(server)
    request_uri = _request_uri(server, registered)

    def use(_n: int) -> int:
        with server.client() as http:
            return http.get(_authorize(registered.client_id, request_uri)).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(use, range(6)))
    assert sorted(statuses) == [303, 400, 400, 400, 400, 400]
