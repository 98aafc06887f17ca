"""The per-client cache of JWK Sets fetched from a ``jwks_uri`` (oidc/remote_jwks.py),
against a real HTTP server and a clock the test moves: kept for the bounded max-age,
refetched once for an unknown ``kid`` and then not again within the interval, failures
kept and reported by their code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from joserfc.jwk import ECKey

from sekisho.oidc.metadata_fetch import FetchFailure, MetadataFetcher
from sekisho.oidc.remote_jwks import (
    DEFAULT_TTL,
    FAILURE_TTL,
    MAX_TTL,
    MIN_TTL,
    REFETCH_INTERVAL,
    RemoteKeySets,
)
from tests.support.document_server import Answer, DocumentServer

PATH = "/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _key() -> ECKey:
    return ECKey.generate_key("P-256", auto_kid=True)


def _set(*keys: ECKey) -> dict[str, Any]:
    return {"keys": [key.as_dict(private=False) for key in keys]}


def _kids(found: object) -> list[str]:
    assert isinstance(found, dict), found
    return [key["kid"] for key in found["keys"]]


def _cache(clock: Clock) -> RemoteKeySets:
    return RemoteKeySets(MetadataFetcher(allow_loopback=True), clock)


def test_a_set_is_kept_for_its_max_age_then_fetched_again(documents: DocumentServer) -> None:
    clock = Clock()
    first, second = _key(), _key()
    uri = documents.serve_json(PATH, _set(first), headers={"Cache-Control": "max-age=120"})
    cache = _cache(clock)
    assert cache.outcome("c1", uri) is None
    cache.prepare("c1", uri, first.kid)
    documents.serve_json(PATH, _set(second), headers={"Cache-Control": "max-age=120"})
    clock.now += timedelta(seconds=119)
    cache.prepare("c1", uri, first.kid)
    assert (documents.hits[PATH], _kids(cache.outcome("c1", uri))) == (1, [first.kid])
    clock.now += timedelta(seconds=2)
    cache.prepare("c1", uri, second.kid)
    assert (documents.hits[PATH], _kids(cache.outcome("c1", uri))) == (2, [second.kid])


@pytest.mark.parametrize(
    ("cache_control", "ttl"),
    [
        (None, DEFAULT_TTL),
        ("max-age=1", MIN_TTL),
        ("no-store", MIN_TTL),
        ("max-age=999999", MAX_TTL),
    ],
)
def test_the_max_age_is_bounded(
    documents: DocumentServer, cache_control: str | None, ttl: timedelta
) -> None:
    clock = Clock()
    key = _key()
    headers = {"Cache-Control": cache_control} if cache_control else {}
    uri = documents.serve_json(PATH, _set(key), headers=headers)
    cache = _cache(clock)
    cache.prepare("c1", uri, key.kid)
    clock.now += ttl - timedelta(seconds=1)
    cache.prepare("c1", uri, key.kid)
    assert documents.hits[PATH] == 1
    clock.now += timedelta(seconds=1)
    cache.prepare("c1", uri, key.kid)
    assert documents.hits[PATH] == 2


def test_an_unknown_kid_refetches_once_per_interval(documents: DocumentServer) -> None:
    clock = Clock()
    old, new, stranger = _key(), _key(), _key()
    uri = documents.serve_json(PATH, _set(old))
    cache = _cache(clock)
    cache.prepare("c1", uri, old.kid)
    documents.serve_json(PATH, _set(old, new))
    cache.prepare("c1", uri, new.kid)
    assert (documents.hits[PATH], _kids(cache.outcome("c1", uri))) == (2, [old.kid, new.kid])
    cache.prepare("c1", uri, stranger.kid)
    clock.now += REFETCH_INTERVAL - timedelta(seconds=1)
    cache.prepare("c1", uri, stranger.kid)
    assert documents.hits[PATH] == 2
    clock.now += timedelta(seconds=1)
    cache.prepare("c1", uri, stranger.kid)
    assert documents.hits[PATH] == 3
    assert stranger.kid not in _kids(cache.outcome("c1", uri))


def test_clients_are_kept_apart_and_a_new_uri_is_fetched(documents: DocumentServer) -> None:
    clock = Clock()
    one, two = _key(), _key()
    uri_one = documents.serve_json("/one.json", _set(one))
    uri_two = documents.serve_json("/two.json", _set(two))
    cache = _cache(clock)
    cache.prepare("c1", uri_one, None)
    cache.prepare("c2", uri_two, None)
    assert _kids(cache.outcome("c1", uri_one)) == [one.kid]
    assert _kids(cache.outcome("c2", uri_two)) == [two.kid]
    assert cache.outcome("c1", uri_two) is None
    cache.prepare("c1", uri_two, None)
    assert _kids(cache.outcome("c1", uri_two)) == [two.kid]


def test_a_failure_is_kept_and_reported_by_its_code(documents: DocumentServer) -> None:
    clock = Clock()
    key = _key()
    uri = documents.serve(PATH, Answer(b"<html></html>"))
    cache = _cache(clock)
    cache.prepare("c1", uri, key.kid)
    clock.now += timedelta(seconds=1)
    cache.prepare("c1", uri, key.kid)
    assert documents.hits[PATH] == 2
    documents.serve_json(PATH, _set(key))
    clock.now += timedelta(seconds=1)
    cache.prepare("c1", uri, key.kid)
    assert (documents.hits[PATH], cache.outcome("c1", uri)) == (2, FetchFailure.not_json)
    clock.now += FAILURE_TTL
    cache.prepare("c1", uri, key.kid)
    assert documents.hits[PATH] == 3
    assert _kids(cache.outcome("c1", uri)) == [key.kid]


def test_a_set_that_is_not_registrable_is_a_failure(documents: DocumentServer) -> None:
    key = _key()
    uri = documents.serve_json(PATH, {"keys": [key.as_dict(private=True)]})
    cache = _cache(Clock())
    cache.prepare("c1", uri, key.kid)
    assert cache.outcome("c1", uri) is FetchFailure.invalid
