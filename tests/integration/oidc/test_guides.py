"""The integration guides in docs/integrations/ against a running provider: every
discovery value they rely on is in the discovery document, and every claim they name is
in ``claims_supported`` and in a real ID token."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.browser import FormBrowser
from tests.support.oidc import code_for, exchange, register_client, sign_in_by_code, verify_id_token
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

GUIDES = sorted((Path(__file__).parents[3] / "docs" / "integrations").glob("*.md"))
DISCOVERY_ROW = re.compile(r"^\| `([a-z_]+)` \| `([^`]+)` \|$", re.MULTILINE)
CLAIM_ROW = re.compile(r"^\| `([a-z_]+)` \| [^`|]", re.MULTILINE)


def test_there_are_guides_with_both_tables() -> None:
    assert GUIDES
    for guide in GUIDES:
        text = guide.read_text(encoding="utf-8")
        assert DISCOVERY_ROW.findall(text), guide.name
        assert CLAIM_ROW.findall(text), guide.name


@pytest.mark.parametrize("guide", GUIDES, ids=lambda path: path.name)
def test_a_guides_values_and_claims_exist_in_the_running_provider(
    guide: Path, server: LiveServer, smtp: SmtpCapture
) -> None:
    text = guide.read_text(encoding="utf-8")
    with server.client() as http:
        metadata = http.get("/.well-known/openid-configuration").json()
    for field, value in DISCOVERY_ROW.findall(text):
        published = metadata[field]
        if isinstance(published, list):
            assert value in published, (field, value)
        else:
            assert str(published).lower() == value, (field, value)

    database = server.database
    try:
        with database.transaction() as repos:
            repos.users.create(
                "aoi@example.com", now=datetime.now(UTC), verified=True, display_name="Aoi"
            )
    finally:
        database.dispose()
    registered = register_client(server)
    browser = FormBrowser(server.url)
    try:
        sign_in_by_code(browser, smtp, "aoi@example.com")
        code = code_for(browser, registered.client_id, scope="openid email profile")
    finally:
        browser.close()
    answer = exchange(server, registered, code)
    assert answer.status_code == 200, answer.text
    claims = verify_id_token(server, answer.json()["id_token"], client_id=registered.client_id)
    for claim in CLAIM_ROW.findall(text):
        assert claim in metadata["claims_supported"], claim
        assert claim in claims, claim
