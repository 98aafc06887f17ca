"""Passkeys over real HTTP with a software authenticator whose responses py_webauthn
verifies for real (SECURITY.md cases 17-22 in tests/integration/test_passkey_security.py)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sekisho.i18n import gettext
from sekisho.mail.compose import NOTICES
from sekisho.methods.passkey.authentication import EMAIL_FIRST_ENTRIES
from sekisho.methods.passkey.registration import PASSKEYS_PER_ACCOUNT
from tests.conftest import ServerFactory
from tests.support.authenticator import SoftAuthenticator, b64url_decode
from tests.support.passkeys import email_sign_in, register, registration_answer, sign_in
from tests.support.recovery import wait_for_subject
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, text_of


def test_register_then_sign_in_usernameless(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("pia@example.com")
    authenticator = SoftAuthenticator()
    with httpx.Client(base_url=server.url) as laptop:
        email_sign_in(server, smtp, laptop, "pia@example.com")
        registered = register(server, laptop, authenticator)
        assert registered.status_code == 201, registered.text
        item = registered.json()
        assert item["synced"] is False
        assert item["user_verified"] is True
        assert item["name"] == "Passkey"
        assert [p["id"] for p in laptop.get("/api/v1/passkeys").json()] == [item["id"]]
    notice = smtp.wait_for("pia@example.com", 2)
    assert "passkey" in str(notice["Subject"]).lower()
    assert "Passkey" in text_of(notice)
    with httpx.Client(base_url=server.url) as phone:
        response = sign_in(server, phone, authenticator)
        assert response.status_code == 200, response.text
        assert response.json()["aal"] == 2
        assert response.json()["amr"] == ["hwk", "pin", "mfa"]
        assert phone.get("/api/v1/session").json()["aal"] == 2


def test_synced_passkey_and_email_first(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("quin@example.com")
    synced = SoftAuthenticator(
        algorithm="EdDSA", backup_eligible=True, backup_state=True, sign_count_step=0
    )
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "quin@example.com")
        assert register(server, client, synced).status_code == 201
    with httpx.Client(base_url=server.url) as client:
        response = sign_in(server, client, synced, email="quin@example.com")
        assert response.status_code == 200, response.text
        assert response.json()["amr"] == ["swk", "pin", "mfa"]
        again = sign_in(server, client, synced)
        assert again.status_code == 200, again.text


def _email_first_entries(client: httpx.Client, email: str) -> list[dict[str, Any]]:
    options = client.post("/api/v1/signin/passkey/options", json={"email": email})
    assert options.status_code == 200, options.text
    entries: list[dict[str, Any]] = options.json()["publicKey"]["allowCredentials"]
    return entries


def test_email_first_answers_the_same_for_unknown_addresses(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("ren@example.com")
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "ren@example.com")
        assert register(server, client, SoftAuthenticator()).status_code == 201
    with httpx.Client(base_url=server.url) as client:
        known = client.post(
            "/api/v1/signin/passkey/options", json={"email": "ren@example.com"}
        ).json()
        unknown = client.post(
            "/api/v1/signin/passkey/options", json={"email": "nobody@example.com"}
        ).json()
        again = client.post(
            "/api/v1/signin/passkey/options", json={"email": "nobody@example.com"}
        ).json()
    assert (
        len(known["publicKey"]["allowCredentials"])
        == len(unknown["publicKey"]["allowCredentials"])
        == EMAIL_FIRST_ENTRIES
    )
    assert set(known["publicKey"]) == set(unknown["publicKey"])
    assert unknown["publicKey"]["allowCredentials"] == again["publicKey"]["allowCredentials"]


def test_email_first_hides_how_many_passkeys_an_address_has(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """An account with one, two or three passkeys, one without any and an unknown address
    all list the same number of entries; the real ids are among them, not in front."""
    server.add_user("ria@example.com")
    server.add_user("none@example.com")
    authenticators = [SoftAuthenticator() for _ in range(3)]
    seen: dict[int, list[dict[str, Any]]] = {}
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "ria@example.com")
        for count, authenticator in enumerate(authenticators, start=1):
            if count > 1:  # adding another passkey needs a fresh passkey sign-in
                assert sign_in(server, client, authenticators[0]).status_code == 200
            assert register(server, client, authenticator).status_code == 201
            seen[count] = _email_first_entries(client, "ria@example.com")
        without = _email_first_entries(client, "none@example.com")
        unknown = _email_first_entries(client, "nobody@example.com")
    assert {len(entries) for entries in [*seen.values(), without, unknown]} == {EMAIL_FIRST_ENTRIES}
    ids = [b64url_decode(entry["id"]) for entry in seen[3]]
    assert ids == sorted(ids), "real and decoy ids in one order, by their bytes"
    real = {credential for a in authenticators for credential in a.credentials}
    assert real <= set(ids)
    with httpx.Client(base_url=server.url) as client:
        response = sign_in(server, client, authenticators[1], email="ria@example.com")
        assert response.status_code == 200, response.text


def test_an_account_holds_no_more_passkeys_than_email_first_lists(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    """Past ``EMAIL_FIRST_ENTRIES`` the padded list would tell the count, so a ninth
    passkey is refused (409 ``passkey_limit_reached``) whether the ceremony starts or
    finishes at the cap, nothing is stored, the account page says why in both languages,
    and removing one makes room again."""
    assert PASSKEYS_PER_ACCOUNT == EMAIL_FIRST_ENTRIES
    server.add_user("ima@example.com")
    keys = [SoftAuthenticator() for _ in range(PASSKEYS_PER_ACCOUNT + 1)]
    ninth = keys[-1]
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "ima@example.com")
        assert register(server, client, keys[0]).status_code == 201
        assert sign_in(server, client, keys[0]).status_code == 200
        for key in keys[1:-2]:
            assert register(server, client, key).status_code == 201
        started_with_room = registration_answer(server, client, ninth)
        assert register(server, client, keys[-2]).status_code == 201
        assert len(client.get("/api/v1/passkeys").json()) == PASSKEYS_PER_ACCOUNT
        assert len(_email_first_entries(client, "ima@example.com")) == EMAIL_FIRST_ENTRIES

        finished = client.post("/api/v1/passkeys/registration/verify", json=started_with_room)
        started = client.post("/api/v1/passkeys/registration/options", json={})
        for refused in (finished, started):
            assert refused.status_code == 409, refused.text
            assert refused.json() == {
                "error": "passkey_limit_reached",
                "message": "This account already has as many passkeys as it can hold. "
                "Remove one you no longer use, then add the new one.",
                "limit": PASSKEYS_PER_ACCOUNT,
            }
        listed = client.get("/api/v1/passkeys").json()
        assert len(listed) == PASSKEYS_PER_ACCOUNT
        page = client.get("/account")
        assert 'id="passkey-limit-note"' in page.text
        assert "This account has 8 passkeys, the most it can hold." in page.text
        assert 'id="add-passkey"' not in page.text
        japanese = client.get("/account", headers={"Accept-Language": "ja"})
        assert "このアカウントのパスキーは8件で、登録できる上限に達しています。" in japanese.text

        assert client.delete(f"/api/v1/passkeys/{listed[0]['id']}").status_code == 204
        assert 'id="add-passkey"' in client.get("/account").text
        assert register(server, client, ninth).status_code == 201
        assert len(client.get("/api/v1/passkeys").json()) == PASSKEYS_PER_ACCOUNT


def test_registration_needs_a_recent_sign_in(make_server: ServerFactory, smtp: SmtpCapture) -> None:
    server = make_server(reauthentication_window="PT1S")
    server.add_user("sam@example.com")
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "sam@example.com")
        time.sleep(1.2)
        refused = client.post("/api/v1/passkeys/registration/options", json={})
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauthentication_required"


def test_removing_needs_only_a_fresh_sign_in_but_adding_needs_the_highest_level(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    server.add_user("uma@example.com")
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "uma@example.com")
        first = register(server, client, SoftAuthenticator())
        assert first.status_code == 201
        refused = client.post("/api/v1/passkeys/registration/options", json={})
        assert refused.status_code == 403
        assert refused.json()["error"] == "reauthentication_required"
        assert client.delete(f"/api/v1/passkeys/{first.json()['id']}").status_code == 204
        assert client.get("/api/v1/passkeys").json() == []
    removed_notice = smtp.wait_for("uma@example.com", 3)
    assert "removed" in str(removed_notice["Subject"])


@pytest.mark.parametrize("language", ["en", "ja"])
def test_adding_and_removing_a_passkey_are_notified_in_the_browsers_language(
    server: LiveServer, smtp: SmtpCapture, language: str
) -> None:
    server.add_user("ume@example.com")
    with httpx.Client(base_url=server.url, headers={"Accept-Language": language}) as client:
        email_sign_in(server, smtp, client, "ume@example.com")
        added = register(server, client, SoftAuthenticator())
        assert added.status_code == 201, added.text
        name = added.json()["name"]
        assert client.delete(f"/api/v1/passkeys/{added.json()['id']}").status_code == 204
    for notice in ("passkey_added", "passkey_removed"):
        title, body = NOTICES[notice]
        message = wait_for_subject(smtp, "ume@example.com", gettext(language, title))
        assert message["To"] == "ume@example.com"
        assert gettext(language, body, name=name) in text_of(message)
        assert f"{server.url}/account" in text_of(message)


def test_email_first_entries_carry_no_transports(server: LiveServer, smtp: SmtpCapture) -> None:
    server.add_user("val@example.com")
    with httpx.Client(base_url=server.url) as client:
        email_sign_in(server, smtp, client, "val@example.com")
        assert register(server, client, SoftAuthenticator()).status_code == 201
        known = client.post(
            "/api/v1/signin/passkey/options", json={"email": "val@example.com"}
        ).json()
        unknown = client.post(
            "/api/v1/signin/passkey/options", json={"email": "nobody@example.com"}
        ).json()
    assert [set(entry) for entry in known["publicKey"]["allowCredentials"]] == [
        set(entry) for entry in unknown["publicKey"]["allowCredentials"]
    ]


def test_overlong_flow_ids_are_a_clear_422(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url) as client:
        response = client.post(
            "/api/v1/signin/passkey/verify", json={"flow_id": "x" * 40, "credential": {}}
        )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_field"


def test_decoys_take_common_credential_id_lengths(server: LiveServer) -> None:
    lengths: set[int] = set()
    with httpx.Client(base_url=server.url) as client:
        for index in range(24):
            options = client.post(
                "/api/v1/signin/passkey/options", json={"email": f"n{index}@example.com"}
            )
            entries = options.json()["publicKey"]["allowCredentials"]
            lengths.update(len(b64url_decode(entry["id"])) for entry in entries)
    assert lengths <= {16, 20, 32, 64}
    assert len(lengths) > 1
