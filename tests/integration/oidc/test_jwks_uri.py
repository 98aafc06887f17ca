"""``private_key_jwt`` clients whose keys are at a ``jwks_uri`` (OIDC Registration §2;
RFC 7523) over real HTTP: the relying party's JWK Set is served by a real server on
127.0.0.1 (allowed by ``oidc_client_fetch_allow_loopback``, as in development), Sekisho
fetches it when the client authenticates at /token, picks up the client's key rotation
by the unknown ``kid``, and answers ``invalid_client`` (audited with the fetch failure's
code, never a 500) when the URI cannot be used. Set by ``sekisho clients add`` /
``set-jwks`` and by the admin API."""

from __future__ import annotations

import json
import re
from typing import Any

from joserfc.jwk import ECKey
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.integration.admin.support import bearer, create_key
from tests.integration.oidc.test_private_key_jwt import (
    AUTHENTICATED,
    REFUSED,
    _assertion,
    _client_reads,
    _outcome,
    _refusal_reasons,
    _token,
)
from tests.support.cli import run_sekisho
from tests.support.document_server import Answer, DocumentServer
from tests.support.oidc import code_for, register_client, signed_in_browser, verify_id_token
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

PATH = "/.well-known/jwks.json"
CLIENT_ID = re.compile(r"client_id: (\S+)")


def _key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def _set(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def _try(server: LiveServer, key: ECKey, client_id: str) -> tuple[int, str]:
    return _outcome(_token(server, _assertion(key, client_id, server.settings.public_origin)))


def test_a_client_at_a_jwks_uri_gets_its_tokens(
    dev_server: LiveServer, documents: DocumentServer, smtp: SmtpCapture
) -> None:
    key = _key()
    uri = documents.serve_json(PATH, _set(key))
    registered = register_client(dev_server, auth_method="private_key_jwt", jwks_uri=uri)
    browser = signed_in_browser(dev_server, smtp, "uri@example.com")
    try:
        code = code_for(browser, registered.client_id)
    finally:
        browser.close()
    assertion = _assertion(key, registered.client_id, dev_server.settings.public_origin)
    answer = _token(dev_server, assertion, code)
    assert answer.status_code == 200, answer.text
    verify_id_token(dev_server, answer.json()["id_token"], client_id=registered.client_id)
    assert _try(dev_server, key, registered.client_id) == AUTHENTICATED
    assert documents.hits[PATH] == 1


def test_a_key_rotated_at_the_client_is_picked_up_by_its_kid(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    old, new = _key(), _key()
    uri = documents.serve_json(PATH, _set(old))
    client_id = register_client(dev_server, auth_method="private_key_jwt", jwks_uri=uri).client_id
    assert _try(dev_server, old, client_id) == AUTHENTICATED
    documents.serve_json(PATH, _set(new))
    assert _try(dev_server, new, client_id) == AUTHENTICATED
    assert documents.hits[PATH] == 2
    # the retired key is gone from the fetched set; within the refetch interval its kid
    # fetches nothing
    assert _try(dev_server, old, client_id) == REFUSED
    assert documents.hits[PATH] == 2
    assert _try(dev_server, new, client_id) == AUTHENTICATED


def test_an_unknown_kid_is_refused_after_one_refetch(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    key, stranger, another = _key(), _key(), _key()
    uri = documents.serve_json(PATH, _set(key))
    client_id = register_client(dev_server, auth_method="private_key_jwt", jwks_uri=uri).client_id
    assert _try(dev_server, key, client_id) == AUTHENTICATED
    assert _try(dev_server, stranger, client_id) == REFUSED
    assert documents.hits[PATH] == 2
    assert _try(dev_server, another, client_id) == REFUSED
    assert documents.hits[PATH] == 2
    assert _try(dev_server, key, client_id) == AUTHENTICATED
    reasons = _refusal_reasons(dev_server)
    assert len(reasons) == 2
    assert all(reason.startswith("signature:") for reason in reasons)


def test_a_jwks_uri_that_cannot_be_used_is_invalid_client(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    key = _key()
    good = documents.serve_json(PATH, _set(key))
    oversize = b'{"keys": [], "pad": "' + b"x" * 70_000 + b'"}'
    uris = {
        "address": "https://10.0.0.1/jwks.json",
        "redirect": documents.serve("/moved", Answer(b"", 302, {"Location": good})),
        "too_large": documents.serve("/huge", Answer(oversize)),
        "not_json": documents.serve("/page", Answer(b"<html>keys</html>")),
        "status": documents.serve("/missing", Answer(b"{}", 404)),
        "invalid": documents.serve_json("/leaky", {"keys": [key.as_dict(private=True)]}),
    }
    for code, uri in uris.items():
        client_id = register_client(
            dev_server, auth_method="private_key_jwt", jwks_uri=uri
        ).client_id
        answer = _token(dev_server, _assertion(key, client_id, dev_server.settings.public_origin))
        assert _outcome(answer) == REFUSED, code
        assert answer.json()["error_description"] == "Client authentication failed.", code
    assert _refusal_reasons(dev_server) == [f"jwks_uri:{code}" for code in uris]
    assert documents.hits[PATH] == 0


def test_without_the_development_setting_loopback_is_never_fetched(
    make_server: ServerFactory, documents: DocumentServer
) -> None:
    server = make_server()
    key = _key()
    uri = documents.serve_json(PATH, _set(key))
    client_id = register_client(server, auth_method="private_key_jwt", jwks_uri=uri).client_id
    assert _try(server, key, client_id) == REFUSED
    assert _refusal_reasons(server) == ["jwks_uri:uri"]
    assert documents.hits[PATH] == 0


def test_the_cli_and_the_admin_api_set_a_jwks_uri(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    url = dev_server.settings.database_url
    inline, published = _key(), _key()
    uri = documents.serve_json(PATH, _set(published))
    add = ("clients", "add", "--name", "Desk", "--redirect-uri", "https://rp.example/callback")
    pkjwt = ("--auth-method", "private_key_jwt")
    both = run_sekisho(url, *add, *pkjwt, "--jwks", json.dumps(_set(inline)), "--jwks-uri", uri)
    assert both.returncode == 2
    assert "exactly one" in both.stderr
    not_here = run_sekisho(url, *add, *pkjwt, "--jwks-uri", uri)
    assert not_here.returncode == 2
    assert "does not fetch a JWKS URI there (uri)" in not_here.stderr
    secret_with_uri = run_sekisho(
        url, *add, "--jwks-uri", uri, SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK="true"
    )
    assert secret_with_uri.returncode == 2
    added = run_sekisho(
        url,
        *add,
        *pkjwt,
        "--jwks",
        json.dumps(_set(inline)),
        SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK="true",
    )
    found = CLIENT_ID.search(added.stdout)
    assert found is not None, added.stderr
    client_id = found.group(1)
    assert _try(dev_server, inline, client_id) == AUTHENTICATED
    switched = run_sekisho(
        url,
        "clients",
        "set-jwks",
        client_id,
        "--jwks-uri",
        uri,
        SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK="true",
    )
    assert switched.returncode == 0, switched.stderr
    shown = json.loads(run_sekisho(url, "clients", "show", client_id).stdout)
    assert (shown["jwks"], shown["jwks_uri"]) == (None, uri)
    assert _try(dev_server, published, client_id) == AUTHENTICATED
    assert _try(dev_server, inline, client_id) == REFUSED

    _key_id, api_key = create_key(dev_server, "clients:read", "clients:write")
    body = {
        "name": "Via API",
        "redirect_uris": ["https://rp.example/callback"],
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks_uri": uri,
    }
    with dev_server.client(headers=bearer(api_key)) as http:
        created = http.post("/api/v1/admin/clients", json=body)
        refused = http.post("/api/v1/admin/clients", json={**body, "jwks": _set(inline)})
        back = http.put(f"/api/v1/admin/clients/{client_id}/jwks", json={"jwks": _set(inline)})
        neither = http.put(f"/api/v1/admin/clients/{client_id}/jwks", json={})
    assert created.status_code == 201, created.text
    assert created.json()["jwks_uri"] == uri
    assert created.json()["jwks"] is None
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata")
    assert back.status_code == 200, back.text
    assert (back.json()["jwks_uri"], back.json()["jwks"]) == (None, _set(inline))
    assert neither.status_code == 400
    assert _try(dev_server, published, created.json()["client_id"]) == AUTHENTICATED
    assert _try(dev_server, inline, client_id) == AUTHENTICATED
    with dev_server.database.engine.connect() as connection:
        replaced = connection.execute(
            text("SELECT count(*) FROM audit_events WHERE event = 'oidc.client_jwks_replaced'")
        ).scalar_one()
    assert replaced == 2


def test_a_key_rotated_without_kid_is_picked_up_by_one_refetch(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    """Authlib's client sends no ``kid``: an assertion that no kept key verifies makes
    the same rate-limited refetch as an unknown ``kid``, then is checked once more."""
    old, new, stranger = _key(), _key(), _key()
    uri = documents.serve_json(PATH, _set(old))
    client_id = register_client(dev_server, auth_method="private_key_jwt", jwks_uri=uri).client_id
    origin = dev_server.settings.public_origin

    def kidless(key: ECKey) -> tuple[int, str]:
        return _outcome(_token(dev_server, _assertion(key, client_id, origin, with_kid=False)))

    assert kidless(old) == AUTHENTICATED
    documents.serve_json(PATH, _set(new))
    assert kidless(new) == AUTHENTICATED
    assert documents.hits[PATH] == 2
    # within the refetch interval, an assertion no key verifies fetches nothing
    assert kidless(stranger) == REFUSED
    assert kidless(old) == REFUSED
    assert documents.hits[PATH] == 2
    assert kidless(new) == AUTHENTICATED
    assert all(reason.startswith("signature:") for reason in _refusal_reasons(dev_server))


def test_a_client_at_a_jwks_uri_is_read_once_per_request_once_its_set_is_kept(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    """The request that fetches reads its client on both sides of the fetch (no fetch
    holds a transaction); every request after it reads the client once."""
    key = _key()
    uri = documents.serve_json(PATH, _set(key))
    client_id = register_client(dev_server, auth_method="private_key_jwt", jwks_uri=uri).client_id
    reads = _client_reads(dev_server)
    assert _try(dev_server, key, client_id) == AUTHENTICATED
    assert len(reads) == 2
    assert _try(dev_server, key, client_id) == AUTHENTICATED
    assert len(reads) == 3
    assert documents.hits[PATH] == 1
