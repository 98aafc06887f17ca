"""Rich Authorization Requests (RFC 9396) over real HTTP, on SQLite and PostgreSQL
(issue 10, SECURITY.md case 52): ``authorization_details`` naming a declared action is
confirmed on Sekisho's confirmation page with a passkey whose challenge binds the
details, then carried by the code into the token response, the access token and
introspection, and redeemed once."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator, b64url_decode
from tests.support.browser import FormBrowser
from tests.support.clock import SettableClock
from tests.support.confirmations import (
    WITHDRAWAL,
    binding,
    collect,
    confirm,
    confirming_server,
    options,
    person,
    redeem,
)
from tests.support.oidc import (
    OFFLINE_SCOPES,
    REDIRECT_URI,
    Registered,
    authorize_url,
    exchange,
    post_as,
    query_of,
    refresh_with,
    register_client,
    response_of,
)
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.recovery import generate_codes, recover
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

REQUEST_TAG = re.compile(r'name="request" value="([^"]+)"')
REQUESTED = [{"type": "withdrawal", **WITHDRAWAL}]


@pytest.fixture
def rar(make_server: ServerFactory, tmp_path: Path) -> LiveServer:
    return confirming_server(make_server, tmp_path)


def _count(server: LiveServer, table: str) -> int:
    with server.database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _sub(server: LiveServer, email: str) -> str:
    with server.database.engine.connect() as connection:
        return str(
            connection.execute(
                text("SELECT id FROM users WHERE email = :e"), {"e": email}
            ).scalar_one()
        )


def _ask(
    browser: httpx.Client, registered: Registered, details: Any = None, **extra: str
) -> httpx.Response:
    raw = details if isinstance(details, str) else json.dumps(details or REQUESTED)
    return browser.get(authorize_url(registered.client_id, authorization_details=raw, **extra))


def _confirmation_of(answer: httpx.Response) -> str:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/confirm/"), location
    return location.removeprefix("/confirm/")


def _refusal(answer: httpx.Response) -> dict[str, str]:
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return query_of(location)


def _introspect(server: LiveServer, registered: Registered, token: str) -> dict[str, Any]:
    answer = post_as(server, registered, "/introspect", token=token)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _confirmed_code(
    server: LiveServer, browser: httpx.Client, authenticator: SoftAuthenticator, confirmation: str
) -> str:
    verified = confirm(server, browser, authenticator, confirmation)
    assert verified.status_code == 200, verified.text
    back = verified.json()["redirect_to"]
    assert back == f"/authorize/resume?confirmation={confirmation}"
    return query_of(response_of(browser.get(back)))["code"]


def _granted(
    server: LiveServer, registered: Registered, smtp: SmtpCapture, email: str
) -> tuple[str, str]:
    """A person confirms the withdrawal asked through RAR: the confirmation and the
    code the client gets."""
    with server.client() as browser:
        authenticator = person(server, smtp, browser, email)
        confirmation = _confirmation_of(_ask(browser, registered))
        return confirmation, _confirmed_code(server, browser, authenticator, confirmation)


def test_a_withdrawal_is_confirmed_bound_and_carried_into_the_tokens_once(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["authorization_details_types_supported"] == ["withdrawal", "close_account"]
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "hana@example.com")
        confirmation = _confirmation_of(_ask(browser, registered))
        page = browser.get(f"/confirm/{confirmation}", headers={"Accept-Language": "en"})
        assert page.status_code == 200
        assert "¥1,250,000" in page.text
        assert "MUFG 0123-4567890" in page.text
        assert (
            "出金先口座"
            in browser.get(f"/confirm/{confirmation}", headers={"Accept-Language": "ja"}).text
        )
        # Not yet confirmed: the way back leads to the page again, never to a code.
        assert browser.get("/authorize/resume").headers["location"] == f"/confirm/{confirmation}"

        started = options(browser, confirmation)
        public_key = started.json()["publicKey"]
        assert public_key["userVerification"] == "required"
        challenge = b64url_decode(public_key["challenge"])
        bound = binding(
            jti=confirmation,
            aud=registered.client_id,
            sub=_sub(server, "hana@example.com"),
            action="withdrawal",
            details=WITHDRAWAL,
        )
        assert challenge[32:] == bound
        verified = confirm(server, browser, authenticator, confirmation, started=started)
        assert verified.status_code == 200, verified.text
        code = query_of(response_of(browser.get(verified.json()["redirect_to"])))["code"]

    # The token request cannot change what was confirmed: its own authorization_details
    # are not read, the grant names the confirmation.
    tampered = json.dumps([{"type": "withdrawal", **WITHDRAWAL, "amount": "9999999"}])
    tokens = exchange(server, registered, code, authorization_details=tampered)
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["authorization_details"] == REQUESTED
    assert "refresh_token" not in tokens.json()
    claims = _introspect(server, registered, tokens.json()["access_token"])
    assert claims["active"] is True
    assert claims["authorization_details"] == REQUESTED
    assert claims["txn"] == confirmation
    assert exchange(server, registered, code).json()["error"] == "invalid_grant"

    spent = redeem(server, registered, confirmation)
    assert spent.status_code == 200, spent.text
    again = redeem(server, registered, confirmation)
    assert (again.status_code, again.json()["error"]) == (409, "confirmation_used")
    assert _introspect(server, registered, tokens.json()["access_token"]) == {"active": False}
    requested = server.audited("confirmation.requested")
    assert [entry["via"] for entry in requested] == ["authorization_details"]
    assert server.audited("oidc.authorization.granted")[-1]["confirmation"] == confirmation


def test_an_assertion_for_one_transaction_cannot_confirm_another(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    """The details are bound by construction: the challenge signed for one request's
    details is refused for another's, and the other request gets no code."""
    server = rar
    registered = register_client(server)
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "kai@example.com")
        first = _confirmation_of(_ask(browser, registered))
        started = options(browser, first)
        other = [{"type": "withdrawal", **WITHDRAWAL, "destination": "MUFG 0999-0000001"}]
        second = _confirmation_of(_ask(browser, registered, other))
        assert second != first
        public_key = started.json()["publicKey"]
        credential = authenticator.assert_(
            rp_id=public_key["rpId"],
            origin=server.settings.public_origin,
            challenge=b64url_decode(public_key["challenge"]),
            allow_credentials=[b64url_decode(c["id"]) for c in public_key["allowCredentials"]],
        )
        moved = browser.post(
            f"/api/v1/confirmations/{second}/verify",
            json={"flow_id": started.json()["flow_id"], "credential": credential},
        )
        assert (moved.status_code, moved.json()["error"]) == (400, "invalid_or_expired")
        assert browser.get("/authorize/resume").headers["location"] == f"/confirm/{second}"
        code = _confirmed_code(server, browser, authenticator, second)
    tokens = exchange(server, registered, code)
    assert tokens.json()["authorization_details"] == other
    failures = server.audited("confirmation.passkey.failed")
    assert [entry["reason"] for entry in failures] == ["challenge_of_another_transaction"]


@pytest.mark.parametrize(
    "details",
    [
        [{"type": "transfer", **WITHDRAWAL}],
        [{**WITHDRAWAL}],
        [{"type": "withdrawal", "amount": "100", "currency": "JPY"}],
        [{"type": "withdrawal", **WITHDRAWAL, "memo": "x"}],
        [{"type": "withdrawal", **WITHDRAWAL, "amount": 1250000}],
        [{"type": "withdrawal", **WITHDRAWAL, "currency": "XXQ"}],
        [{"type": "withdrawal", **WITHDRAWAL}, {"type": "close_account", "account": "A-1"}],
        [],
        {"type": "withdrawal", **WITHDRAWAL},
        "not json",
        "[" * 2000 + "]" * 2000,  # deeper than the interpreter's recursion limit
        '[{"type": "withdrawal", "\\ud800": 1}]',  # a lone surrogate as a field name
    ],
)
def test_undeclared_types_and_invalid_fields_are_refused_to_the_client(
    rar: LiveServer, smtp: SmtpCapture, details: Any
) -> None:
    server = rar
    registered = register_client(server)
    raw = details if isinstance(details, str) else json.dumps(details)
    with server.client() as browser:
        person(server, smtp, browser, "mio@example.com")
        refusal = _refusal(_ask(browser, registered, raw))
    assert refusal["error"] == "invalid_authorization_details"
    assert refusal["state"] == "st-1"
    assert refusal["iss"] == server.settings.public_origin
    assert "code" not in refusal
    assert _count(server, "transaction_confirmations") == 0
    assert server.audited("oidc.authorization.refused")[-1]["error"] == (
        "invalid_authorization_details"
    )


def test_a_public_client_may_not_ask_for_a_transaction(rar: LiveServer, smtp: SmtpCapture) -> None:
    server = rar
    registered = register_client(server, auth_method="none")
    with server.client() as browser:
        person(server, smtp, browser, "ao@example.com")
        assert _refusal(_ask(browser, registered))["error"] == "unauthorized_client"
    assert _count(server, "transaction_confirmations") == 0


def test_an_account_below_the_step_up_level_gets_unmet_authentication_requirements(
    make_server: ServerFactory, tmp_path: Path, smtp: SmtpCapture
) -> None:
    """The tier wants AAL3 for a withdrawal; a synced passkey reaches AAL2 only."""
    server = confirming_server(make_server, tmp_path, aal=3)
    registered = register_client(server)
    with server.client() as browser:
        person(server, smtp, browser, "rin@example.com")
        refusal = _refusal(_ask(browser, registered))
    assert refusal["error"] == "unmet_authentication_requirements"
    assert refusal["state"] == "st-1"
    assert _count(server, "transaction_confirmations") == 0


def test_an_email_session_steps_up_with_a_passkey_before_the_confirmation(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    server.add_user("sou@example.com")
    authenticator = SoftAuthenticator()
    with server.client() as browser:
        email_sign_in(server, smtp, browser, "sou@example.com")
        assert register(server, browser, authenticator).status_code == 201
        asked = _ask(browser, registered)
        assert (asked.status_code, asked.headers["location"]) == (303, "/signin")
        assert _count(server, "transaction_confirmations") == 0
        assert sign_in(server, browser, authenticator).status_code == 200
        confirmation = _confirmation_of(browser.get("/authorize/resume"))
        code = _confirmed_code(server, browser, authenticator, confirmation)
    assert exchange(server, registered, code).json()["authorization_details"] == REQUESTED
    assert [entry["acr_values"] for entry in server.audited("oidc.authorization.step_up")] == [
        "phr"
    ]


def test_leaving_the_page_unconfirmed_declines_the_request(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    with server.client() as browser:
        person(server, smtp, browser, "yua@example.com")
        confirmation = _confirmation_of(_ask(browser, registered))
        page = browser.get(f"/confirm/{confirmation}")
        assert f'href="/authorize/resume?confirmation={confirmation}"' in page.text
        declined = query_of(
            response_of(browser.get(f"/authorize/resume?confirmation={confirmation}"))
        )
        assert declined["error"] == "access_denied"
        assert "code" not in declined
        assert browser.get("/authorize/resume").status_code == 400


def test_a_refresh_drops_the_transaction(rar: LiveServer, smtp: SmtpCapture) -> None:
    """RFC 9396 §7 lets the server decide what a refresh carries: never the details,
    which were confirmed for one use."""
    server = rar
    registered = register_client(server, scopes=OFFLINE_SCOPES)
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "emi@example.com")
        confirmation = _confirmation_of(_ask(browser, registered, scope="openid offline_access"))
        code = _confirmed_code(server, browser, authenticator, confirmation)
    tokens = exchange(server, registered, code).json()
    assert tokens["authorization_details"] == REQUESTED
    refreshed = refresh_with(server, registered, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    assert "authorization_details" not in refreshed.json()
    claims = _introspect(server, registered, refreshed.json()["access_token"])
    assert claims["active"] is True
    assert "authorization_details" not in claims
    assert "txn" not in claims


def test_a_third_party_client_gets_consent_then_the_confirmation(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server, first_party=False, name="Kabu Notes")
    browser = FormBrowser(server.url)
    try:
        authenticator = person(server, smtp, browser.http, "nagi@example.com")
        asked = _ask(browser.http, registered)
        assert asked.headers["location"] == "/authorize/resume"
        tag = REQUEST_TAG.search(browser.http.get("/authorize/resume").text)
        assert tag is not None
        assert _count(server, "transaction_confirmations") == 0
        allowed = browser.post("/authorize/consent", {"request": tag.group(1), "decision": "allow"})
        confirmation = _confirmation_of(allowed)
        code = _confirmed_code(server, browser.http, authenticator, confirmation)
    finally:
        browser.close()
    assert exchange(server, registered, code).json()["authorization_details"] == REQUESTED


def test_signed_out_the_passkey_comes_first_then_the_confirmation(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    """A transaction needs a passkey whatever the tier: the sign-in page offers it
    first, and signing in with it leads straight to the confirmation page."""
    server = rar
    registered = register_client(server)
    with server.client() as setup:
        authenticator = person(server, smtp, setup, "mei@example.com")
    with server.client() as browser:
        asked = _ask(browser, registered)
        assert asked.headers["location"] == "/signin"
        page = browser.get("/signin")
        assert page.text.index('id="passkey-signin"') < page.text.index('id="email-form"')
        assert 'id="passkey-required"' in page.text
        assert sign_in(server, browser, authenticator).status_code == 200
        confirmation = _confirmation_of(browser.get("/authorize/resume"))
        code = _confirmed_code(server, browser, authenticator, confirmation)
        # the person confirmed the transaction they asked for, not someone else's
        assert _count(server, "transaction_confirmations") == 1
    answer = exchange(server, registered, code)
    assert answer.json()["authorization_details"] == REQUESTED


def test_a_transaction_redeemed_before_the_token_request_gives_no_tokens(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    confirmation, code = _granted(server, registered, smtp, "toa@example.com")
    assert redeem(server, registered, confirmation).status_code == 200
    refused = exchange(server, registered, code)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    refusals = server.audited("oidc.token.refused")
    assert [entry["reason"] for entry in refusals] == ["transaction_unusable"]


def test_prompt_none_is_interaction_required_and_another_person_cannot_finish_it(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    with server.client() as first, server.client() as second:
        person(server, smtp, first, "hiro@example.com")
        silent = _refusal(_ask(first, registered, prompt="none"))
        assert silent["error"] == "interaction_required"
        assert _count(server, "transaction_confirmations") == 0
        confirmation = _confirmation_of(_ask(first, registered))
        pending = {name: value for name, value in first.cookies.items() if "authorization" in name}
        assert len(pending) == 1
        # Someone else, holding this browser's request (a shared computer), gets no code.
        person(server, smtp, second, "kenta@example.com")
        for name, value in pending.items():
            second.cookies.set(name, value)
        assert second.get(f"/confirm/{confirmation}").status_code == 404
        taken = query_of(response_of(second.get("/authorize/resume")))
        assert taken["error"] == "access_denied"
        assert "code" not in taken
        assert first.get("/authorize/resume").status_code == 400


def _expire(server: LiveServer, confirmation: str) -> None:
    with server.database.engine.begin() as connection:
        connection.execute(
            text("UPDATE transaction_confirmations SET expires_at = created_at WHERE id = :id"),
            {"id": confirmation},
        )


def test_the_access_token_carries_the_transaction_under_the_published_keys(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    """RFC 9396 §9.1 and RFC 9068: what a resource server reads from the JWT itself,
    checked with joserfc against the JWKS, not with the server's code."""
    server = rar
    registered = register_client(server)
    confirmation, code = _granted(server, registered, smtp, "sora@example.com")
    tokens = exchange(server, registered, code)
    assert tokens.status_code == 200, tokens.text
    with httpx.Client(timeout=30) as http:
        metadata = http.get(server.url + "/.well-known/openid-configuration").json()
        key_set = KeySet.import_key_set(http.get(metadata["jwks_uri"]).json())
    decoded = jwt.decode(tokens.json()["access_token"], key_set, algorithms=["ES256"])
    assert decoded.header["typ"] == "at+jwt"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": metadata["issuer"]},
        aud={"essential": True, "value": metadata["issuer"]},
        client_id={"essential": True, "value": registered.client_id},
        exp={"essential": True},
        jti={"essential": True},
    ).validate(decoded.claims)
    assert decoded.claims["authorization_details"] == REQUESTED
    assert decoded.claims["txn"] == confirmation
    assert decoded.claims["acr"] == "phr"


def test_an_expired_transaction_gives_no_tokens_and_cannot_be_redeemed(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    confirmation, code = _granted(server, registered, smtp, "riku@example.com")
    _expire(server, confirmation)
    refused = exchange(server, registered, code)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert [entry["reason"] for entry in server.audited("oidc.token.refused")] == [
        "transaction_unusable"
    ]
    late = redeem(server, registered, confirmation)
    assert (late.status_code, late.json()["error"]) == (410, "confirmation_expired")
    assert server.audited("confirmation.refused")[-1]["reason"] == "expired"


def test_a_transaction_expiring_after_the_tokens_leaves_them_inactive(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    confirmation, code = _granted(server, registered, smtp, "nao@example.com")
    tokens = exchange(server, registered, code)
    assert tokens.status_code == 200, tokens.text
    access = tokens.json()["access_token"]
    assert _introspect(server, registered, access)["txn"] == confirmation
    _expire(server, confirmation)
    assert _introspect(server, registered, access) == {"active": False}
    late = redeem(server, registered, confirmation)
    assert (late.status_code, late.json()["error"]) == (410, "confirmation_expired")


def test_a_transaction_expired_on_the_page_cannot_be_confirmed(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "ema@example.com")
        confirmation = _confirmation_of(_ask(browser, registered))
        started = options(browser, confirmation)
        assert started.status_code == 200, started.text
        _expire(server, confirmation)
        late = confirm(server, browser, authenticator, confirmation, started=started)
        assert (late.status_code, late.json()["error"]) == (410, "confirmation_expired")
        declined = query_of(response_of(browser.get("/authorize/resume")))
    assert declined["error"] == "access_denied"
    assert "code" not in declined
    assert server.audited("oidc.authorization.granted") == []


def test_another_client_can_neither_redeem_the_transaction_nor_spend_it(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    """The confirmation's audience is the client that asked. Another confidential
    client learns nothing of the access token by introspection (it is not a resource
    server the owner's tokens are meant for; see :mod:`sekisho.oidc.introspection`),
    and it cannot collect or redeem the transaction, nor burn it for its owner."""
    server = rar
    registered = register_client(server)
    other = register_client(server, name="Other app")
    confirmation, code = _granted(server, registered, smtp, "yuki@example.com")
    tokens = exchange(server, registered, code)
    assert tokens.status_code == 200, tokens.text
    access = tokens.json()["access_token"]
    assert _introspect(server, registered, access)["txn"] == confirmation
    for answer in (redeem(server, other, confirmation), collect(server, other, confirmation)):
        assert (answer.status_code, answer.json()["error"]) == (404, "confirmation_unknown")
    assert _introspect(server, other, access) == {"active": False}
    assert redeem(server, registered, confirmation).status_code == 200


def test_another_client_presenting_the_code_gets_no_tokens_and_burns_the_grant(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    server = rar
    registered = register_client(server)
    other = register_client(server, name="Other app")
    confirmation, code = _granted(server, registered, smtp, "kaito@example.com")
    stolen = exchange(server, other, code)
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")
    assert "access_token" not in stolen.json()
    assert [entry["reason"] for entry in server.audited("oidc.token.refused")] == ["other_client"]
    late = exchange(server, registered, code)
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")
    refused = redeem(server, other, confirmation)
    assert (refused.status_code, refused.json()["error"]) == (404, "confirmation_unknown")


def _recovered(server: LiveServer, smtp: SmtpCapture, email: str) -> tuple[FormBrowser, list[str]]:
    """An account signed in by email with recovery codes made, in its own browser."""
    server.add_user(email)
    browser = FormBrowser(server.url)
    email_sign_in(server, smtp, browser.http, email)
    return browser, generate_codes(browser)


def test_an_account_on_hold_after_a_recovery_is_refused_the_transaction(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    """SECURITY.md case 54: after a recovery, money movement waits for the hold,
    however fresh and strong the new passkey's sign-in."""
    server = rar
    registered = register_client(server)
    owner, codes = _recovered(server, smtp, "shun@example.com")
    owner.close()
    rescuer = FormBrowser(server.url)
    try:
        assert recover(rescuer, "shun@example.com", codes[0]) == 303
        replacement = SoftAuthenticator()
        assert register(server, rescuer.http, replacement).status_code == 201
        assert sign_in(server, rescuer.http, replacement).status_code == 200
        refusal = _refusal(_ask(rescuer.http, registered))
    finally:
        rescuer.close()
    assert refusal["error"] == "access_denied"
    assert "code" not in refusal
    assert server.audited("oidc.authorization.refused")[-1]["error"] == "recovery_hold"
    assert _count(server, "transaction_confirmations") == 0


def test_a_transaction_opened_before_a_recovery_cannot_be_confirmed_on_hold(
    rar: LiveServer, smtp: SmtpCapture
) -> None:
    """The hold also covers a transaction asked before the recovery: the same browser,
    recovered and signed in with the new passkey, cannot confirm it and gets no code."""
    server = rar
    registered = register_client(server)
    browser, codes = _recovered(server, smtp, "tomo@example.com")
    try:
        lost = SoftAuthenticator()
        assert register(server, browser.http, lost).status_code == 201
        assert sign_in(server, browser.http, lost).status_code == 200
        confirmation = _confirmation_of(_ask(browser.http, registered))
        started = options(browser.http, confirmation)
        assert recover(browser, "tomo@example.com", codes[0]) == 303
        replacement = SoftAuthenticator()
        assert register(server, browser.http, replacement).status_code == 201
        assert sign_in(server, browser.http, replacement).status_code == 200
        for held in (
            options(browser.http, confirmation),
            confirm(server, browser.http, lost, confirmation, started=started),
        ):
            assert (held.status_code, held.json()["error"]) == (403, "recovery_hold")
        declined = query_of(
            response_of(browser.http.get(f"/authorize/resume?confirmation={confirmation}"))
        )
    finally:
        browser.close()
    assert declined["error"] == "access_denied"
    assert "code" not in declined
    assert server.audited("oidc.authorization.granted") == []
    refusals = server.audited("confirmation.refused")
    assert [entry["reason"] for entry in refusals] == ["recovery_hold", "recovery_hold"]


def test_a_sign_in_older_than_the_actions_max_age_is_made_again(
    make_server: ServerFactory, tmp_path: Path, smtp: SmtpCapture
) -> None:
    """The tier's ``max_age`` for a withdrawal (5 minutes) wins over the client's
    looser one (an hour): a passkey sign-in 6 minutes old is sent to sign in again
    before any confirmation is opened, and the tokens carry the new ``auth_time``."""
    clock = SettableClock()
    server = confirming_server(make_server, tmp_path, clock=clock)
    registered = register_client(server)
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "aki@example.com")
        clock.advance(timedelta(minutes=6))
        asked = _ask(browser, registered, max_age="3600")
        assert (asked.status_code, asked.headers["location"]) == (303, "/signin")
        assert _count(server, "transaction_confirmations") == 0
        again = clock()
        assert sign_in(server, browser, authenticator).status_code == 200
        confirmation = _confirmation_of(browser.get("/authorize/resume"))
        code = _confirmed_code(server, browser, authenticator, confirmation)
    tokens = exchange(server, registered, code)
    assert tokens.status_code == 200, tokens.text
    claims = _introspect(server, registered, tokens.json()["access_token"])
    assert claims["authorization_details"] == REQUESTED
    assert claims["auth_time"] >= int(again.timestamp())
