"""The JWK Sets of ``private_key_jwt`` clients registered by ``jwks_uri`` (OIDC
Registration §2; OIDC Core §10.1.1 for the client's key rotation), fetched with
:class:`MetadataFetcher` and kept in memory per client.

Invariants:

- A set is fetched in :meth:`RemoteKeySets.prepare`, before the request's database
  transaction (a fetch never holds the SQLite writer lock or a PostgreSQL connection),
  in the thread pool; the transaction then reads the prepared outcome with
  :meth:`RemoteKeySets.outcome`, which never fetches.
- A set is kept for the ``Cache-Control`` max-age its server gave, bounded to
  :data:`MIN_TTL`..:data:`MAX_TTL` (:data:`DEFAULT_TTL` when it gives none).
- An assertion naming a ``kid`` not in the kept set, or naming none and verified by
  no kept key (``missed``: a client that sends no ``kid`` rotated its key), makes one
  refetch, at most once per :data:`REFETCH_INTERVAL` per client, so assertions with
  made-up ``kid`` values or made-up signatures cannot make Sekisho hammer the client's
  server. :meth:`RemoteKeySets.wants` says, without fetching, whether
  :meth:`RemoteKeySets.prepare` would fetch, so that a request can look at its client
  and the kept set in its transaction and leave it only to fetch.
- A failed fetch is kept like a set for :data:`FAILURE_TTL`: the refusal is answered
  (``invalid_client``, audited with the failure code) without fetching again each time.
- The kept set passed :func:`client_assertion.check_jwks`, the same check an inline set
  passes at registration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sekisho.oidc import client_assertion
from sekisho.oidc.metadata_fetch import FetchFailure, FetchRefused, MetadataFetcher

DEFAULT_TTL = timedelta(minutes=5)
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(hours=1)
FAILURE_TTL = timedelta(seconds=30)
REFETCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _Kept:
    uri: str
    jwks: dict[str, Any] | None
    failure: FetchFailure | None
    fresh_until: datetime
    refetched_at: datetime | None

    def knows(self, kid: str | None) -> bool:
        if self.jwks is None:
            return False
        return kid is None or any(key.get("kid") == kid for key in self.jwks["keys"])


@dataclass(frozen=True, slots=True)
class _Plan:
    """Whether to fetch, and what the fetch records as the last refetch (a fetch while
    the kept set is still fresh)."""

    fetch: bool
    now: datetime
    refetched_at: datetime | None


class RemoteKeySets:
    def __init__(self, fetcher: MetadataFetcher, clock: Callable[[], datetime]) -> None:
        self._fetcher = fetcher
        self._clock = clock
        self._kept: dict[str, _Kept] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    def wants(self, client_id: str, uri: str, kid: str | None, *, missed: bool = False) -> bool:
        """Whether :meth:`prepare` with these arguments would fetch (never blocks)."""
        return self._plan(self._kept.get(client_id), uri, kid, missed).fetch

    def prepare(self, client_id: str, uri: str, kid: str | None, *, missed: bool = False) -> None:
        """Make :meth:`outcome` hold a set for this client and URI that is fresh, or,
        when the assertion names an unknown ``kid`` (or, naming none, was ``missed`` by
        every kept key), refetched if the interval allows. Blocks while fetching (the
        thread pool); one fetch per client at a time."""
        with self._lock_of(client_id):
            plan = self._plan(self._kept.get(client_id), uri, kid, missed)
            if plan.fetch:
                self._kept[client_id] = self._fetch(uri, plan.now, plan.refetched_at)

    def _plan(self, kept: _Kept | None, uri: str, kid: str | None, missed: bool) -> _Plan:
        now = self._clock()
        if kept is None or kept.uri != uri:
            return _Plan(True, now, None)
        fresh = kept.fresh_until > now
        if fresh and kept.knows(kid) and not missed:
            return _Plan(False, now, kept.refetched_at)
        refetch_allowed = kept.refetched_at is None or now - kept.refetched_at >= REFETCH_INTERVAL
        if fresh and not refetch_allowed:
            return _Plan(False, now, kept.refetched_at)
        return _Plan(True, now, now if fresh else kept.refetched_at)

    def outcome(self, client_id: str, uri: str) -> dict[str, Any] | FetchFailure | None:
        """The set :meth:`prepare` kept for this client and URI, why its fetch failed,
        or None when nothing was prepared for this URI."""
        kept = self._kept.get(client_id)
        if kept is None or kept.uri != uri:
            return None
        return kept.jwks if kept.jwks is not None else (kept.failure or FetchFailure.invalid)

    def _fetch(self, uri: str, now: datetime, refetched_at: datetime | None) -> _Kept:
        try:
            fetched = self._fetcher.fetch_json(uri)
            jwks = client_assertion.check_jwks(fetched.document)
        except FetchRefused as error:
            return _Kept(uri, None, error.code, now + FAILURE_TTL, refetched_at)
        except ValueError:
            return _Kept(uri, None, FetchFailure.invalid, now + FAILURE_TTL, refetched_at)
        given = DEFAULT_TTL if fetched.max_age is None else timedelta(seconds=fetched.max_age)
        ttl = min(max(given, MIN_TTL), MAX_TTL)
        return _Kept(uri, jwks, None, now + ttl, refetched_at)

    def _lock_of(self, client_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(client_id, threading.Lock())
