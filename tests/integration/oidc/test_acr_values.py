"""``acr_values`` (OIDC Core §3.1.2.1, OpenID EAP ACR Values 1.0, RFC 9470): a session
that proved less than asked must sign in again with a passkey; an account that cannot
reach the level, or a new sign-in that still proved too little, answers the client
``unmet_authentication_requirements`` rather than a weaker login."""

from __future__ import annotations

import httpx

from tests.support.authenticator import SoftAuthenticator
from tests.support.oidc import (
    REDIRECT_URI,
    Registered,
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

AAL1 = "urn:sekisho:acr:aal1"


def _acr(server: LiveServer, registered: Registered, callback: str) -> str:
    answer = exchange(server, registered, query_of(callback)["code"])
    assert answer.status_code == 200, answer.text
    claims = verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)
    return str(claims["acr"])


def _refusal(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?")
    return query_of(location)


def test_an_account_without_a_passkey_gets_unmet_authentication_requirements(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("nao@example.com")
    registered = register_client(server)
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "nao@example.com")
        refusal = _refusal(browser.get(authorize_url(registered.client_id, acr_values="phr")))
        assert refusal["error"] == "unmet_authentication_requirements"
        assert refusal["state"] == "st-1"
        assert refusal["iss"] == server.settings.public_origin
        assert "code" not in refusal
        assert server.audited("oidc.authorization.refused")[-1]["error"] == (
            "unmet_authentication_requirements"
        )


def test_a_weaker_session_steps_up_with_a_passkey(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("ren@example.com")
    registered = register_client(server)
    authenticator = SoftAuthenticator()
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "ren@example.com")
        assert register(server, browser, authenticator).status_code == 201
        plain = browser.get(authorize_url(registered.client_id, acr_values=AAL1))
        assert _acr(server, registered, plain.headers["location"]) == AAL1
        asked = browser.get(authorize_url(registered.client_id, acr_values="phr"))
        assert asked.status_code == 303
        assert asked.headers["location"] == "/signin"
        assert browser.get("/authorize/resume").headers["location"] == "/signin"
        assert sign_in(server, browser, authenticator).status_code == 200
        assert _acr(server, registered, response_of(browser.get("/authorize/resume"))) == "phr"
        again = browser.get(authorize_url(registered.client_id, acr_values="phr"))
        assert again.status_code == 303
        assert _acr(server, registered, again.headers["location"]) == "phr"
        assert [entry["acr_values"] for entry in server.audited("oidc.authorization.step_up")] == [
            "phr"
        ]


def test_a_new_sign_in_that_still_proves_too_little_is_refused(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("sora@example.com")
    registered = register_client(server)
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "sora@example.com")
        assert register(server, browser, SoftAuthenticator()).status_code == 201
        smtp.wait_for("sora@example.com", 2)  # the new-passkey notice, before counting
        asked = browser.get(authorize_url(registered.client_id, acr_values="phr"))
        assert asked.headers["location"] == "/signin"
        email_sign_in(server, smtp, browser, "sora@example.com")
        page = browser.get("/authorize/resume")
        refusal = query_of(response_of(page))
        assert refusal["error"] == "unmet_authentication_requirements"
        assert "code" not in refusal
        assert browser.get("/authorize/resume").status_code == 400


def test_prompt_none_phrh_without_an_aal3_key_and_the_weakest_listed_value(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("yui@example.com")
    registered = register_client(server)
    with httpx.Client(base_url=server.url) as browser:
        email_sign_in(server, smtp, browser, "yui@example.com")
        assert register(server, browser, SoftAuthenticator()).status_code == 201
        silent = browser.get(authorize_url(registered.client_id, acr_values="phr", prompt="none"))
        assert _refusal(silent)["error"] == "login_required"
        hardware = browser.get(authorize_url(registered.client_id, acr_values="phrh"))
        assert _refusal(hardware)["error"] == "unmet_authentication_requirements"
        for accepted in (f"phr {AAL1}", "urn:example:unknown", f"urn:example:unknown {AAL1}"):
            answer = browser.get(authorize_url(registered.client_id, acr_values=accepted))
            assert answer.status_code == 303, accepted
            assert _acr(server, registered, answer.headers["location"]) == AAL1
