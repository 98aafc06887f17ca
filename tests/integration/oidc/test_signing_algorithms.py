"""ID token algorithms per client (``id_token_signed_response_alg``: ES256, RS256,
PS256) and ``sekisho keys rotate`` per algorithm with the overlap rules: a new key is
published before it signs, the old one stays published; other algorithms are untouched.
Every ID token is checked with joserfc against the published JWKS, accepting only the
client's algorithm."""

from __future__ import annotations

import pytest
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from tests.support.cli import run_sekisho
from tests.support.oidc import (
    code_for,
    exchange,
    register_client,
    signed_in_browser,
    userinfo_status,
    verify_id_token,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

ALGORITHMS = ("ES256", "RS256", "PS256")


def _published(server: LiveServer, alg: str) -> list[str]:
    with server.client() as http:
        keys = http.get("/.well-known/jwks.json").json()["keys"]
    return [key["kid"] for key in keys if key["alg"] == alg]


def _id_token_kids(server: LiveServer, smtp: SmtpCapture, email: str) -> dict[str, str]:
    """For a client of each algorithm: the kid that signed its new ID token (checked)."""
    registered = {alg: register_client(server, id_token_alg=alg) for alg in ALGORITHMS}
    browser = signed_in_browser(server, smtp, email)
    kids: dict[str, str] = {}
    try:
        for alg, client in registered.items():
            answer = exchange(server, client, code_for(browser, client.client_id))
            assert answer.status_code == 200, answer.text
            body = answer.json()
            verify_id_token(server, body["id_token"], client_id=client.client_id, alg=alg)
            assert userinfo_status(server, body["access_token"]) == 200
            with server.client() as http:
                key_set = KeySet.import_key_set(http.get("/.well-known/jwks.json").json())
            kids[alg] = str(jwt.decode(body["id_token"], key_set, algorithms=[alg]).header["kid"])
            access = jwt.decode(body["access_token"], key_set, algorithms=["ES256"])
            assert access.header["alg"] == "ES256"
    finally:
        browser.close()
    return kids


def test_each_client_gets_id_tokens_in_its_algorithm(server: LiveServer, smtp: SmtpCapture) -> None:
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    assert metadata["id_token_signing_alg_values_supported"] == list(ALGORITHMS)
    kids = _id_token_kids(server, smtp, "aki@example.com")
    for alg in ALGORITHMS:
        assert _published(server, alg) == [kids[alg]]


def test_an_es256_verifier_refuses_an_rs256_client_token(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    registered = register_client(server, id_token_alg="RS256")
    browser = signed_in_browser(server, smtp, "ren@example.com")
    try:
        answer = exchange(server, registered, code_for(browser, registered.client_id))
    finally:
        browser.close()
    with server.client() as http:
        key_set = KeySet.import_key_set(http.get("/.well-known/jwks.json").json())
    token = answer.json()["id_token"]
    assert jwt.decode(token, key_set, algorithms=["RS256"]).header["alg"] == "RS256"
    with pytest.raises(JoseError):
        jwt.decode(token, key_set, algorithms=["ES256"])


def test_keys_rotate_per_algorithm_with_overlap(server: LiveServer, smtp: SmtpCapture) -> None:
    url = server.settings.database_url
    before = _id_token_kids(server, smtp, "sora@example.com")
    rotated = run_sekisho(url, "keys", "rotate", "--alg", "RS256", "--delay", "3600")
    assert rotated.returncode == 0, rotated.stderr
    assert "new RS256 key" in rotated.stdout
    [old_rs, new_rs] = _published(server, "RS256")
    assert old_rs == before["RS256"]
    assert _published(server, "ES256") == [before["ES256"]]
    assert _published(server, "PS256") == [before["PS256"]]
    # Published first, signing later: RS256 tokens still come from the old key.
    assert _id_token_kids(server, smtp, "nagi@example.com") == before

    now = run_sekisho(url, "keys", "rotate", "--delay", "0")
    assert now.returncode == 0, now.stderr
    after = _id_token_kids(server, smtp, "yuki@example.com")
    for alg in ALGORITHMS:
        published = _published(server, alg)
        assert after[alg] != before[alg]
        assert after[alg] == published[-1]
        assert before[alg] in published  # kept until the tokens it signed expire
    listing = run_sekisho(url, "keys", "list").stdout
    assert f"{before['PS256']}  PS256  retired" in listing
    assert f"{new_rs}  RS256  retired" in listing

    refused = run_sekisho(url, "keys", "rotate", "--alg", "HS256")
    assert refused.returncode == 2
    assert "HS256" in refused.stderr


def test_an_unknown_id_token_algorithm_is_refused_at_registration(server: LiveServer) -> None:
    refused = run_sekisho(
        server.settings.database_url,
        "clients",
        "add",
        "--name",
        "Bad",
        "--redirect-uri",
        "https://rp.example/callback",
        "--id-token-alg",
        "none",
    )
    assert refused.returncode == 2
    assert "ES256, RS256, PS256" in refused.stderr
