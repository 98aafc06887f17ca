"""The SSRF-safe fetcher of client metadata (oidc/metadata_fetch.py) against a real
HTTP server on 127.0.0.1: what it fetches, and every refusal with its stable code. No
refused fetch reaches a server: the addresses are checked before connecting."""

from __future__ import annotations

import pytest

from sekisho.oidc.metadata_fetch import (
    MAX_BYTES,
    FetchFailure,
    FetchRefused,
    MetadataFetcher,
    max_age,
)
from tests.support.document_server import Answer, DocumentServer
from tests.support.ports import free_port

DEV = MetadataFetcher(allow_loopback=True)
PRODUCTION = MetadataFetcher(allow_loopback=False)


def _refusal(fetcher: MetadataFetcher, uri: str) -> FetchFailure:
    with pytest.raises(FetchRefused) as refused:
        fetcher.fetch_json(uri)
    return refused.value.code


def test_a_json_document_is_fetched_with_its_max_age(documents: DocumentServer) -> None:
    uri = documents.serve_json(
        "/jwks.json", {"keys": []}, headers={"Cache-Control": "public, max-age=120"}
    )
    fetched = DEV.fetch_json(uri)
    assert fetched.document == {"keys": []}
    assert fetched.max_age == 120
    assert documents.hosts == [f"127.0.0.1:{documents.port}"]


def test_loopback_needs_the_development_setting(documents: DocumentServer) -> None:
    uri = documents.serve_json("/jwks.json", {"keys": []})
    assert _refusal(PRODUCTION, uri) is FetchFailure.uri
    https = f"https://127.0.0.1:{documents.port}/jwks.json"
    assert _refusal(PRODUCTION, https) is FetchFailure.address
    localhost = f"https://localhost:{documents.port}/jwks.json"
    assert _refusal(PRODUCTION, localhost) is FetchFailure.address
    assert documents.hits["/jwks.json"] == 0


@pytest.mark.parametrize(
    "host",
    [
        "10.0.0.1",
        "192.168.1.10",
        "172.16.0.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address refused, not bound)
        "224.0.0.1",
        "[fe80::1]",
        "[fc00::1]",
        "[::ffff:10.0.0.1]",
        "[ff02::1]",
        "[64:ff9b::a00:1]",
        "[2002:a9fe:a9fe::1]",
    ],
)
def test_addresses_that_are_not_public_are_refused_even_in_development(host: str) -> None:
    assert _refusal(DEV, f"https://{host}/jwks.json") is FetchFailure.address


def test_a_name_is_refused_if_any_of_its_addresses_is_not_public() -> None:
    def resolve(host: str, port: int) -> list[str]:
        return {"inside.example": ["10.1.2.3"], "mixed.example": ["93.184.215.14", "127.0.0.1"]}[
            host
        ]

    fetcher = MetadataFetcher(allow_loopback=False, resolve=resolve)
    assert _refusal(fetcher, "https://inside.example/jwks.json") is FetchFailure.address
    assert _refusal(fetcher, "https://mixed.example/jwks.json") is FetchFailure.address


@pytest.mark.parametrize(
    "uri",
    [
        "ftp://rp.example/jwks.json",
        "http://rp.example/jwks.json",
        "https://user:pw@rp.example/jwks.json",
        "https://rp.example/jwks.json#keys",
        "https:///jwks.json",
        "https://rp.example:99999/jwks.json",
        "https://rp.example/jwks json",
    ],
)
def test_uris_that_are_not_plain_https_are_refused(uri: str) -> None:
    assert _refusal(DEV, uri) is FetchFailure.uri


def test_a_redirect_is_not_followed(documents: DocumentServer) -> None:
    target = documents.serve_json("/jwks.json", {"keys": []})
    moved = documents.serve("/moved", Answer(b"", status=302, headers={"Location": target}))
    assert _refusal(DEV, moved) is FetchFailure.redirect
    assert documents.hits["/jwks.json"] == 0


def test_an_error_status_is_refused(documents: DocumentServer) -> None:
    uri = documents.serve("/broken", Answer(b'{"keys": []}', status=500))
    assert _refusal(DEV, uri) is FetchFailure.status


@pytest.mark.parametrize("declare_length", [True, False])
def test_a_body_over_the_cap_is_refused(documents: DocumentServer, declare_length: bool) -> None:
    body = b'{"keys": [], "padding": "' + b"x" * MAX_BYTES + b'"}'
    uri = documents.serve("/huge", Answer(body, declare_length=declare_length))
    assert _refusal(DEV, uri) is FetchFailure.too_large


def test_a_body_at_the_cap_is_read(documents: DocumentServer) -> None:
    body = b'{"p": "' + b"x" * (MAX_BYTES - 9) + b'"}'
    assert len(body) == MAX_BYTES
    uri = documents.serve("/full", Answer(body, declare_length=False))
    assert len(DEV.fetch_json(uri).document["p"]) == MAX_BYTES - 9


def test_a_body_that_is_not_json_is_refused(documents: DocumentServer) -> None:
    html = documents.serve("/page", Answer(b"<html>keys</html>"))
    latin = documents.serve("/latin", Answer(b'{"k": "\xff"}'))
    assert _refusal(DEV, html) is FetchFailure.not_json
    assert _refusal(DEV, latin) is FetchFailure.not_json


def test_the_caller_waits_no_longer_than_the_deadline(documents: DocumentServer) -> None:
    """The site's answer comes within every socket timeout, but after the deadline."""
    uri = documents.serve("/slow.json", Answer(b'{"keys": []}', stall=1.5))
    hasty = MetadataFetcher(allow_loopback=True, deadline=0.2)
    assert _refusal(hasty, uri) is FetchFailure.timeout
    assert DEV.fetch_json(uri).document == {"keys": []}


def test_a_closed_port_is_unreachable() -> None:
    assert _refusal(DEV, f"http://127.0.0.1:{free_port()}/jwks.json") is FetchFailure.unreachable


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("max-age=300", 300),
        ("public, max-age=60, must-revalidate", 60),
        ('max-age="30"', 30),
        ("no-store", 0),
        ("max-age=600, no-cache", 0),
        ("private", None),
        ("", None),
        ("s-maxage=90", None),
    ],
)
def test_max_age_reads_cache_control(header: str, seconds: int | None) -> None:
    assert max_age(header) == seconds
