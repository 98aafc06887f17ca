"""SECURITY.md cases 34-41, 47 and 49, checked case by case over real HTTP. Where a
case is proven elsewhere in this directory, the index below names the test; this file
holds the parts no other test covered.

- 34: test_refusals.test_bad_requests_go_back_with_the_error_state_and_iss (no or plain
  challenge), test_refusals.test_a_code_is_bound_to_its_verifier_client_and_redirect_uri
  (wrong verifier); a verifier where no challenge was sent: below.
- 35: test_refusals.test_an_unregistered_redirect_uri_gets_a_page_never_a_redirect.
- 36: test_refusals.test_a_replayed_code_revokes_the_tokens_it_issued and
  test_a_code_redeemed_twenty_times_at_once_gives_one_token.
- 37: another client: test_refusals (bound to its client); expired: below.
- 38: test_refresh_tokens.test_a_reused_refresh_token_revokes_the_whole_family and
  test_refresh_tokens.test_concurrent_refreshes_give_at_most_one_success.
- 39: test_code_flow.test_email_code_sign_in_resumes_the_authorization (nonce, amr, acr
  of an email sign-in), test_acr_values.test_a_weaker_session_steps_up_with_a_passkey
  (``phr`` from a passkey); ``auth_time`` when ``max_age`` was sent: below.
- 40: test_refusals.test_bad_requests_go_back_with_the_error_state_and_iss and
  test_code_flow (``iss``), test_resume_and_consent.
  test_prompt_login_and_max_age_zero_force_a_new_sign_in,
  test_refusals.test_prompt_none_answers_without_pages.
- 41: test_acr_values.test_a_weaker_session_steps_up_with_a_passkey (RFC 9470 round
  trip at the provider; tests/examples/brokerage through the example app),
  test_refusals (``response_type=token``, ``grant_type=password``); ``frame-ancestors``
  on every provider page and 303 after every credential POST: below.
- 47: test_code_flow.test_public_client_with_form_post_and_a_hostile_state.
- 49: test_acr_values.test_an_account_without_a_passkey_gets_unmet_authentication_requirements.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import text

from tests.support.browser import FormBrowser
from tests.support.oidc import (
    REDIRECT_URI,
    VERIFIER,
    authorize_url,
    code_for,
    exchange,
    query_of,
    register_client,
    sign_in_by_code,
    signed_in_browser,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

REQUEST_TAG = re.compile(r'name="request" value="([^"]+)"')


def _count(server: LiveServer, table: str) -> int:
    with server.database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _audited_reasons(server: LiveServer) -> list[str]:
    with server.database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT detail FROM audit_events WHERE event = 'oidc.token.refused' ORDER BY id")
        ).scalars()
        return [str(row) for row in rows]


def test_case_34_no_code_without_a_challenge_and_no_redemption_without_a_verifier(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """PKCE cannot be downgraded: a request without a challenge gets no code at all, so
    no code exists that a verifier-less (or any) token request could redeem; a token
    request without ``code_verifier`` is refused."""
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "ichika@example.com")
    try:
        plain = browser.http.get(authorize_url(registered.client_id, code_challenge=None))
        assert query_of(plain.headers["location"])["error"] == "invalid_request"
        assert _count(server, "oidc_codes") == 0
        code = code_for(browser, registered.client_id)
    finally:
        browser.close()
    with server.client() as http:
        without = http.post(
            "/token",
            data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
            auth=(registered.client_id, registered.secret or ""),
        )
    assert without.status_code == 400
    assert without.json()["error"] == "invalid_request"
    for verifier in ("", "short", "x" * 129, VERIFIER[:-1] + "%"):
        refused = exchange(server, registered, code, code_verifier=verifier)
        assert refused.json()["error"] == "invalid_grant", verifier
        assert "access_token" not in refused.json()


def test_case_37_an_expired_code_is_invalid_grant(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "mei@example.com")
    try:
        code = code_for(browser, registered.client_id)
        fresh = code_for(browser, registered.client_id)
    finally:
        browser.close()
    past = datetime.now(UTC) - timedelta(seconds=1)
    with server.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE oidc_codes SET expires_at = :past WHERE redeemed_at IS NULL"),
            {"past": past},
        )
    answer = exchange(server, registered, code)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_grant"
    assert answer.headers["cache-control"] == "no-store"
    assert exchange(server, registered, fresh).json()["error"] == "invalid_grant"
    assert all("unknown_or_expired" in detail for detail in _audited_reasons(server))
    assert len(_audited_reasons(server)) == 2


def test_case_39_auth_time_when_max_age_was_sent(server: LiveServer, smtp: SmtpCapture) -> None:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, "tomo@example.com")
    signed_in_at = int(datetime.now(UTC).timestamp())
    try:
        code = code_for(browser, registered.client_id, max_age="600", nonce="n-39")
    finally:
        browser.close()
    answer = exchange(server, registered, code)
    claims = verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)
    assert claims["nonce"] == "n-39"
    assert abs(int(claims["auth_time"]) - signed_in_at) <= 60
    assert claims["auth_time"] <= claims["iat"]


def _no_framing(answer: httpx.Response) -> None:
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], answer.url
    assert answer.headers["x-frame-options"] == "DENY"


def test_case_41_frame_ancestors_everywhere_and_303_after_credential_posts(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """Every provider answer a browser shows refuses framing; every POST that carries a
    credential or a decision answers 303 (or a page), never 307/308, which would make
    the browser re-post the credential to the next address."""
    server.add_user("kou@example.com")
    third_party = register_client(server, first_party=False, name="Kabu Notes")
    first_party = register_client(server)
    browser = FormBrowser(server.url)
    try:
        started = browser.http.get(authorize_url(third_party.client_id))
        error_page = browser.http.get(authorize_url("nobody"))
        signed_in = sign_in_by_code(browser, smtp, "kou@example.com")
        consent_page = browser.http.get("/authorize/resume")
        tag = REQUEST_TAG.search(consent_page.text)
        assert tag is not None
        consented = browser.post(
            "/authorize/consent", {"request": tag.group(1), "decision": "allow"}
        )
        form_post = browser.http.get(
            authorize_url(first_party.client_id, response_mode="form_post")
        )
        posted = browser.http.post(
            "/authorize",
            data=query_of(authorize_url(first_party.client_id)),
        )
        for answer in (started, error_page, signed_in, consent_page, consented, form_post, posted):
            _no_framing(answer)
        for answer in (started, signed_in, posted):
            assert answer.status_code == 303, answer.url
        for answer in (consent_page, consented, form_post):
            assert answer.status_code == 200, answer.url
        assert error_page.status_code == 400
        assert "code" in query_of(posted.headers["location"])
    finally:
        browser.close()
