"""The brokerage example against a live Sekisho over real HTTP and SMTP: sign-in by
email code through Authlib's client (discovery, code + PKCE), the account page with
the session's amr/acr, and a large withdrawal that Sekisho answers with the RFC 9470
challenge (the example's policy file), whose retry reaches Sekisho with
``acr_values=phr`` and ends, for an account without a passkey, in
``unmet_authentication_requirements``; with a passkey, on Sekisho's confirmation page,
whose signed confirmation the example verifies and redeems once before moving money."""

from __future__ import annotations

import contextlib
import html
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey

from examples.brokerage.app import (
    Account,
    BrokerageSettings,
    Challenge,
    check_confirmation,
    create_app,
    details_hash,
    withdrawal_details,
)
from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator
from tests.support.browser import FormBrowser
from tests.support.confirmations import confirm
from tests.support.confirmations import details_hash as independent_hash
from tests.support.oidc import query_of, register_client, response_of, sign_in_by_code
from tests.support.passkeys import register, sign_in
from tests.support.ports import free_port
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
THRESHOLD = 100_000
POLICY = Path(__file__).resolve().parents[3] / "examples" / "brokerage" / "policy.toml"


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    """Sekisho with the example's own policy file (serve.py starts it so)."""
    return make_server(policy_file=POLICY)


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
    registered = register_client(
        server,
        redirect_uris=(
            f"http://127.0.0.1:{port}/callback",
            f"http://127.0.0.1:{port}/withdrawals/confirmed",
        ),
    )
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
            to_confirm = _withdraw(browser, origin, page, 500_000)
            assert to_confirm.startswith(server.settings.public_origin + "/confirm/")
            shown = browser.http.get(to_confirm)
            assert "¥500,000" in shown.text
            assert "MUFG 0123-4567890" in shown.text
            assert 'id="balance">¥1,200,000<' in browser.http.get(origin + "/").text
            confirmation_id = to_confirm.rsplit("/", 1)[1]
            verified = confirm(server, browser.http, authenticator, confirmation_id)
            assert verified.status_code == 200, verified.text
            back = verified.json()["redirect_to"]
            assert back == f"{origin}/withdrawals/confirmed?confirmation={confirmation_id}"
            assert browser.http.get(back).headers["location"] == "/"
            page = browser.http.get(origin + "/").text
            assert 'id="balance">¥700,000<' in page
            assert "The withdrawal is done." in page
            # The same return again moves nothing: nothing is pending, and Sekisho
            # would refuse a second redemption anyway.
            assert browser.http.get(back).headers["location"] == "/"
            assert 'id="balance">¥700,000<' in browser.http.get(origin + "/").text
        finally:
            browser.close()


KEY = ECKey.generate_key("P-256", parameters={"kid": "k1"})


def _signed(typ: str = "txn-confirmation+jwt", lifetime: int = 300, **claims: object) -> str:
    """Signed when the test runs, not when it is collected: a long run would outlive
    ``exp``."""
    now = int(time.time())
    values: dict[str, object] = {
        "iss": "https://id.example",
        "aud": "brokerage",
        "sub": "u1",
        "jti": "j1",
        "iat": now,
        "exp": now + lifetime,
        "action": "withdrawal",
        "details_hash": details_hash(withdrawal_details(500_000, Account())),
        **claims,
    }
    return jwt.encode({"alg": "ES256", "kid": "k1", "typ": typ}, values, KEY)


@pytest.mark.parametrize(
    ("made", "accepted"),
    [
        ({}, True),
        ({"typ": "JWT"}, False),
        ({"aud": "other-app"}, False),
        ({"iss": "https://evil.example"}, False),
        ({"action": "close_account"}, False),
        ({"details_hash": details_hash(withdrawal_details(500_001, Account()))}, False),
        ({"lifetime": -1}, False),
        (None, False),
    ],
)
def test_the_example_checks_every_claim_of_the_confirmation(
    made: dict[str, Any] | None, accepted: bool
) -> None:
    token = "not-a-jwt" if made is None else _signed(**made)
    details = withdrawal_details(500_000, Account())
    assert details == {"amount": "500000", "currency": "JPY", "destination": "MUFG 0123-4567890"}
    assert details_hash(details) == independent_hash(details)
    found = check_confirmation(
        token,
        jwks={"keys": [KEY.as_dict(private=False)]},
        issuer="https://id.example",
        client_id="brokerage",
        expected=details,
    )
    assert (found is not None) == accepted
