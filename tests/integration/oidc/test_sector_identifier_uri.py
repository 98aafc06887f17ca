"""A pairwise client's ``sector_identifier_uri`` (OIDC Core §8.1) over real HTTP: at
registration (``sekisho clients add`` and the admin API) Sekisho fetches it from a real
server on 127.0.0.1 with the same safe fetcher as a ``jwks_uri``; it must be a JSON
array listing every redirect URI, and its host becomes the sector, so clients on
different redirect hosts with one sector know a person by the same ``sub``."""

from __future__ import annotations

import re

from sqlalchemy import text

from tests.integration.admin.support import bearer, create_key
from tests.integration.oidc.test_pairwise_subjects import _sign_in_to
from tests.support.browser import FormBrowser
from tests.support.cli import run_sekisho
from tests.support.document_server import Answer, DocumentServer
from tests.support.oidc import Registered, register_client, sign_in_by_code
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

A = "https://a.example/cb"
B = "https://b.example/cb"
PATH = "/sector.json"
CLIENT_ID = re.compile(r"client_id: (\S+)")


def _clients(server: LiveServer) -> int:
    with server.database.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM oidc_clients")).scalar_one())


def test_clients_of_one_sector_identifier_share_the_pairwise_subject(
    dev_server: LiveServer, documents: DocumentServer, smtp: SmtpCapture
) -> None:
    sector = documents.serve_json(PATH, [A, B])
    user_id = dev_server.add_user("sector@example.com")
    _key_id, api_key = create_key(dev_server, "clients:write")
    made: list[Registered] = []
    with dev_server.client(headers=bearer(api_key)) as http:
        for redirect_uri in (A, B):
            created = http.post(
                "/api/v1/admin/clients",
                json={
                    "name": "Sector",
                    "redirect_uris": [redirect_uri],
                    "first_party": True,
                    "subject_type": "pairwise",
                    "sector_identifier_uri": sector,
                },
            )
            assert created.status_code == 201, created.text
            assert created.json()["sector_identifier_uri"] == sector
            made.append(Registered(created.json()["client_id"], created.json()["client_secret"]))
    own_host = register_client(dev_server, subject_type="pairwise", redirect_uris=(A,))
    browser = FormBrowser(dev_server.url)
    sign_in_by_code(browser, smtp, "sector@example.com")
    on_a = _sign_in_to(dev_server, browser, made[0], A)[0]
    on_b = _sign_in_to(dev_server, browser, made[1], B)[0]
    by_host = _sign_in_to(dev_server, browser, own_host, A)[0]
    assert on_a["sub"] == on_b["sub"]
    assert on_a["sid"] == on_b["sid"]
    assert len({on_a["sub"], by_host["sub"], user_id}) == 3
    assert documents.hits[PATH] == 2


def test_the_cli_checks_the_sector_identifier_uri(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    url = dev_server.settings.database_url
    sector = documents.serve_json(PATH, [A, B, "https://c.example/cb"])
    short = documents.serve_json("/short.json", [A])
    add = ("clients", "add", "--name", "Spread", "--redirect-uri", A, "--redirect-uri", B)
    pairwise = ("--subject-type", "pairwise")
    missing = run_sekisho(
        url,
        *add,
        *pairwise,
        "--sector-identifier-uri",
        short,
        SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK="true",
    )
    assert missing.returncode == 2
    assert f"does not list the redirect URI {B}" in missing.stderr
    production = run_sekisho(url, *add, *pairwise, "--sector-identifier-uri", sector)
    assert production.returncode == 2
    assert "does not fetch a sector identifier URI there (uri)" in production.stderr
    made = run_sekisho(
        url,
        *add,
        *pairwise,
        "--sector-identifier-uri",
        sector,
        SEKISHO_OIDC_CLIENT_FETCH_ALLOW_LOOPBACK="true",
    )
    assert made.returncode == 0, made.stderr
    found = CLIENT_ID.search(made.stdout)
    assert found is not None
    shown = run_sekisho(url, "clients", "show", found.group(1))
    assert f'"sector_identifier_uri": "{sector}"' in shown.stdout
    assert (documents.hits[PATH], documents.hits["/short.json"]) == (1, 1)
    assert _clients(dev_server) == 1


def test_a_sector_identifier_uri_that_cannot_be_used_is_refused(
    dev_server: LiveServer, documents: DocumentServer
) -> None:
    listing = documents.serve_json(PATH, [A, B])
    cases = {
        "not an array": (
            documents.serve_json("/object.json", {"redirect_uris": [A, B]}),
            "JSON array",
        ),
        "not JSON": (documents.serve("/page", Answer(b"<html></html>")), "(not_json)"),
        "a redirect": (
            documents.serve("/moved", Answer(b"", 302, {"Location": listing})),
            "(redirect)",
        ),
        "a private address": ("https://192.168.0.10/sector.json", "(address)"),
        "a fragment": (listing + "#x", "no fragment"),
    }
    _key_id, api_key = create_key(dev_server, "clients:write")
    body = {
        "name": "Spread",
        "redirect_uris": [A, B],
        "subject_type": "pairwise",
        "sector_identifier_uri": listing,
    }
    with dev_server.client(headers=bearer(api_key)) as http:
        for name, (uri, says) in cases.items():
            refused = http.post(
                "/api/v1/admin/clients", json={**body, "sector_identifier_uri": uri}
            )
            assert refused.status_code == 400, name
            assert refused.json()["error"] == "invalid_client_metadata", name
            assert says in refused.json()["explanation"], (name, refused.json())
        public = http.post("/api/v1/admin/clients", json={**body, "subject_type": "public"})
        without = http.post("/api/v1/admin/clients", json={**body, "sector_identifier_uri": None})
    assert public.status_code == without.status_code == 400
    assert "only with pairwise" in public.json()["explanation"]
    assert "sector identifier URI" in without.json()["explanation"]
    assert documents.hits[PATH] == 0
    assert _clients(dev_server) == 0
