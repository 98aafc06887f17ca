"""Delivering back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0).

The queue is filled by the transaction that ends a Sekisho session
(``store/logouts.py``); this worker, running beside the mail worker, claims due
deliveries, signs each logout token (§2.4: ``iss``, ``aud``, ``iat``, ``exp``, ``jti``,
``sub``, ``sid``, ``events``, never ``nonce``; header ``typ`` ``logout+jwt``) with the
provider's current key, and POSTs it as ``logout_token`` (§2.5). A 2xx answer settles
it; anything else (an error status, a redirect, which is never followed, a timeout, a
refused connection) is retried with exponential backoff until
``backchannel_max_attempts``, then failed for good. Every outcome is an audit event.
Only ``https`` URIs are called; ``http`` on a loopback address in development mode.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import httpx
from joserfc import jwt

from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.oidc import signing_keys, subjects
from sekisho.oidc.clients import is_loopback
from sekisho.oidc.records import Client, SigningKey
from sekisho.settings import Settings
from sekisho.store.database import Database, Wakeup
from sekisho.store.lease_queue import claim_off_the_loop
from sekisho.store.logout_queue import ClaimedLogout, LogoutQueue, LogoutRetry, LogoutSettlement
from sekisho.store.oidc import SqlOidc

log = logging.getLogger("sekisho.oidc.backchannel")
BATCH = 16
LOGOUT_TOKEN_TYPE = "logout+jwt"  # noqa: S105 (§2.4 media type, not a secret)
LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_LIFETIME = timedelta(minutes=2)


def logout_token(
    *,
    issuer: str,
    client: Client,
    subject: str,
    session_id: str,
    jti: str,
    key: SigningKey,
    private: signing_keys.PrivateKey,
    now: datetime,
) -> str:
    """A signed logout token (§2.4) for one client and one ended session."""
    claims: dict[str, Any] = {
        "iss": issuer,
        "aud": client.id,
        "iat": int(now.timestamp()),
        "exp": int((now + LOGOUT_TOKEN_LIFETIME).timestamp()),
        "jti": jti,
        "sub": subject,
        "sid": session_id,
        "events": {LOGOUT_EVENT: {}},
    }
    header = {"alg": signing_keys.ALGORITHM, "kid": key.kid, "typ": LOGOUT_TOKEN_TYPE}
    return jwt.encode(header, claims, private)


def callable_uri(uri: str, *, development: bool) -> bool:
    """Whether the worker may call this URI: https, or http on a loopback address in
    development mode."""
    parts = urlsplit(uri)
    if parts.scheme == "https" and parts.hostname:
        return True
    return development and parts.scheme == "http" and is_loopback(parts.hostname)


@dataclass(frozen=True, slots=True)
class _Prepared:
    claimed: ClaimedLogout
    uri: str | None
    token: str | None
    why_not: str


class BackchannelWorker:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        keys: Keyring,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._database = database
        self._keys = keys
        self._clock = clock
        self._issuer = settings.public_origin
        self._queue = LogoutQueue(database)
        self._private_keys = signing_keys.PrivateKeys(keys)
        self._transport = transport
        self.wakeup = Wakeup()

    async def run(self) -> None:
        """Deliver until cancelled; a failing database or client never stops it. A
        commit in this process that queues a logout wakes it at once; the poll catches
        those of other processes and the retries (as the mail worker does)."""
        stop_listening = self.wakeup.listen(self._database, "logout")
        try:
            while True:
                try:
                    while await self.deliver_due():
                        pass
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("back-channel logout cycle failed; retrying")
                await self.wakeup.wait(self._settings.backchannel_poll_seconds)
        finally:
            stop_listening()

    async def deliver_due(self, limit: int = BATCH) -> int:
        """Claim up to ``limit`` due deliveries, post them, settle them; how many.

        Cancelled (the server stopping) at any point, it settles what it knows before it
        ends: what was posted as such, the rest given back unleased, so that no lease
        outlives a stopped server and the next instance posts them at once (a post cut
        short goes again: a relying party takes a ``jti`` once, OIDC Back-Channel
        Logout §2.6)."""
        prepared = await claim_off_the_loop(partial(self._prepare, limit), self._give_back)
        if not prepared:
            return 0
        settled: list[LogoutSettlement] = []
        retries: list[LogoutRetry] = []
        try:
            async with httpx.AsyncClient(
                timeout=self._settings.backchannel_timeout_seconds,
                follow_redirects=False,
                transport=self._transport,
            ) as http:
                for item in prepared:
                    if item.uri is None or item.token is None:
                        settled.append(
                            self._settlement(item.claimed, "dropped", item.why_not, None)
                        )
                        continue
                    error = await self._post(http, item.uri, item.token)
                    if error is None:
                        settled.append(
                            self._settlement(item.claimed, "delivered", "delivered", None)
                        )
                    elif item.claimed.attempts >= self._settings.backchannel_max_attempts:
                        settled.append(self._settlement(item.claimed, "failed", "gave_up", error))
                    else:
                        retries.append(self._retry(item.claimed, error))
        except asyncio.CancelledError:
            done = {settlement.delivery_id for settlement in settled}
            done |= {retry.delivery_id for retry in retries}
            unposted = [item.claimed.id for item in prepared if item.claimed.id not in done]
            await self._settle_stopping(settled, retries, unposted)
            raise
        await asyncio.to_thread(
            self._queue.finish, now=self._clock(), settled=settled, retries=retries
        )
        return len(prepared)

    async def _give_back(self, prepared: list[_Prepared]) -> None:
        """A batch claimed as the worker stops: given back unposted."""
        await self._settle_stopping([], [], [item.claimed.id for item in prepared])

    async def _settle_stopping(
        self, settled: list[LogoutSettlement], retries: list[LogoutRetry], released: list[int]
    ) -> None:
        """Settle a batch while the worker is being stopped. A failure (the database
        gone too) is logged, never raised, so that the stop goes on: the batch's leases
        then run out as they would after a crash."""
        try:
            await asyncio.to_thread(
                self._queue.finish,
                now=self._clock(),
                settled=settled,
                retries=retries,
                released=released,
            )
        except Exception:
            log.exception("could not settle a logout batch while stopping; its leases will run out")

    @staticmethod
    async def _post(http: httpx.AsyncClient, uri: str, token: str) -> str | None:
        """None when the relying party took the token (§2.8: 200, or 204 from some
        frameworks), else what went wrong."""
        try:
            answer = await http.post(
                uri,
                data={"logout_token": token},
                headers={"Cache-Control": "no-store"},
            )
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        if 200 <= answer.status_code < 300:
            return None
        return f"HTTP {answer.status_code}"

    def _prepare(self, limit: int) -> list[_Prepared]:
        """On a worker thread: claim a batch, then read the clients and the signing key
        and sign each token, in one read-only transaction."""
        claimed = self._queue.claim(self._clock(), limit=limit)
        if not claimed:
            return []
        now = self._clock()
        with self._database.reading() as repos:
            store = SqlOidc(repos.connection)
            key = signing_keys.signing_key(store.signing_keys(), now)
            found = {item.client_id: store.client(item.client_id) for item in claimed}
        if key is None:
            raise RuntimeError("no signing key: the provider was not started")
        private = self._private_keys.open(key)
        prepared = []
        for item in claimed:
            client = found[item.client_id]
            uri = client.backchannel_logout_uri if client else None
            if client is None or uri is None:
                prepared.append(_Prepared(item, None, None, "client_gone"))
            elif not callable_uri(uri, development=self._settings.development):
                prepared.append(_Prepared(item, None, None, "uri_not_allowed"))
            else:
                token = logout_token(
                    issuer=self._issuer,
                    client=client,
                    subject=subjects.subject(self._keys, client, item.user_id),
                    session_id=subjects.session_id(self._keys, client, item.session_id),
                    jti=item.jti,
                    key=key,
                    private=private,
                    now=now,
                )
                prepared.append(_Prepared(item, uri, token, ""))
        return prepared

    def _retry(self, claimed: ClaimedLogout, error: str) -> LogoutRetry:
        log.warning(
            "back-channel logout to client %s, attempt %d failed: %s",
            claimed.client_id,
            claimed.attempts,
            error,
        )
        delay = min(
            self._settings.backchannel_retry_base_seconds * 2 ** (claimed.attempts - 1),
            self._settings.backchannel_retry_max_seconds,
        )
        return LogoutRetry(claimed.id, self._clock() + timedelta(seconds=delay), error)

    def _settlement(
        self, claimed: ClaimedLogout, status: str, what: str, error: str | None
    ) -> LogoutSettlement:
        if status == "failed":
            log.error(
                "back-channel logout to client %s failed for good after %d attempts: %s",
                claimed.client_id,
                claimed.attempts,
                error,
            )
        return LogoutSettlement(
            delivery_id=claimed.id,
            status=status,
            error=error,
            audit=AuditEvent(
                event=f"oidc.backchannel_logout.{status}",
                outcome="failure" if status == "failed" else "success",
                at=self._clock(),
                user_id=claimed.user_id,
                session_id=claimed.session_id,
                detail={
                    "client_id": claimed.client_id,
                    "reason": what,
                    "session_ended": claimed.reason,
                    "attempts": claimed.attempts,
                    "jti": claimed.jti,
                },
            ),
        )
