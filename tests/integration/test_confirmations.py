"""Transaction confirmations over real HTTP, on SQLite and PostgreSQL (issue 10,
SECURITY.md cases 52 and 53): an application asks with the person's access token, the
person confirms with a passkey whose challenge binds the details, the application
verifies the signed confirmation with the published keys and redeems it once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, text, update

from sekisho.store.tables import account_recoveries, oidc_grants
from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator, b64url_decode
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
from tests.support.confirmations import (
    WITHDRAWAL,
    access_token,
    ask,
    binding,
    collect,
    confirm,
    confirming_server,
    details_hash,
    options,
    person,
    redeem,
    verify_confirmation,
)
from tests.support.oidc import REDIRECT_URI, Registered, register_client, sign_in_by_code
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


@pytest.fixture
def confirming(make_server: ServerFactory, tmp_path: Path) -> LiveServer:
    return confirming_server(make_server, tmp_path)


def _execute(server: LiveServer, statement: str, **values: Any) -> None:
    with server.database.engine.begin() as connection:
        connection.execute(text(statement), values)


def _asked(server: LiveServer, token: str, **kwargs: Any) -> dict[str, Any]:
    answer = ask(server, token, **kwargs)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def _confirmed(
    server: LiveServer,
    smtp: SmtpCapture,
    browser: httpx.Client,
    registered: Registered,
    email: str,
) -> str:
    authenticator = person(server, smtp, browser, email)
    created = _asked(server, access_token(server, registered, browser))
    assert confirm(server, browser, authenticator, created["id"]).status_code == 200
    return str(created["id"])


def test_a_withdrawal_is_confirmed_bound_verified_and_redeemed_once(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "hana@example.com")
        token = access_token(server, registered, browser)
        created = _asked(server, token, return_uri=REDIRECT_URI)
        assert created["details_hash"] == details_hash(WITHDRAWAL)
        assert created["url"] == f"{server.settings.public_origin}/confirm/{created['id']}"
        page = browser.get(f"/confirm/{created['id']}", headers={"Accept-Language": "en"})
        assert page.status_code == 200
        assert "¥1,250,000" in page.text
        assert "MUFG 0123-4567890" in page.text
        japanese = browser.get(f"/confirm/{created['id']}", headers={"Accept-Language": "ja"})
        assert "￥1,250,000" in japanese.text
        assert "出金先口座" in japanese.text
        assert collect(server, registered, created["id"]).json()["status"] == "pending"
        assert redeem(server, registered, created["id"]).json()["error"] == ("confirmation_pending")

        started = options(browser, created["id"])
        public_key = started.json()["publicKey"]
        challenge = b64url_decode(public_key["challenge"])
        requested = server.audited("confirmation.requested")[-1]
        with server.database.engine.connect() as connection:
            sub = connection.execute(
                text("SELECT id FROM users WHERE email = 'hana@example.com'")
            ).scalar_one()
        assert requested["details_hash"] == created["details_hash"]
        assert len(challenge) == 64
        assert challenge[32:] == binding(
            jti=created["id"],
            aud=registered.client_id,
            sub=sub,
            action="withdrawal",
            details=WITHDRAWAL,
        )
        assert public_key["userVerification"] == "required"
        verified = confirm(server, browser, authenticator, created["id"], started=started)
        assert verified.status_code == 200, verified.text
        assert verified.json()["redirect_to"] == f"{REDIRECT_URI}?confirmation={created['id']}"

    collected = collect(server, registered, created["id"]).json()
    assert collected["status"] == "confirmed"
    claims = verify_confirmation(server, collected["confirmation"], client_id=registered.client_id)
    assert claims["jti"] == created["id"]
    assert claims["sub"] == sub
    assert claims["action"] == "withdrawal"
    assert claims["details"] == WITHDRAWAL
    assert claims["details_hash"] == details_hash(WITHDRAWAL)
    assert claims["acr"] == "phr"
    assert "swk" in claims["amr"] or "hwk" in claims["amr"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["auth_time"] == claims["iat"]

    spent = redeem(server, registered, created["id"])
    assert spent.status_code == 200, spent.text
    assert spent.json()["details_hash"] == details_hash(WITHDRAWAL)
    again = redeem(server, registered, created["id"])
    assert (again.status_code, again.json()["error"]) == (409, "confirmation_used")
    assert collect(server, registered, created["id"]).json()["confirmation"] is None
    assert [entry["reason"] for entry in server.audited("confirmation.refused")] == [
        "pending",
        "redeemed",
    ]
    assert len(server.audited("confirmation.confirmed")) == 1
    assert len(server.audited("confirmation.redeemed")) == 1


@pytest.mark.parametrize(
    ("action", "details"),
    [
        ("withdrawal", {**WITHDRAWAL, "amount": "1250001"}),
        ("withdrawal", {**WITHDRAWAL, "currency": "USD"}),
        ("withdrawal", {**WITHDRAWAL, "destination": "MUFG 0123-4567891"}),
        ("close_account", {"account": "MUFG 0123-4567890"}),
    ],
)
def test_another_action_or_other_details_are_refused_and_spend_it(
    confirming: LiveServer, smtp: SmtpCapture, action: str, details: dict[str, Any]
) -> None:
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        jti = _confirmed(server, smtp, browser, registered, "kai@example.com")
    refused = redeem(server, registered, jti, action=action, details=details)
    assert (refused.status_code, refused.json()["error"]) == (409, "confirmation_mismatch")
    honest = redeem(server, registered, jti)
    assert (honest.status_code, honest.json()["error"]) == (409, "confirmation_used")
    assert server.audited("confirmation.refused")[0]["reason"] == "mismatch"


def test_a_confirmation_redeemed_twenty_times_at_once_is_spent_once(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    """The redemption is one atomic update: parallel requests from the application
    (a retry storm, or a replay) give one 200 and nineteen ``confirmation_used``."""
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        jti = _confirmed(server, smtp, browser, registered, "rin@example.com")
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: redeem(server, registered, jti), range(20)))
    outcomes = sorted((answer.status_code, answer.json().get("error", "")) for answer in answers)
    assert outcomes == [(200, "")] + [(409, "confirmation_used")] * 19
    assert len(server.audited("confirmation.redeemed")) == 1


def test_another_client_and_an_expired_confirmation_are_refused(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    other = register_client(server, name="Other app")
    with server.client() as browser:
        jti = _confirmed(server, smtp, browser, registered, "mio@example.com")
    for answer in (redeem(server, other, jti), collect(server, other, jti)):
        assert (answer.status_code, answer.json()["error"]) == (404, "confirmation_unknown")
    wrong_secret = Registered(registered.client_id, "not-the-secret")
    unauthenticated = redeem(server, wrong_secret, jti)
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["www-authenticate"].startswith("Basic")
    _execute(
        server,
        "UPDATE transaction_confirmations SET expires_at = created_at WHERE id = :id",
        id=jti,
    )
    expired = redeem(server, registered, jti)
    assert (expired.status_code, expired.json()["error"]) == (410, "confirmation_expired")
    late = collect(server, registered, jti).json()
    assert (late["status"], late["confirmation"]) == ("expired", None)


def test_an_aal1_session_and_an_old_sign_in_get_the_rfc_9470_challenge(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    server.add_user("ren@example.com")
    with server.client() as browser:
        email_sign_in(server, smtp, browser, "ren@example.com")
        weak = ask(server, access_token(server, registered, browser))
        assert (weak.status_code, weak.json()["error"]) == (401, "insufficient_user_authentication")
        assert weak.headers["www-authenticate"] == (
            'Bearer realm="sekisho", error="insufficient_user_authentication", '
            'acr_values="phr", max_age=300'
        )
        assert (weak.json()["acr_values"], weak.json()["max_age"]) == ("phr", 300)
        # An action the tier asks no step-up for: any full session may ask.
        assert (
            ask(
                server,
                access_token(server, registered, browser),
                action="close_account",
                details={"account": "MUFG 0123-4567890"},
            ).status_code
            == 201
        )

        authenticator = SoftAuthenticator()
        assert register(server, browser, authenticator).status_code == 201
        assert sign_in(server, browser, authenticator).status_code == 200
        token = access_token(server, registered, browser)
        with server.database.engine.begin() as connection:
            connection.execute(
                update(oidc_grants).values(auth_time=datetime.now(UTC) - timedelta(hours=1))
            )
        stale = ask(server, token)
    assert stale.status_code == 401
    assert 'error="insufficient_user_authentication"' in stale.headers["www-authenticate"]
    assert "max_age=300" in stale.headers["www-authenticate"]
    assert [entry["acr"] for entry in server.audited("confirmation.step_up_required")] == [
        "urn:sekisho:acr:aal1",
        "phr",
    ]
    with server.database.engine.connect() as connection:
        kept = connection.execute(text("SELECT count(*) FROM transaction_confirmations"))
        assert kept.scalar_one() == 1


def test_requests_that_cannot_be_confirmed_are_refused_with_their_code(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        person(server, smtp, browser, "yui@example.com")
        token = access_token(server, registered, browser)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"action": "teleport"}, 422, "unknown_action"),
        ({"details": {**WITHDRAWAL, "memo": "x"}}, 422, "invalid_details"),
        ({"details": {"amount": "1", "currency": "JPY"}}, 422, "invalid_details"),
        ({"details": {**WITHDRAWAL, "amount": "1e6"}}, 422, "invalid_details"),
        ({"details": {**WITHDRAWAL, "currency": "XYZ"}}, 422, "invalid_details"),
        ({"return_uri": REDIRECT_URI + "/"}, 422, "invalid_return_uri"),
    ]
    for arguments, status, error in cases:
        answer = ask(server, token, **arguments)
        assert (answer.status_code, answer.json()["error"]) == (status, error), arguments
    # a lone surrogate (a JSON escape of one half of a pair) as a field name or a value:
    # no UTF-8 answer could echo it
    with server.client() as http:
        for members, error in (
            ('"\\ud800": "x"', "invalid_details"),
            ('"amount": "1", "currency": "JPY", "destination": "\\ud800"', "invalid_field"),
        ):
            lone = http.post(
                "/api/v1/confirmations",
                content=f'{{"action": "withdrawal", "details": {{{members}}}}}',
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert (lone.status_code, lone.json()["error"]) == (422, error), members
    forged = ask(server, token[:-4] + "AAAA")
    assert (forged.status_code, forged.json()["error"]) == (401, "access_token_invalid")
    assert forged.headers["www-authenticate"].startswith(
        'Bearer realm="sekisho", error="invalid_token"'
    )


def test_the_assertion_is_bound_to_its_own_confirmation_person_and_user_verification(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    with server.client() as browser, server.client() as stranger:
        authenticator = person(server, smtp, browser, "sora@example.com")
        token = access_token(server, registered, browser)
        first = _asked(server, token)["id"]
        second = _asked(server, token, details={**WITHDRAWAL, "amount": "9900000"})["id"]

        # The ceremony started for the first, answered at the second: refused.
        started = options(browser, first)
        public_key = started.json()["publicKey"]
        credential = authenticator.assert_(
            rp_id=public_key["rpId"],
            origin=server.settings.public_origin,
            challenge=b64url_decode(public_key["challenge"]),
        )
        swapped = browser.post(
            f"/api/v1/confirmations/{second}/verify",
            json={"flow_id": started.json()["flow_id"], "credential": credential},
        )
        assert (swapped.status_code, swapped.json()["error"]) == (400, "invalid_or_expired")
        assert server.audited("confirmation.passkey.failed")[-1]["reason"] == (
            "challenge_of_another_transaction"
        )

        # Presence only, no user verification: refused.
        authenticator.user_verification = False
        unverified = confirm(server, browser, authenticator, second)
        assert (unverified.status_code, unverified.json()["error"]) == (400, "passkey_rejected")
        authenticator.user_verification = True

        # Another person signed in sees nothing and cannot confirm.
        person(server, smtp, stranger, "ao@example.com")
        assert stranger.get(f"/confirm/{second}").status_code == 404
        assert options(stranger, second).json()["error"] == "confirmation_unknown"

        assert confirm(server, browser, authenticator, second).status_code == 200
        twice = options(browser, second)
        assert (twice.status_code, twice.json()["error"]) == (409, "confirmation_used")
    assert collect(server, registered, first).json()["status"] == "pending"


def test_db_purge_removes_expired_confirmations_only(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        person(server, smtp, browser, "rin@example.com")
        token = access_token(server, registered, browser)
        old, live = _asked(server, token)["id"], _asked(server, token)["id"]
    _execute(
        server,
        "UPDATE transaction_confirmations SET expires_at = :old WHERE id = :id",
        old=datetime(2020, 1, 1, tzinfo=UTC),
        id=old,
    )
    result = run_sekisho(server.settings.database_url, "db", "purge", "--older-than-days", "30")
    assert result.returncode == 0, result.stderr
    counts = dict(line.split("\t") for line in result.stdout.splitlines())
    assert counts["transaction_confirmations"] == "1"
    assert collect(server, registered, live).json()["status"] == "pending"
    assert collect(server, registered, old).status_code == 404


def _hold(server: LiveServer, email: str) -> None:
    """A recovery completed 50 minutes ago whose hold lasts 23 more hours."""
    now = datetime.now(UTC)
    with server.database.engine.begin() as connection:
        user_id = connection.execute(
            text("SELECT id FROM users WHERE email = :email"), {"email": email}
        ).scalar_one()
        connection.execute(
            insert(account_recoveries).values(
                session_id="recovered-session-000000",
                user_id=user_id,
                started_at=now - timedelta(hours=1),
                completed_at=now - timedelta(minutes=50),
                hold_until=now + timedelta(hours=23),
            )
        )


def test_an_account_on_hold_after_a_recovery_cannot_ask(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    """SECURITY.md case 54: money movement waits for the hold after a recovery."""
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        person(server, smtp, browser, "haru@example.com")
        token = access_token(server, registered, browser)
    _hold(server, "haru@example.com")
    held = ask(server, token)
    assert (held.status_code, held.json()["error"]) == (403, "recovery_hold")
    assert server.audited("confirmation.refused")[-1]["reason"] == "recovery_hold"


def test_a_confirmation_asked_before_the_hold_cannot_be_confirmed_during_it(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    with server.client() as browser:
        authenticator = person(server, smtp, browser, "sana@example.com")
        created = _asked(server, access_token(server, registered, browser))
        started = options(browser, created["id"])
        _hold(server, "sana@example.com")
        for held in (
            options(browser, created["id"]),
            confirm(server, browser, authenticator, created["id"], started=started),
        ):
            assert (held.status_code, held.json()["error"]) == (403, "recovery_hold")
    assert collect(server, registered, created["id"]).json()["status"] == "pending"
    assert server.audited("confirmation.refused")[-1]["reason"] == "recovery_hold"


def test_without_a_passkey_that_verifies_the_user_the_page_says_so(
    confirming: LiveServer, smtp: SmtpCapture
) -> None:
    server = confirming
    registered = register_client(server)
    server.add_user("nao@example.com")
    with server.client() as browser:
        email_sign_in(server, smtp, browser, "nao@example.com")
        created = _asked(
            server,
            access_token(server, registered, browser),
            action="close_account",
            details={"account": "MUFG 0123-4567890"},
        )
        page = browser.get(f"/confirm/{created['id']}")
        assert page.status_code == 200
        assert 'id="confirm-unavailable"' in page.text
        assert 'id="confirm-button"' not in page.text
        refused = options(browser, created["id"])
        assert (refused.status_code, refused.json()["error"]) == (
            403,
            "confirmation_passkey_required",
        )
    # Signed out: to the sign-in page, and back to this page after signing in.
    later = FormBrowser(server.url)
    try:
        signed_out = later.http.get(f"/confirm/{created['id']}")
        assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/signin")
        assert "MUFG" not in signed_out.text
        # An id with a newline after it is no id: refused, never set in a cookie.
        newline = later.http.get(f"/confirm/{created['id']}%0A")
        assert newline.status_code == 404
        assert created["id"] not in newline.headers.get("set-cookie", "")
        answer = sign_in_by_code(later, smtp, "nao@example.com")
        assert answer.headers["location"] == f"/confirm/{created['id']}"
        back = later.http.get(answer.headers["location"])
        assert back.status_code == 200
        assert "MUFG 0123-4567890" in back.text
        assert later.http.get("/").headers["location"] == "/account"
        assert 'data-after-sign-in="/account"' in later.http.get("/signin").text
    finally:
        later.close()


def test_the_applications_side_is_counted_per_ip(
    make_server: ServerFactory, tmp_path: Path
) -> None:
    """Ask, collect and redeem share ``limit_token_per_ip``, counted before the bearer or
    the client's secret is looked at: a flood of forged requests is cut off too."""
    server = confirming_server(make_server, tmp_path, limit_token_per_ip="3/minute")
    registered = register_client(server)
    assert registered.secret is not None
    basic = (registered.client_id, registered.secret)
    with server.client() as http:
        assert ask(server, "forged").status_code == 401
        assert http.get("/api/v1/confirmations/c-unknown", auth=basic).status_code == 404
        redeemed = http.post(
            "/api/v1/confirmations/c-unknown/redeem",
            json={"action": "withdrawal", "details": WITHDRAWAL},
            auth=basic,
        )
        assert redeemed.status_code == 404
        refused = [
            ask(server, "forged"),
            http.get("/api/v1/confirmations/c-unknown", auth=basic),
        ]
    for answer in refused:
        assert answer.status_code == 429, answer.text
        assert answer.json()["error"] == "rate_limited"
        assert int(answer.headers["retry-after"]) > 0
