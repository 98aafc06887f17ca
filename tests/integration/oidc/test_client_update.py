"""``sekisho clients update`` and ``PATCH /api/v1/admin/clients/{id}`` over the live
server: settings change under the checks of registration (one code path), each change
is audited with the fields it changed, the subject type cannot change, a pairwise
client cannot move to another sector, and a redirect URI removed while a code or a
pushed request was in flight for it gets nothing more: the code is refused at /token
and the request is shown as an error page, never sent there."""

from __future__ import annotations

import json

from tests.integration.admin.support import bearer, create_key
from tests.integration.oidc.test_par import _authorize, _refused_page, _request_uri
from tests.support.cli import run_sekisho
from tests.support.oidc import (
    REDIRECT_URI,
    code_for,
    exchange,
    register_client,
    signed_in_browser,
)
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

NEW_URI = "https://rp.example/new-callback"


def _update(server: LiveServer, client_id: str, *options: str) -> tuple[int, str, str]:
    done = run_sekisho(server.settings.database_url, "clients", "update", client_id, *options)
    return done.returncode, done.stdout, done.stderr


def test_update_changes_settings_checked_as_at_registration(server: LiveServer) -> None:
    app = register_client(server)
    api = register_client(server, name="Brokerage API")
    code, out, err = _update(
        server,
        api.client_id,
        "--name",
        "Brokerage API v2",
        "--redirect-uri",
        NEW_URI,
        "--redirect-uri",
        REDIRECT_URI,
        "--post-logout-redirect-uri",
        "https://rp.example/bye",
        "--backchannel-logout-uri",
        "https://rp.example/backchannel",
        "--third-party",
        "--scope",
        "openid",
        "--require-par",
        "--access-token-lifetime",
        "120",
        "--introspects",
        app.client_id,
    )
    assert code == 0, err
    shown = json.loads(out)
    assert shown["name"] == "Brokerage API v2"
    assert shown["redirect_uris"] == [NEW_URI, REDIRECT_URI]
    assert shown["post_logout_redirect_uris"] == ["https://rp.example/bye"]
    assert shown["backchannel_logout_uri"] == "https://rp.example/backchannel"
    assert (shown["first_party"], shown["scopes"]) == (False, ["openid"])
    assert shown["require_pushed_authorization_requests"] is True
    assert shown["access_token_lifetime_seconds"] == 120
    assert shown["id_token_lifetime_seconds"] == 600  # not given: unchanged
    assert shown["introspects"] == [app.client_id]
    cleared = _update(server, api.client_id, "--backchannel-logout-uri", "", "--introspects", "")
    assert cleared[0] == 0, cleared[2]
    assert (
        json.loads(cleared[1])["backchannel_logout_uri"],
        json.loads(cleared[1])["introspects"],
    ) == (None, [])

    refusals = {
        "use https": ("--redirect-uri", "http://rp.example/callback"),
        "scopes must include openid": ("--scope", "admin"),
        "between 30 seconds and 1 hour": ("--id-token-lifetime", "10"),
        "no client nobody": ("--introspects", "nobody"),
        "ID token algorithm": ("--id-token-alg", "HS256"),
    }
    for message, options in refusals.items():
        refused = _update(server, api.client_id, *options)
        assert refused[0] == 2, message
        assert message in refused[2], refused[2]
    assert _update(server, "no-such-client", "--name", "x")[0] == 1
    add = ("clients", "add", "--name", "API", "--redirect-uri", "https://api.example/cb")
    url = server.settings.database_url
    unknown_target = run_sekisho(url, *add, "--introspects", "nobody")
    assert (unknown_target.returncode, "no client nobody" in unknown_target.stderr) == (2, True)
    public = run_sekisho(url, *add, "--auth-method", "none", "--introspects", app.client_id)
    assert "a public client cannot introspect" in public.stderr
    added = run_sekisho(url, *add, "--introspects", app.client_id)
    assert added.returncode == 0, added.stderr
    assert _update(server, api.client_id, "--subject-type", "pairwise")[0] == 2  # no such option

    updates = server.audited("oidc.client_updated")
    assert [event["client_id"] for event in updates] == [api.client_id] * 2
    assert updates[0]["changed"] == [
        "access_token_lifetime",
        "backchannel_logout_uri",
        "first_party",
        "introspects",
        "name",
        "post_logout_redirect_uris",
        "redirect_uris",
        "require_par",
        "scopes",
    ]
    assert updates[1]["changed"] == ["backchannel_logout_uri", "introspects"]


def test_a_pairwise_client_keeps_its_sector(server: LiveServer) -> None:
    pairwise = register_client(
        server, subject_type="pairwise", redirect_uris=("https://rp.example/callback",)
    )
    same_host = _update(server, pairwise.client_id, "--redirect-uri", NEW_URI)
    assert same_host[0] == 0, same_host[2]
    moved = _update(server, pairwise.client_id, "--redirect-uri", "https://elsewhere.example/cb")
    assert moved[0] == 2
    assert "another sector" in moved[2]


def test_a_removed_redirect_uri_gets_nothing_in_flight(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    app = register_client(server, redirect_uris=(REDIRECT_URI, NEW_URI))
    browser = signed_in_browser(server, smtp, "rin@example.com")
    try:
        code = code_for(browser, app.client_id)
        pushed = _request_uri(server, app)
        done = _update(server, app.client_id, "--redirect-uri", NEW_URI)
        assert done[0] == 0, done[2]
        _refused_page(browser.http.get(_authorize(app.client_id, pushed)), "redirect_uri_mismatch")
    finally:
        browser.close()
    refused = exchange(server, app, code)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    reasons = [event["reason"] for event in server.audited("oidc.token.refused")]
    assert reasons == ["redirect_uri_unregistered"]


def test_the_admin_api_patches_a_client(server: LiveServer) -> None:
    app = register_client(server)
    api = register_client(server, name="Brokerage API")
    _id, writer = create_key(server, "clients:read", "clients:write")
    _id, reader = create_key(server, "clients:read", name="reader")
    path = f"/api/v1/admin/clients/{api.client_id}"
    with server.client(headers=bearer(writer)) as http:
        patched = http.patch(
            path,
            json={
                "redirect_uris": [NEW_URI],
                "introspects": [app.client_id],
                "backchannel_logout_uri": "https://rp.example/backchannel",
                "access_token_lifetime_seconds": 90,
            },
        )
        cleared = http.patch(path, json={"backchannel_logout_uri": None})
        bad_uri = http.patch(path, json={"redirect_uris": ["http://rp.example/cb"]})
        bad_target = http.patch(path, json={"introspects": ["nobody"]})
        subject = http.patch(path, json={"subject_type": "pairwise"})
        missing = http.patch("/api/v1/admin/clients/no-such-client", json={"name": "x"})
    with server.client(headers=bearer(reader)) as http:
        forbidden = http.patch(path, json={"name": "x"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["redirect_uris"], body["introspects"]) == ([NEW_URI], [app.client_id])
    assert body["access_token_lifetime_seconds"] == 90
    assert body["name"] == "Brokerage API"
    assert cleared.json()["backchannel_logout_uri"] is None
    assert cleared.json()["introspects"] == [app.client_id]
    for refused in (bad_uri, bad_target):
        assert (refused.status_code, refused.json()["error"]) == (400, "invalid_client_metadata")
    assert subject.status_code == 422
    assert missing.status_code == 404
    assert (forbidden.status_code, forbidden.json()["error"]) == (403, "insufficient_scope")
    actors = [event["client_id"] for event in server.audited("oidc.client_updated")]
    assert actors == [api.client_id, api.client_id]
