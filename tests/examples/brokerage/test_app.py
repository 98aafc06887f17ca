"""The brokerage example against a live Sekisho over real HTTP and SMTP: sign-in by
email code through Authlib's client (discovery, code + PKCE), the account page with
the session's amr/acr, and a large withdrawal that gets the RFC 9470 challenge, whose
retry reaches Sekisho with ``acr_values=phr`` and ends, for an account without a
passkey, in ``unmet_authentication_requirements``; with a passkey, in the withdrawal."""

from __future__ import annotations

import contextlib
import html
import re
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import uvicorn

from examples.brokerage.app import BrokerageSettings, Challenge, create_app, required_challenge
from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.oidc import query_of, register_client, response_of, sign_in_by_code
from tests.support.passkeys import register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, free_port

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
THRESHOLD = 100_000


@contextlib.contextmanager
def running_example(
    server: LiveServer, port: int, client_id: str, secret: str, *, host_name: str = "127.0.0.1"
) -> Iterator[str]:
    """The example on 127.0.0.1:PORT, reached as ``host_name``; yields its origin."""
    origin = f"http://{host_name}:{port}"
    settings = BrokerageSettings(
        issuer=server.settings.public_origin,
        client_id=client_id,
        client_secret=secret,
        origin=origin,
        session_key="example-session-key-for-tests-only-0123456789",
        threshold=THRESHOLD,
        step_up_max_age=300,
    )
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    example = uvicorn.Server(config)
    thread = threading.Thread(target=example.run, daemon=True)
    thread.start()
    while not example.started:
        assert thread.is_alive(), "the example did not start"
        time.sleep(0.02)
    try:
        yield origin
    finally:
        example.should_exit = True
        thread.join(timeout=15)


def _to_sekisho(browser: FormBrowser, origin: str, path: str) -> str:
    """Follow the example's redirect to Sekisho's /authorize; its path and query."""
    answer = browser.http.get(origin + path)
    assert answer.status_code in (302, 303, 307), answer.text
    location = urlsplit(answer.headers["location"])
    return f"{location.path}?{location.query}"


def _back_to_example(browser: FormBrowser, origin: str, callback: str) -> str:
    assert callback.startswith(origin + "/callback?"), callback
    answer = browser.http.get(callback)
    if answer.status_code == 303:
        return browser.http.get(origin + answer.headers["location"]).text
    return answer.text


def _withdraw(browser: FormBrowser, origin: str, page: str, amount: int) -> str:
    token = CSRF.search(page)
    assert token is not None, page
    answer = browser.http.post(
        origin + "/withdraw", data={"csrf": html.unescape(token.group(1)), "amount": str(amount)}
    )
    assert answer.status_code == 303, answer.text
    return str(answer.headers["location"])


def test_sign_in_view_the_account_and_step_up_for_a_large_withdrawal(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("kenji@example.com")
    port = free_port()
    registered = register_client(server, redirect_uris=(f"http://127.0.0.1:{port}/callback",))
    assert registered.secret is not None
    with running_example(server, port, registered.client_id, registered.secret) as origin:
        browser = FormBrowser(server.url)
        try:
            authorize = _to_sekisho(browser, origin, "/login")
            assert "code_challenge_method=S256" in authorize
            assert browser.http.get(authorize).headers["location"] == "/signin"
            assert sign_in_by_code(browser, smtp, "kenji@example.com").headers["location"] == (
                "/authorize/resume"
            )
            page = _back_to_example(
                browser, origin, response_of(browser.http.get("/authorize/resume"))
            )
            assert 'id="balance">¥1,250,000<' in page
            assert 'id="acr">urn:sekisho:acr:aal1<' in page
            assert 'id="amr">email<' in page

            api = browser.http.post(origin + "/api/withdrawals", json={"amount": THRESHOLD + 1})
            assert api.status_code == 401
            challenge = Challenge.parse(api.headers["www-authenticate"])
            assert challenge == Challenge(acr_values="phr", max_age=300)
            assert api.headers["www-authenticate"].startswith(
                'Bearer error="insufficient_user_authentication"'
            )
            small = browser.http.post(origin + "/api/withdrawals", json={"amount": 50_000})
            assert small.status_code == 201
            assert small.json() == {"balance": 1_200_000}

            retry = _withdraw(browser, origin, page, 500_000)
            assert retry == "/login?acr_values=phr&max_age=300"
            authorize = _to_sekisho(browser, origin, retry)
            assert query_of(authorize)["acr_values"] == "phr"
            assert query_of(authorize)["max_age"] == "300"
            refused = browser.http.get(authorize)
            assert refused.status_code == 303
            stopped = _back_to_example(browser, origin, refused.headers["location"])
            assert 'id="error">unmet_authentication_requirements<' in stopped

            authenticator = SoftAuthenticator()
            assert register(server, browser.http, authenticator).status_code == 201
            authorize = _to_sekisho(browser, origin, retry)
            assert browser.http.get(authorize).headers["location"] == "/signin"
            assert sign_in(server, browser.http, authenticator).status_code == 200
            page = _back_to_example(
                browser, origin, response_of(browser.http.get("/authorize/resume"))
            )
            assert 'id="acr">phr<' in page
            assert "Submit the withdrawal once more" in page
            assert _withdraw(browser, origin, page, 500_000) == "/"
            page = browser.http.get(origin + "/").text
            assert 'id="balance">¥700,000<' in page
            assert "The withdrawal is done." in page
        finally:
            browser.close()


@pytest.mark.parametrize(
    ("acr", "age", "amount", "challenged"),
    [
        ("urn:sekisho:acr:aal1", 0, THRESHOLD, False),
        ("urn:sekisho:acr:aal1", 0, THRESHOLD + 1, True),
        ("phr", 10, THRESHOLD + 1, False),
        ("phr", 301, THRESHOLD + 1, True),
    ],
)
def test_the_step_up_rule(acr: str, age: int, amount: int, challenged: bool) -> None:
    settings = BrokerageSettings(
        issuer="https://id.example",
        client_id="c",
        client_secret="s",
        origin="https://broker.example",
        session_key="k" * 32,
    )
    now = 1_800_000_000.0
    found = required_challenge(settings, {"acr": acr, "auth_time": now - age}, amount, now)
    assert (found is not None) == challenged
