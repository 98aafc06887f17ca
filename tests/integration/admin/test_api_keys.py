"""``sekisho api-keys ...`` and the bearer check in front of the admin API, over real
HTTP on SQLite and PostgreSQL (issue 9 "Clients", issue 10 "Operators"): a key shown
once and stored only as a keyed hash, scopes enforced, a revoked or forged key refused
with RFC 6750 challenges, every creation, revocation and refused use audited."""

from __future__ import annotations

from sqlalchemy import text, update

from sekisho.store.tables import api_keys
from tests.conftest import ServerFactory
from tests.integration.admin.support import audit_events, bearer, create_key, make_key
from tests.support.cli import run_sekisho
from tests.support.server import LiveServer


def test_key_lifecycle_through_the_command_line(server: LiveServer) -> None:
    url = server.settings.database_url
    key_id, key = create_key(server, "clients:read")
    assert key.startswith(f"sk_{key_id}_")
    with server.database.engine.connect() as connection:
        stored = connection.execute(text("SELECT * FROM api_keys")).mappings().one()
    assert key not in " ".join(str(value) for value in stored.values())
    assert key.removeprefix(f"sk_{key_id}_") not in str(stored["digest"])
    assert stored["last_used_at"] is None
    listed = run_sekisho(url, "api-keys", "list")
    assert f"{key_id}  active   clients:read  never used  no operator  ops tool" in listed.stdout
    assert key not in listed.stdout
    with server.client() as client:
        assert client.get("/api/v1/admin/clients", headers=bearer(key)).status_code == 200
    assert "never used" not in run_sekisho(url, "api-keys", "list").stdout
    revoked = run_sekisho(url, "api-keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert run_sekisho(url, "api-keys", "revoke", key_id).returncode == 1
    assert f"{key_id}  revoked" in run_sekisho(url, "api-keys", "list").stdout
    with server.client() as client:
        refused = client.get("/api/v1/admin/clients", headers=bearer(key))
    assert refused.status_code == 401
    assert refused.json()["error"] == "api_key_invalid"
    events = audit_events(server, "api_key.")
    assert [(event, outcome) for event, outcome, _ip, _detail in events] == [
        ("api_key.created", "success"),
        ("api_key.revoked", "success"),
        ("api_key.refused", "failure"),
    ]
    assert events[0][3] == {"key_id": key_id, "name": "ops tool", "scopes": "clients:read"}
    assert events[2][3]["key_id"] == key_id


def test_unknown_scope_or_empty_name_is_refused(server: LiveServer) -> None:
    url = server.settings.database_url
    bad = run_sekisho(url, "api-keys", "create", "--name", "x", "--scope", "admin")
    assert bad.returncode == 2
    assert "clients:read" in bad.stderr
    nameless = run_sekisho(url, "api-keys", "create", "--name", " ", "--scope", "users:read")
    assert nameless.returncode == 2
    with server.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 0


def test_missing_malformed_and_forged_keys_get_401_with_a_challenge(server: LiveServer) -> None:
    key_id, key = create_key(server, "clients:read")
    forged = f"sk_{key_id}_{'A' * 43}"
    with server.client() as client:
        for headers in (
            {},
            {"Authorization": "Basic b3BzOm9wcw=="},
            bearer("not-a-key"),
            bearer(forged),
            bearer(f"sk_{'0' * 16}_{key.removeprefix(f'sk_{key_id}_')}"),
        ):
            answer = client.get("/api/v1/admin/clients", headers=headers)
            assert answer.status_code == 401, headers
            assert answer.json()["error"] == "api_key_invalid"
            assert answer.headers["WWW-Authenticate"] == (
                'Bearer realm="sekisho", error="invalid_token", scope="clients:read"'
            )
    refused = [detail for _e, outcome, _ip, detail in audit_events(server, "api_key.refused")]
    assert len(refused) == 3  # no audit without a bearer value at all
    assert "key_id" not in refused[0]
    assert refused[1]["key_id"] == key_id


def test_a_session_cookie_is_not_an_api_key(server: LiveServer) -> None:
    with server.client() as client:
        client.cookies.set("sekisho_session", "anything")
        assert client.get("/api/v1/admin/clients").status_code == 401


def test_a_key_without_the_scope_gets_403(server: LiveServer) -> None:
    _key_id, key = create_key(server, "clients:read", "users:write")
    with server.client() as client:
        answer = client.post(
            "/api/v1/admin/clients",
            headers=bearer(key),
            json={"name": "App", "redirect_uris": ["https://rp.example/cb"]},
        )
        assert answer.status_code == 403
        assert answer.json() == {
            "error": "insufficient_scope",
            "message": "This API key does not have the scope this request needs.",
            "scope": "clients:write",
        }
        assert 'error="insufficient_scope"' in answer.headers["WWW-Authenticate"]
        lookup = client.post(
            "/api/v1/admin/users/tier",
            headers=bearer(key),
            json={"email": "nobody@example.com", "tier": "standard"},
        )
        assert lookup.status_code == 403
        assert lookup.json()["scope"] == "users:read users:write"
    with server.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM oidc_clients")).scalar_one() == 0
    reasons = [detail["reason"] for *_rest, detail in audit_events(server, "api_key.refused")]
    assert reasons == ["insufficient_scope", "insufficient_scope"]


def test_a_recovery_key_names_its_operator_and_an_older_one_is_refused(
    make_server: ServerFactory,
) -> None:
    """A key with recovery:open or recovery:approve is made for an operator in
    admin_emails (audited with it); a key whose operator is empty, as every key made
    before, gets 403 ``api_key_no_operator`` for the recovery steps, audited, while
    reading cases needs no operator."""
    server = make_server(admin_emails=["ops@example.com"])
    refused = make_key(server, "recovery:open", "users:read", name="desk", operator=None)
    assert refused.returncode == 2
    assert "--operator" in refused.stderr
    key_id, key = create_key(
        server, "recovery:open", "recovery:read", "users:read", operator="OPS@example.com"
    )
    created = audit_events(server, "api_key.created")
    assert created[0][3]["operator"] == "ops@example.com"
    with server.database.engine.begin() as connection:
        connection.execute(update(api_keys).where(api_keys.c.id == key_id).values(operator=None))
    with server.client(headers=bearer(key)) as old:
        assert old.get("/api/v1/admin/recoveries").status_code == 200
        answer = old.post(
            "/api/v1/admin/recoveries", json={"email": "a@example.com", "reason": "x" * 20}
        )
    assert answer.status_code == 403
    assert answer.json()["error"] == "api_key_no_operator"
    assert "--operator" in answer.json()["message"]
    refusals = audit_events(server, "api_key.refused")
    assert [(detail["key_id"], detail["reason"]) for *_rest, detail in refusals] == [
        (key_id, "api_key_no_operator")
    ]
