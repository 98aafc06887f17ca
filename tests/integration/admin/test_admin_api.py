"""The admin API over real HTTP on SQLite and PostgreSQL (issue 9 "Clients", issue 10
"Tiers"): OIDC clients listed, shown, created with their secret once, rotated and
deleted through the same code as ``sekisho clients``; users' tiers and attributes set
through the same code as ``sekisho users set-tier`` / ``set-attribute``, with the same
lock-out refusal and audit events naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.integration.admin.support import audit_events, bearer, create_key
from tests.support.cli import run_sekisho
from tests.support.oidc import Registered, exchange
from tests.support.server import LiveServer

POLICY = """\
default_tier = "standard"

[tiers.standard]
methods = ["passkey", "email"]

[tiers.high_value]
methods = ["passkey"]
signin_aal = 2
email_recovery = false

[[rules]]
when = "assets_jpy >= 10_000_000"
tier = "high_value"
"""
CLIENT = {
    "name": "Brokerage",
    "redirect_uris": ["https://rp.example/callback"],
    "first_party": True,
    "scopes": ["openid", "email"],
}


@pytest.fixture
def tiered(make_server: ServerFactory, tmp_path: Path) -> LiveServer:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY, encoding="utf-8")
    return make_server(policy_file=path)


def _token_error(server: LiveServer, client_id: str, secret: str) -> str:
    return str(exchange(server, Registered(client_id, secret), "no-such-code").json()["error"])


def test_clients_created_listed_shown_rotated_and_deleted(server: LiveServer) -> None:
    key_id, key = create_key(server, "clients:read", "clients:write")
    with server.client(headers=bearer(key)) as client:
        created = client.post("/api/v1/admin/clients", json=CLIENT)
        assert created.status_code == 201, created.text
        made = created.json()
        client_id, secret = made["client_id"], made["client_secret"]
        assert made["redirect_uris"] == CLIENT["redirect_uris"]
        assert made["token_endpoint_auth_method"] == "client_secret_basic"
        listed = client.get("/api/v1/admin/clients").json()
        assert [entry["client_id"] for entry in listed] == [client_id]
        shown = client.get(f"/api/v1/admin/clients/{client_id}")
        assert shown.status_code == 200
        assert "client_secret" not in shown.json()
        assert secret not in shown.text + client.get("/api/v1/admin/clients").text
        assert _token_error(server, client_id, secret) == "invalid_grant"
        rotated = client.post(f"/api/v1/admin/clients/{client_id}/secret")
        assert rotated.status_code == 200
        new_secret = rotated.json()["client_secret"]
        assert _token_error(server, client_id, secret) == "invalid_client"
        assert _token_error(server, client_id, new_secret) == "invalid_grant"
        assert client.delete(f"/api/v1/admin/clients/{client_id}").status_code == 204
        assert _token_error(server, client_id, new_secret) == "invalid_client"
        for gone in (
            client.get(f"/api/v1/admin/clients/{client_id}"),
            client.post(f"/api/v1/admin/clients/{client_id}/secret"),
            client.delete(f"/api/v1/admin/clients/{client_id}"),
        ):
            assert gone.status_code == 404
            assert gone.json()["error"] == "not_found"
    with server.database.engine.connect() as connection:
        stored = connection.execute(text("SELECT count(*) FROM oidc_clients")).scalar_one()
    assert stored == 0
    events = audit_events(server, "oidc.client_")
    assert [event for event, *_rest in events] == [
        "oidc.client_added",
        "oidc.client_secret_rotated",
        "oidc.client_removed",
    ]
    assert {ip for _event, _outcome, ip, _detail in events} == {f"api-key:{key_id}"}


def test_the_command_line_sees_clients_the_api_made(server: LiveServer) -> None:
    _key_id, key = create_key(server, "clients:write")
    with server.client(headers=bearer(key)) as client:
        made = client.post("/api/v1/admin/clients", json={**CLIENT, "client_id": "brokerage"})
        assert made.status_code == 201
        again = client.post("/api/v1/admin/clients", json={**CLIENT, "client_id": "brokerage"})
        assert again.status_code == 409
        assert again.json()["error"] == "client_exists"
    shown = run_sekisho(server.settings.database_url, "clients", "show", "brokerage")
    assert '"first_party": true' in shown.stdout
    assert audit_events(server, "oidc.client_added")[0][2] != "cli"


def test_bad_client_settings_are_refused_with_the_reason(server: LiveServer) -> None:
    _key_id, key = create_key(server, "clients:write")
    with server.client(headers=bearer(key)) as client:
        insecure = client.post(
            "/api/v1/admin/clients",
            json={**CLIENT, "redirect_uris": ["http://evil.example/cb"]},
        )
        assert insecure.status_code == 400
        assert insecure.json()["error"] == "invalid_client_metadata"
        assert "https" in insecure.json()["explanation"]
        for malformed in ("https://[::1/cb", "https://rp.example:99999/cb"):
            for field in ("redirect_uris", "post_logout_redirect_uris"):
                refused = client.post("/api/v1/admin/clients", json={**CLIENT, field: [malformed]})
                assert refused.status_code == 400, (field, malformed, refused.text)
                assert refused.json()["error"] == "invalid_client_metadata"
            for extra in (
                {"backchannel_logout_uri": malformed},
                {"subject_type": "pairwise", "sector_identifier_uri": malformed},
            ):
                refused = client.post("/api/v1/admin/clients", json={**CLIENT, **extra})
                assert refused.status_code == 400, (extra, refused.text)
                assert refused.json()["error"] == "invalid_client_metadata"
        unknown_field = client.post("/api/v1/admin/clients", json={**CLIENT, "secret": "x"})
        assert unknown_field.status_code == 422
        assert unknown_field.json()["error"] == "invalid_field"
        form = client.post(
            "/api/v1/admin/clients", content=b"name=x", headers={"Content-Type": "text/plain"}
        )
        assert form.status_code == 415
    with server.database.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM oidc_clients")).scalar_one() == 0


def test_users_tier_and_attributes_through_the_api(tiered: LiveServer) -> None:
    tiered.add_user("hana@example.com")
    key_id, key = create_key(tiered, "users:read", "users:write")
    with tiered.client(headers=bearer(key)) as client:
        shown = client.post("/api/v1/admin/users/lookup", json={"email": "Hana@Example.com"})
        assert shown.status_code == 200
        assert shown.json() == {
            "email": "hana@example.com",
            "tier": "standard",
            "set_tier": None,
            "attributes": {},
        }
        locked_out = client.post(
            "/api/v1/admin/users/tier", json={"email": "hana@example.com", "tier": "high_value"}
        )
        assert locked_out.status_code == 409
        assert locked_out.json()["error"] == "tier_refused"
        assert "stays in tier standard" in locked_out.json()["explanation"]
        by_rule = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "hana@example.com", "name": "assets_jpy", "value": 20_000_000},
        )
        assert by_rule.status_code == 409
        small = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "hana@example.com", "name": "assets_jpy", "value": 5_000_000},
        )
        assert small.status_code == 200, small.text
        assert small.json()["after"] == "standard"
        unknown_tier = client.post(
            "/api/v1/admin/users/tier", json={"email": "hana@example.com", "tier": "gold"}
        )
        assert unknown_tier.status_code == 409
        assert "no tier 'gold'" in unknown_tier.json()["explanation"]
        again = client.post("/api/v1/admin/users/lookup", json={"email": "hana@example.com"})
        assert again.json()["attributes"] == {"assets_jpy": 5_000_000}
        removed = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "hana@example.com", "name": "assets_jpy", "value": None},
        )
        assert removed.status_code == 200
    events = audit_events(tiered, "account.")
    assert [event for event, *_rest in events] == [
        "account.attribute_set",
        "account.attribute_set",
    ]
    assert {ip for _event, _outcome, ip, _detail in events} == {f"api-key:{key_id}"}


def test_unknown_accounts_and_bad_input(tiered: LiveServer) -> None:
    _key_id, key = create_key(tiered, "users:read", "users:write")
    with tiered.client(headers=bearer(key)) as client:
        for path, body in (
            ("/api/v1/admin/users/lookup", {"email": "nobody@example.com"}),
            ("/api/v1/admin/users/tier", {"email": "nobody@example.com", "tier": "standard"}),
            (
                "/api/v1/admin/users/attribute",
                {"email": "nobody@example.com", "name": "assets_jpy", "value": 1},
            ),
        ):
            answer = client.post(path, json=body)
            assert answer.status_code == 404, path
            assert answer.json()["error"] == "not_found"
        bad_name = client.post(
            "/api/v1/admin/users/attribute",
            json={"email": "nobody@example.com", "name": "Assets", "value": 1},
        )
        assert bad_name.status_code == 422
        # JSON numbers are finite: Python's parser reads NaN, Infinity and 1e400 as
        # floats that no JSON document can hold; they are refused, nothing is stored
        tiered.add_user("mika@example.com")
        for number in ("NaN", "Infinity", "-Infinity", "1e400"):
            refused = client.post(
                "/api/v1/admin/users/attribute",
                content=f'{{"email": "mika@example.com", "name": "assets_jpy", "value": {number}}}',
                headers={"Content-Type": "application/json"},
            )
            assert refused.status_code == 422, (number, refused.text)
            assert refused.json()["error"] == "invalid_field", number
        shown = client.post("/api/v1/admin/users/lookup", json={"email": "mika@example.com"})
        assert shown.json()["attributes"] == {}
        assert (
            client.post("/api/v1/admin/users/lookup", json={"email": "not an address"}).json()[
                "error"
            ]
            == "invalid_email"
        )


def test_a_write_key_without_read_cannot_probe_accounts(tiered: LiveServer) -> None:
    tiered.add_user("hana@example.com")
    _key_id, key = create_key(tiered, "users:write")
    with tiered.client(headers=bearer(key)) as client:
        answers = [
            client.post(
                "/api/v1/admin/users/attribute",
                json={"email": address, "name": "assets_jpy", "value": 1},
            )
            for address in ("hana@example.com", "nobody@example.com")
        ]
    assert [answer.status_code for answer in answers] == [403, 403]
    assert answers[0].json() == answers[1].json()
    assert audit_events(tiered, "account.") == []
