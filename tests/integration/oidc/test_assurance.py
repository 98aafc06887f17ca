"""``acr`` and ``amr`` say what the session really proved (SECURITY.md case 39): a
passkey with user verification is ``phr`` with its RFC 8176 values, an email proof of the
same account stays AAL1."""

from __future__ import annotations

import httpx

from tests.support.authenticator import SoftAuthenticator
from tests.support.oidc import (
    authorize_url,
    exchange,
    query_of,
    register_client,
    response_of,
    verify_id_token,
)
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


def test_a_passkey_session_claims_phr_and_an_email_one_aal1(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("taku@example.com")
    registered = register_client(server)
    authenticator = SoftAuthenticator()
    with httpx.Client(base_url=server.url) as laptop:
        email_sign_in(server, smtp, laptop, "taku@example.com")
        assert register(server, laptop, authenticator).status_code == 201
        by_email = laptop.get(authorize_url(registered.client_id))
    with httpx.Client(base_url=server.url) as phone:
        waiting = phone.get(authorize_url(registered.client_id))
        assert waiting.headers["location"] == "/signin"
        assert sign_in(server, phone, authenticator).status_code == 200
        callback = response_of(phone.get("/authorize/resume"))
    tokens = exchange(server, registered, query_of(callback)["code"]).json()
    claims = verify_id_token(server, tokens["id_token"], client_id=registered.client_id)
    assert claims["acr"] == "phr"
    assert claims["amr"] == ["hwk", "pin", "mfa"]
    email_tokens = exchange(server, registered, query_of(by_email.headers["location"])["code"])
    email_claims = verify_id_token(
        server, email_tokens.json()["id_token"], client_id=registered.client_id
    )
    assert email_claims["acr"] == "urn:sekisho:acr:aal1"
    assert email_claims["amr"] == ["email"]
