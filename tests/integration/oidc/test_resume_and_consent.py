"""The authorization waits for Sekisho's own sign-in and consent pages and resumes
(OIDC Core §3.1.2.3-4): prompt=login and max_age force a new proof (case 40), the email
link approved on another device lets the waiting browser continue, and third-party
clients ask for consent once."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.browser import FormBrowser
from tests.support.oidc import (
    Registered,
    authorize_url,
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

REQUEST_TAG = re.compile(r'name="request" value="([^"]+)"')
NUMBER = re.compile(r'id="approval-number"[^>]*>(\d+)<')


def _claims(server: LiveServer, registered: Registered, callback: str) -> dict[str, Any]:
    answer = exchange(server, registered, query_of(callback)["code"])
    assert answer.status_code == 200, answer.text
    return verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)


def test_prompt_login_and_max_age_zero_force_a_new_sign_in(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "emi@example.com")
    try:
        first = browser.http.get(authorize_url(registered.client_id))
        assert first.status_code == 303
        before = _claims(server, registered, first.headers["location"])
        for fresh in ({"prompt": "login"}, {"max_age": "0"}):
            again = browser.http.get(authorize_url(registered.client_id, **fresh))
            assert again.status_code == 303
            assert again.headers["location"] == "/signin", fresh
            assert browser.http.get("/authorize/resume").headers["location"] == "/signin"
            signed = sign_in_by_code(browser, smtp, "emi@example.com")
            assert signed.headers["location"] == "/authorize/resume"
            after = _claims(server, registered, response_of(browser.http.get("/authorize/resume")))
            assert after["sid"] != before["sid"]
            assert after["auth_time"] >= before["auth_time"]
            before = after
        recent = browser.http.get(authorize_url(registered.client_id, max_age="3600"))
        assert recent.status_code == 303
        assert "code" in query_of(recent.headers["location"])
    finally:
        browser.close()


def test_the_email_link_approved_on_another_device_resumes_the_waiting_browser(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    user_id = server.add_user("haru@example.com")
    registered = register_client(server)
    laptop = FormBrowser(server.url)
    phone = FormBrowser(server.url, user_agent="Mozilla/5.0 (iPhone) Safari/605.1.15")
    try:
        assert laptop.http.get(authorize_url(registered.client_id)).headers["location"] == (
            "/signin"
        )
        flow = laptop.request_email("haru@example.com")
        wait = laptop.http.get(f"/signin/email/wait?flow={flow}")
        number = NUMBER.search(wait.text)
        assert number is not None, wait.text
        assert wait.text.count('data-after-sign-in="/authorize/resume"') == 1
        link, _code = link_and_code(smtp.wait_for("haru@example.com"))
        token = parse_qs(urlsplit(link).query)["token"][0]
        approved = phone.post(
            "/signin/email/link/approve", {"token": token, "number": number.group(1)}
        )
        assert approved.status_code == 200, approved.text
        assert phone.http.cookies.get("sekisho_authorization") is None
        completed = laptop.post("/signin/email/complete", {"flow": flow})
        assert completed.status_code == 303
        assert completed.headers["location"] == "/authorize/resume"
        callback = response_of(laptop.http.get("/authorize/resume"))
    finally:
        laptop.close()
        phone.close()
    assert _claims(server, registered, callback)["sub"] == user_id


def test_third_party_clients_ask_for_consent_once(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server, first_party=False, name="Kabu Notes")
    browser = signed_in_browser(server, smtp, "rin@example.com")
    try:
        asked = browser.http.get(authorize_url(registered.client_id))
        assert asked.headers["location"] == "/authorize/resume"
        page = browser.http.get("/authorize/resume")
        assert page.status_code == 200
        assert "Kabu Notes" in page.text
        assert "See your email address" in page.text
        tag = REQUEST_TAG.search(page.text)
        assert tag is not None
        forged = browser.post("/authorize/consent", {"request": "x" * 32, "decision": "allow"})
        assert forged.status_code == 400
        denied = browser.post("/authorize/consent", {"request": tag.group(1), "decision": "deny"})
        assert query_of(response_of(denied))["error"] == "access_denied"
        browser.http.get(authorize_url(registered.client_id))
        tag = REQUEST_TAG.search(browser.http.get("/authorize/resume").text)
        assert tag is not None
        allowed = browser.post("/authorize/consent", {"request": tag.group(1), "decision": "allow"})
        callback = response_of(allowed)
        remembered = browser.http.get(authorize_url(registered.client_id))
        asked_again = browser.http.get(authorize_url(registered.client_id, prompt="consent"))
        more_scopes = browser.http.get(
            authorize_url(registered.client_id, scope="openid email profile")
        )
    finally:
        browser.close()
    assert query_of(callback)["state"] == "st-1"
    assert _claims(server, registered, callback)["email"] == "rin@example.com"
    assert "code" in query_of(remembered.headers["location"])
    assert asked_again.headers["location"] == "/authorize/resume"
    assert more_scopes.headers["location"] == "/authorize/resume"
