"""The client settings of PAR, ``private_key_jwt`` and the ID token algorithm, set by
``sekisho clients add`` and by the admin API, as operators use them; the stored client
then behaves so at /par, /authorize and /token."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from joserfc.util import int_to_base64
from sqlalchemy import text

from tests.integration.admin.support import bearer, create_key
from tests.support.cli import run_sekisho
from tests.support.oidc import authorize_url, query_of
from tests.support.server import LiveServer

CLIENT_ID = re.compile(r"client_id: (\S+)")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _public(key: ECKey | RSAKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False)]}


def _short_rsa() -> dict[str, str]:
    """A 1024-bit RSA public JWK (joserfc warns rather than make one)."""
    numbers = rsa.generate_private_key(65537, 1024).public_key().public_numbers()  # noqa: S505
    return {"kty": "RSA", "n": int_to_base64(numbers.n), "e": int_to_base64(numbers.e)}


def _authenticates(server: LiveServer, key: ECKey, client_id: str) -> bool:
    now = int(time.time())
    assertion = jwt.encode(
        {"alg": "ES256", "kid": key.kid},
        {
            "iss": client_id,
            "sub": client_id,
            "aud": server.settings.public_origin,
            "exp": now + 60,
            "jti": f"j-{now}-{id(key)}",
        },
        key,
    )
    with server.client() as http:
        answer = http.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": "no-such-code",
                "redirect_uri": "https://rp.example/callback",
                "code_verifier": "v" * 43,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": assertion,
            },
        )
    return bool(answer.json()["error"] == "invalid_grant")


def _plain_request_error(server: LiveServer, client_id: str) -> str:
    with server.client() as http:
        answer = http.get(authorize_url(client_id))
    return query_of(answer.headers["location"]).get("error", "")


def test_clients_add_with_jwks_par_and_algorithm(server: LiveServer) -> None:
    url = server.settings.database_url
    key = ECKey.generate_key("P-256", auto_kid=True)
    added = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Trading desk",
        "--redirect-uri",
        "https://rp.example/callback",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        json.dumps(_public(key)),
        "--require-par",
        "--id-token-alg",
        "PS256",
    )
    assert added.returncode == 0, added.stderr
    assert "client_secret" not in added.stdout
    client_id = CLIENT_ID.search(added.stdout)
    assert client_id is not None
    shown = json.loads(run_sekisho(url, "clients", "show", client_id.group(1)).stdout)
    assert shown["token_endpoint_auth_method"] == "private_key_jwt"
    assert shown["require_pushed_authorization_requests"] is True
    assert shown["id_token_signed_response_alg"] == "PS256"
    assert shown["jwks"] == _public(key)
    assert _authenticates(server, key, client_id.group(1))
    assert _plain_request_error(server, client_id.group(1)) == "invalid_request"

    private = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Leaky",
        "--redirect-uri",
        "https://rp.example/callback",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        json.dumps({"keys": [key.as_dict(private=True)]}),
    )
    assert private.returncode == 2
    assert "private key" in private.stderr
    for extra, says in (
        (["--auth-method", "private_key_jwt"], "needs the client's JWKS"),
        (["--auth-method", "private_key_jwt", "--jwks", "{not json"], "not JSON"),
        (["--jwks", json.dumps(_public(key))], "only with private_key_jwt"),
        (
            [
                "--auth-method",
                "private_key_jwt",
                "--jwks",
                json.dumps({"keys": [_short_rsa()]}),
            ],
            "2048",
        ),
    ):
        refused = run_sekisho(
            url,
            "clients",
            "add",
            "--name",
            "Bad",
            "--redirect-uri",
            "https://rp.example/cb",
            *extra,
        )
        assert refused.returncode == 2, extra
        assert says in refused.stderr, refused.stderr
    with server.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM oidc_clients")).scalar_one() == 1


def test_the_admin_api_sets_the_same_settings(server: LiveServer) -> None:
    _key_id, api_key = create_key(server, "clients:write", "clients:read")
    key = ECKey.generate_key("P-256", auto_kid=True)
    body = {
        "name": "Trading desk",
        "redirect_uris": ["https://rp.example/callback"],
        "first_party": True,
        "scopes": ["openid", "email"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": _public(key),
        "require_pushed_authorization_requests": True,
        "id_token_signed_response_alg": "RS256",
    }
    with server.client(headers=bearer(api_key)) as http:
        created = http.post("/api/v1/admin/clients", json=body)
        assert created.status_code == 201, created.text
        made = created.json()
        assert made["client_secret"] is None
        shown = http.get(f"/api/v1/admin/clients/{made['client_id']}").json()
        private = http.post(
            "/api/v1/admin/clients", json={**body, "jwks": {"keys": [key.as_dict(private=True)]}}
        )
        no_keys = http.post("/api/v1/admin/clients", json={**body, "jwks": None})
        bad_alg = http.post(
            "/api/v1/admin/clients", json={**body, "id_token_signed_response_alg": "none"}
        )
    assert shown["require_pushed_authorization_requests"] is True
    assert shown["id_token_signed_response_alg"] == "RS256"
    assert shown["jwks"] == _public(key)
    assert _authenticates(server, key, made["client_id"])
    assert _plain_request_error(server, made["client_id"]) == "invalid_request"
    assert private.status_code == no_keys.status_code == 400
    assert private.json()["error"] == no_keys.json()["error"] == "invalid_client_metadata"
    assert "private key" in private.json()["explanation"]
    assert bad_alg.status_code == 422


def test_a_clients_keys_are_replaced_by_the_cli_and_the_api(server: LiveServer) -> None:
    url = server.settings.database_url
    old = ECKey.generate_key("P-256", auto_kid=True)
    new = ECKey.generate_key("P-256", auto_kid=True)
    newest = ECKey.generate_key("P-256", auto_kid=True)
    added = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Desk",
        "--redirect-uri",
        "https://rp.example/callback",
        "--auth-method",
        "private_key_jwt",
        "--jwks",
        json.dumps(_public(old)),
    )
    client_id = CLIENT_ID.search(added.stdout)
    assert client_id is not None
    both = {"keys": [old.as_dict(private=False), new.as_dict(private=False)]}
    replaced = run_sekisho(
        url, "clients", "set-jwks", client_id.group(1), "--jwks", json.dumps(both)
    )
    assert replaced.returncode == 0, replaced.stderr
    assert _authenticates(server, old, client_id.group(1))
    assert _authenticates(server, new, client_id.group(1))
    leaky = {"keys": [new.as_dict(private=True)]}
    refused = run_sekisho(
        url, "clients", "set-jwks", client_id.group(1), "--jwks", json.dumps(leaky)
    )
    assert refused.returncode == 2
    assert "private key" in refused.stderr
    secret_client = run_sekisho(
        url, "clients", "add", "--name", "S", "--redirect-uri", "https://rp.example/callback"
    )
    secret_id = CLIENT_ID.search(secret_client.stdout)
    assert secret_id is not None
    not_jwt = run_sekisho(
        url, "clients", "set-jwks", secret_id.group(1), "--jwks", json.dumps(both)
    )
    assert not_jwt.returncode == 1

    _key_id, api_key = create_key(server, "clients:write")
    with server.client(headers=bearer(api_key)) as http:
        put = http.put(
            f"/api/v1/admin/clients/{client_id.group(1)}/jwks", json={"jwks": _public(newest)}
        )
        bad = http.put(
            f"/api/v1/admin/clients/{client_id.group(1)}/jwks", json={"jwks": {"keys": []}}
        )
        missing = http.put(
            f"/api/v1/admin/clients/{secret_id.group(1)}/jwks", json={"jwks": _public(newest)}
        )
    assert put.status_code == 200, put.text
    assert put.json()["jwks"] == _public(newest)
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_client_metadata"
    assert missing.status_code == 404
    assert not _authenticates(server, old, client_id.group(1))
    assert _authenticates(server, newest, client_id.group(1))
    with server.database.engine.connect() as connection:
        events = (
            connection.execute(
                text(
                    "SELECT ip FROM audit_events WHERE event = 'oidc.client_jwks_replaced' ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
    assert events[0] == "cli"
    assert events[1].startswith("api-key:")
    assert len(events) == 2
