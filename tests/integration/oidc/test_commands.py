"""``sekisho clients ...`` and ``sekisho keys ...`` as operators run them, against the
live server's database: a secret shown once and stored hashed, rotation with overlap
(the new key is published before it signs, the old one stays published)."""

from __future__ import annotations

import json
import re

from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import text

from tests.conftest import ServerFactory
from tests.support.cli import run_sekisho
from tests.support.oidc import Registered, code_for, exchange, register_client, signed_in_browser
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

CLIENT_ID = re.compile(r"client_id: (\S+)")
SECRET = re.compile(r"client_secret: (\S+)")


def _token_request(server: LiveServer, client_id: str, secret: str) -> tuple[int, str]:
    answer = exchange(server, Registered(client_id, secret), "no-such-code")
    return answer.status_code, answer.json()["error"]


def test_clients_add_list_show_rotate_and_remove(server: LiveServer) -> None:
    url = server.settings.database_url
    added = run_sekisho(
        url,
        "clients",
        "add",
        "--name",
        "Brokerage",
        "--redirect-uri",
        "https://rp.example/callback",
        "--first-party",
        "--scope",
        "openid",
        "--scope",
        "email",
    )
    assert added.returncode == 0, added.stderr
    client_id = CLIENT_ID.search(added.stdout)
    secret = SECRET.search(added.stdout)
    assert client_id is not None
    assert secret is not None
    with server.database.engine.connect() as connection:
        stored = connection.execute(text("SELECT secret_digest FROM oidc_clients")).scalar_one()
    assert secret.group(1) not in stored
    assert client_id.group(1) in run_sekisho(url, "clients", "list").stdout
    shown = run_sekisho(url, "clients", "show", client_id.group(1))
    assert json.loads(shown.stdout)["redirect_uris"] == ["https://rp.example/callback"]
    assert secret.group(1) not in shown.stdout
    assert _token_request(server, client_id.group(1), secret.group(1)) == (400, "invalid_grant")
    rotated = run_sekisho(url, "clients", "rotate-secret", client_id.group(1))
    new_secret = SECRET.search(rotated.stdout)
    assert new_secret is not None
    assert _token_request(server, client_id.group(1), secret.group(1)) == (401, "invalid_client")
    assert _token_request(server, client_id.group(1), new_secret.group(1)) == (400, "invalid_grant")
    refused = run_sekisho(
        url, "clients", "add", "--name", "Bad", "--redirect-uri", "http://evil.example/cb"
    )
    assert refused.returncode == 2
    assert "https" in refused.stderr
    assert run_sekisho(url, "clients", "remove", client_id.group(1)).returncode == 0
    assert _token_request(server, client_id.group(1), new_secret.group(1)) == (
        401,
        "invalid_client",
    )
    assert run_sekisho(url, "clients", "show", client_id.group(1)).returncode == 1


def _kid_of_new_token(server: LiveServer, smtp: SmtpCapture, email: str) -> str:
    registered = register_client(server)
    browser = signed_in_browser(server, smtp, email)
    try:
        answer = exchange(server, registered, code_for(browser, registered.client_id))
    finally:
        browser.close()
    with server.client() as http:
        key_set = KeySet.import_key_set(http.get("/.well-known/jwks.json").json())
    token = jwt.decode(answer.json()["id_token"], key_set)
    return str(token.header["kid"])


def _jwks(server: LiveServer) -> KeySet:
    with server.client() as http:
        return KeySet.import_key_set(http.get("/.well-known/jwks.json").json())


def _published(server: LiveServer, alg: str = "ES256") -> list[str]:
    with server.client() as http:
        keys = http.get("/.well-known/jwks.json").json()["keys"]
    return [key["kid"] for key in keys if key["alg"] == alg]


def _listed(url: str, alg: str = "ES256") -> list[str]:
    return [
        line
        for line in run_sekisho(url, "keys", "list").stdout.splitlines()
        if line.split()[1] == alg
    ]


def test_keys_rotate_publishes_before_signing_and_keeps_the_old_key(
    server: LiveServer, smtp: SmtpCapture
) -> None:
    url = server.settings.database_url
    [first] = _published(server)
    assert f"{first}  ES256  signing" in run_sekisho(url, "keys", "list").stdout
    rotated = run_sekisho(url, "keys", "rotate", "--delay", "3600", "--alg", "ES256")
    assert rotated.returncode == 0, rotated.stderr
    second = next(line.split()[0] for line in _listed(url) if "published" in line.split()[2])
    assert _published(server) == [first, second]
    assert _kid_of_new_token(server, smtp, "ko@example.com") == first
    assert run_sekisho(url, "keys", "rotate", "--delay", "0", "--alg", "ES256").returncode == 0
    listing = _listed(url)
    third = listing[-1].split()[0]
    assert _kid_of_new_token(server, smtp, "mai@example.com") == third
    assert _published(server) == [first, second, third]
    assert f"{first}  ES256  retired" in "\n".join(listing)


def test_a_new_server_key_rotates_the_unreadable_signing_key(
    make_server: ServerFactory, smtp: SmtpCapture
) -> None:
    first = make_server()
    [old] = _published(first)
    first.stop()
    url = first.settings.database_url
    new_secret = "another-secret-key-0123456789abcdef0123456789"
    adopted = run_sekisho(url, "key", "adopt", "--yes", secret_key=new_secret)
    assert adopted.returncode == 0, adopted.stderr
    second = make_server(secret_key=new_secret)
    published = _published(second)
    assert published[0] == old
    assert len(published) == 2
    registered = register_client(second, secret_key=new_secret)
    browser = signed_in_browser(second, smtp, "ken@example.com")
    try:
        answer = exchange(second, registered, code_for(browser, registered.client_id))
    finally:
        browser.close()
    assert answer.status_code == 200, answer.text
    token = jwt.decode(answer.json()["id_token"], _jwks(second))
    assert token.header["kid"] == published[1]
