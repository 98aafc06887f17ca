"""The legacy password as the sign-in inside an authorization request (issue 9): an
account imported by ``sekisho users import`` signs in with its old password on Sekisho's
own page, the authorization resumes, and the ID token names the account by the id it had
in the old system, with ``amr`` ``pwd`` and the AAL1 ``acr`` discovery publishes."""

from __future__ import annotations

import json
from pathlib import Path

import bcrypt

from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
from tests.support.oidc import (
    authorize_url,
    exchange,
    query_of,
    register_client,
    response_of,
    verify_id_token,
)
from tests.support.server import LiveServer

OLD_ID = "crm-000417"
EMAIL = "kaori@example.jp"
PASSWORD = "old secret 古いパスワード"


def _import(server: LiveServer, tmp_path: Path) -> None:
    row = {
        "id": OLD_ID,
        "email": EMAIL,
        "password_hash": bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode(),
    }
    source = tmp_path / "users.jsonl"
    source.write_text(json.dumps(row) + "\n", encoding="utf-8")
    result = run_sekisho(server.settings.database_url, "users", "import", str(source))
    assert result.returncode == 0, result.stderr
    assert "created 1," in result.stdout


def test_an_imported_account_signs_in_by_password_and_gets_its_old_id_as_sub(
    server: LiveServer, tmp_path: Path
) -> None:
    _import(server, tmp_path)
    registered = register_client(server)
    browser = FormBrowser(server.url)
    try:
        asked = browser.http.get(authorize_url(registered.client_id))
        assert asked.status_code == 303, asked.text
        assert asked.headers["location"] == "/signin"
        signin = browser.http.get("/signin")
        assert 'href="/signin/password"' in signin.text
        assert browser.http.get("/signin/password").status_code == 200
        wrong = browser.post("/signin/password", {"email": EMAIL, "password": PASSWORD + "!"})
        assert wrong.status_code == 400
        signed_in = browser.post("/signin/password", {"email": EMAIL, "password": PASSWORD})
        assert signed_in.status_code == 303, signed_in.text
        assert signed_in.headers["location"] == "/authorize/resume"
        callback = response_of(browser.http.get("/authorize/resume"))
    finally:
        browser.close()
    answer = query_of(callback)
    assert answer["state"] == "st-1"
    tokens = exchange(server, registered, answer["code"])
    assert tokens.status_code == 200, tokens.text
    claims = verify_id_token(server, tokens.json()["id_token"], client_id=registered.client_id)
    with server.client() as http:
        supported = http.get("/.well-known/openid-configuration").json()["acr_values_supported"]
    aal1 = [value for value in supported if value not in ("phr", "phrh")]
    assert aal1 == ["urn:sekisho:acr:aal1"]
    assert claims["sub"] == OLD_ID
    assert claims["amr"] == ["pwd"]
    assert claims["acr"] == aal1[0]
    assert claims["nonce"] == "no-1"
