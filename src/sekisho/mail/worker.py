"""The outbox worker: delivers queued mail off the request path, retrying with backoff.

It also decides *whether* a sign-in email goes out at all (the account exists, or
self sign-up is on; otherwise nothing, or a 'no account' notice when configured), and
*which* one: an account whose tier would refuse an email proof gets a message with no
link and no code that points to passkey sign-in (SECURITY.md case 50). Deciding here
keeps the request path the same for every address, known or not, whatever its tier
(case 10).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from cryptography.fernet import InvalidToken

from sekisho.core.completion import standing_of
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, FlowState, User
from sekisho.mail.compose import (
    Outgoing,
    email_change_message,
    email_taken_message,
    no_account_message,
    notice_message,
    passkey_only_message,
    signin_message,
)
from sekisho.mail.senders import Sender
from sekisho.policy.admission import Admission, admit
from sekisho.policy.assurance import EMAIL, Attestation, method_of
from sekisho.policy.deployment import policy_for
from sekisho.policy.tiers import Policy
from sekisho.settings import Settings
from sekisho.store.database import Database, Wakeup
from sekisho.store.email_changes import SqlEmailChanges
from sekisho.store.lease_queue import claim_off_the_loop
from sekisho.store.outbox_queue import ClaimedMessage, OutboxQueue, Retry, Settlement
from sekisho.store.repositories import SqlRepositories

log = logging.getLogger("sekisho.mail")
BATCH = 32  # messages claimed, decided and settled together
#: How long the SMTP connections are kept once the queue is empty.
KEEP_OPEN_SECONDS = 5.0
#: Writes out the message to send (after the deciding transaction, off the writer lock).
_Compose = Callable[[], Outgoing]
#: A claimed message, its payload, and the message to send (None: not sent), and why.
_Prepared = tuple[ClaimedMessage, dict[str, Any], Outgoing | None, str]
_Sendable = tuple[ClaimedMessage, dict[str, Any], Outgoing, str]
REQUIRED_FIELDS = {
    "signin": frozenset({"flow_id", "to", "locale", "link", "code", "requested_at"}),
    "notice": frozenset({"to", "locale", "notice", "params", "requested_at", "ip", "device"}),
    "email_change": frozenset(
        {
            "change_id",
            "to",
            "locale",
            "link",
            "code",
            "expires_minutes",
            "requested_at",
            "ip",
            "device",
        }
    ),
    "email_change_taken": frozenset({"to", "locale", "requested_at", "ip", "device"}),
}


@dataclass
class _Batch:
    """What became of a claimed batch so far; ``failed`` once a send has failed."""

    settled: list[Settlement]
    retries: list[Retry] = field(default_factory=list)
    released: list[int] = field(default_factory=list)
    failed: bool = False


class OutboxWorker:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        keys: Keyring,
        sender: Sender,
        clock: Callable[[], datetime],
        policy: Policy | None = None,
    ) -> None:
        """``policy`` is the deployment's tiers, as the completion step holds them;
        without it they are read from ``settings.policy_file``."""
        self._settings = settings
        self._policy = (
            policy
            if policy is not None
            else policy_for(
                settings.policy_file, attested_keys=settings.passkey_attestation == "direct"
            )
        )
        self._attestation = Attestation(frozenset(settings.passkey_aaguid_allowlist))
        self._database = database
        self._keys = keys
        self._sender = sender
        self._clock = clock
        self._queue = OutboxQueue(database)
        self._other_key: set[int] = set()
        self.wakeup = Wakeup()

    async def run(self) -> None:
        """Deliver until cancelled. A failing database or SMTP server never stops it.

        A commit in this process that queues mail wakes it at once (the event is set on
        this loop, from the committing thread); the poll is the safety net for mail
        queued by other processes and for retries. The wake-up is never lost: the event
        is cleared before the queue is read again, so a message committed after that
        read sets it anew. The SMTP connections are let go once no mail has come for
        ``KEEP_OPEN_SECONDS``, so a person signing in after another does not wait for a
        new connection.
        """
        stop_listening = self.wakeup.listen(self._database, "mail")
        poll = self._settings.mail_poll_seconds
        woken = False
        try:
            while True:
                try:
                    # Woken: mail was committed, so claim without looking first. After a
                    # batch that drained the queue, wait: a later commit wakes the worker.
                    look_first = not woken
                    while await self._deliver(BATCH, look_first=look_first):
                        look_first = False
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox worker cycle failed; retrying")
                woken = await self.wakeup.wait(min(KEEP_OPEN_SECONDS, poll))
                if woken:
                    continue
                await self._sender.idle()
                if poll > KEEP_OPEN_SECONDS:
                    woken = await self.wakeup.wait(poll - KEEP_OPEN_SECONDS)
        finally:
            stop_listening()
            await self._sender.idle()

    async def deliver_one(self) -> bool:
        """Claim and handle one due message; False when none is due."""
        return await self.deliver_due(limit=1) > 0

    async def deliver_due(self, limit: int = BATCH) -> int:
        """Claim up to ``limit`` due messages and handle them; how many were claimed.

        One transaction claims the batch, one read-only transaction decides for all of
        it (and composes and flattens its messages, off the event loop), the messages go
        out over the sender's kept connections, several at once, and one transaction
        settles the batch with its audit events. After a failed send the rest of the
        batch is given back unattempted, so a broken SMTP server costs one timeout per
        batch, not one per message, and no lease outlives its batch, even when the server
        stops in the middle of it.
        """
        claimed, _again = await self._handle(limit, look_first=True)
        return claimed

    async def _deliver(self, limit: int, *, look_first: bool) -> bool:
        """Handle one batch; whether the queue should be read again at once (the batch
        was full, or some of it was given back unattempted)."""
        return (await self._handle(limit, look_first=look_first))[1]

    async def _handle(self, limit: int, *, look_first: bool) -> tuple[int, bool]:
        """Claim, send and settle one batch. Cancelled (the server stopping) at any
        point, it settles what it knows before it ends: the messages sent as sent, the
        rest given back unleased, so that no lease outlives a stopped server and the next
        instance sends them at once. A send cut short may have reached the SMTP server;
        given back, it goes again: at least once, never held back for a lease's length."""
        claimed, prepared, settled = await claim_off_the_loop(
            partial(self._prepare, limit, look_first), self._give_back
        )
        if not claimed:
            return 0, False
        batch = _Batch(settled)
        sendable: list[_Sendable] = []
        for message, payload, email, reason in prepared:
            if email is None:
                batch.settled.append(
                    self._settlement(
                        message, payload, "dropped", reason, _undelivered(message, reason)
                    )
                )
            else:
                sendable.append((message, payload, email, reason))
        # The first message goes alone: a server that is down costs one attempt per
        # batch, not one per connection. The rest share the sender's connections.
        try:
            await self._send_in_lanes(batch, iter(sendable[:1]), lanes=1)
            await self._send_in_lanes(batch, iter(sendable[1:]), lanes=self._sender.connections)
        except asyncio.CancelledError:
            done = {settlement.message_id for settlement in batch.settled}
            done |= {retry.message_id for retry in batch.retries} | set(batch.released)
            batch.released.extend(message.id for message, *_ in sendable if message.id not in done)
            await self._settle_stopping(batch)
            raise
        await self._settle(batch)
        return claimed, claimed >= limit or bool(batch.released)

    async def _give_back(self, prepared: tuple[int, list[_Prepared], list[Settlement]]) -> None:
        """A batch claimed as the worker stops: the malformed settled, the rest given
        back unsent."""
        _claimed, readable, settled = prepared
        unsent = [message.id for message, *_ in readable]
        await self._settle_stopping(_Batch(settled, released=unsent))

    async def _settle_stopping(self, batch: _Batch) -> None:
        """Settle a batch while the worker is being stopped. A failure (the database
        gone too) is logged, never raised, so that the stop goes on: the batch's leases
        then run out as they would after a crash."""
        try:
            await self._settle(batch)
        except Exception:
            log.exception("could not settle a mail batch while stopping; its leases will run out")

    async def _settle(self, batch: _Batch) -> None:
        """One transaction: the batch's settlements with their audit events, its retries
        and the messages given back."""
        await asyncio.to_thread(
            self._queue.finish,
            now=self._clock(),
            settled=sorted(batch.settled, key=lambda settlement: settlement.message_id),
            retries=batch.retries,
            released=batch.released,
        )

    async def _send_in_lanes(
        self,
        batch: _Batch,
        messages: Iterator[_Sendable],
        *,
        lanes: int,
    ) -> None:
        """Send ``messages`` over at most ``lanes`` conversations at once, each lane taking
        the next message when its last one is done. After a failed send, the messages
        not yet started are given back unattempted."""

        async def lane() -> None:
            for message, payload, email, reason in messages:
                if batch.failed:
                    batch.released.append(message.id)
                    continue
                try:
                    await self._sender.send(email)
                except Exception as error:
                    batch.failed = True
                    failure = self._failed_attempt(message, payload, error)
                    if isinstance(failure, Retry):
                        batch.retries.append(failure)
                    else:
                        batch.settled.append(failure)
                else:
                    batch.settled.append(self._settlement(message, payload, "sent", reason, None))

        await asyncio.gather(*(lane() for _ in range(lanes)))

    def _prepare(
        self, limit: int, look_first: bool
    ) -> tuple[int, list[_Prepared], list[Settlement]]:
        """On a worker thread, in one go: claim a batch and, in the claiming transaction,
        unseal and check each payload and decide for the readable ones (one hop to the
        thread pool, one transaction); then write out the messages to send, after the
        commit. ``look_first``: see :meth:`OutboxQueue.claim`. Returns how many were
        claimed, the readable messages with their decision, and the malformed ones
        settled as failed."""
        other_key: list[ClaimedMessage] = []
        settled: list[Settlement] = []
        decided: list[tuple[ClaimedMessage, dict[str, Any], _Compose | None, str]] = []

        def decide(repos: SqlRepositories, claimed: list[ClaimedMessage]) -> None:
            for message in claimed:
                try:
                    sealed = self._keys.unseal(message.sealed_payload)
                except InvalidToken:
                    other_key.append(message)
                    continue
                try:
                    payload: dict[str, Any] = json.loads(sealed)
                    if not payload.keys() >= REQUIRED_FIELDS.get(message.kind, {""}):
                        raise ValueError("payload lacks required fields")
                except (ValueError, AttributeError):
                    log.error("outbox message %d is malformed", message.id)
                    settled.append(
                        self._settlement(message, {}, "failed", "malformed", "malformed")
                    )
                    continue
                decided.append((message, payload, *self._decide_one(repos, message, payload)))

        claimed = self._queue.claim(
            self._clock(),
            skip=tuple(self._other_key),
            limit=limit,
            look_first=look_first,
            then=decide,
        )
        for message in other_key:
            self._leave_for_another_key(message)
        prepared = [
            (message, payload, None if compose is None else compose(), reason)
            for message, payload, compose, reason in decided
        ]
        return len(claimed), prepared, settled

    def _decide_one(
        self, repos: SqlRepositories, message: ClaimedMessage, payload: dict[str, Any]
    ) -> tuple[_Compose | None, str]:
        """The message to send (to be written out), or None and why not."""
        if message.kind == "notice":
            return self._decide_notice(repos, payload)
        if message.kind in ("email_change", "email_change_taken"):
            return self._decide_email_change(repos, message.kind, payload)
        return self._decide(repos, payload)

    def _decide(self, repos: Repositories, payload: dict[str, Any]) -> tuple[_Compose | None, str]:
        """The message to send, or None and why not. A sign-in email whose flow has
        ended (expired, superseded, completed) is not sent: its link and code are dead."""
        user = repos.users.by_email(payload["to"])
        flow = repos.flows.get(payload["flow_id"])
        if flow is None or flow.effective_state(self._clock()) != FlowState.PENDING:
            return None, "flow_ended"
        if user is not None and user.status != "active":
            return None, "account_disabled"
        if user is not None and self._email_refused(repos, user):
            notice = partial(
                passkey_only_message,
                self._settings.mail_from,
                payload,
                user.locale or payload["locale"],
                self._settings.public_origin,
            )
            return notice, "passkey_only_notice"
        if user is not None or self._settings.self_signup:
            return partial(signin_message, self._settings.mail_from, payload), "delivered"
        if self._settings.notify_unknown_address:
            notice = partial(
                no_account_message, self._settings.mail_from, payload, self._settings.public_origin
            )
            return notice, "no_account_notice"
        return None, "no_account"

    def _email_refused(self, repos: Repositories, user: User) -> bool:
        """Whether the completion step would refuse this account an email proof: the
        same :func:`~sekisho.policy.admission.admit` question it asks (case 50). A tier
        that lets email recover the account still gets the link and code, which lead
        to a session restricted to enrolling a passkey."""
        admission = admit(
            self._policy.tier_for(user),
            via=method_of(EMAIL.amr),
            aal=EMAIL.aal,
            passkey=None,
            standing=lambda: standing_of(repos, user),
            attestation=self._attestation,
            self_signup=self._settings.self_signup,
        )
        return admission is Admission.REFUSED

    def _decide_notice(
        self, repos: Repositories, payload: dict[str, Any]
    ) -> tuple[_Compose | None, str]:
        """A security notice goes to the account's address while the account exists."""
        user_id = payload.get("user_id")
        user = (
            repos.users.by_id(user_id)
            if isinstance(user_id, str)
            else repos.users.by_email(payload["to"])
        )
        if user is None:
            return None, "no_account"
        return partial(
            notice_message, self._settings.mail_from, payload, self._settings.public_origin
        ), "notice"

    def _decide_email_change(
        self, repos: SqlRepositories, kind: str, payload: dict[str, Any]
    ) -> tuple[_Compose | None, str]:
        """The confirmation of a new address, or the notice that it already has an
        account (``email_change_service``); both go to the new address. A confirmation
        whose change has ended (superseded, used, expired) is not sent: it is dead."""
        if kind == "email_change_taken":
            return partial(
                email_taken_message, self._settings.mail_from, payload, self._settings.public_origin
            ), "address_taken_notice"
        change_id = payload.get("change_id")
        if not isinstance(change_id, str) or not SqlEmailChanges(repos.connection).is_pending(
            change_id, now=self._clock()
        ):
            return None, "change_ended"
        return partial(email_change_message, self._settings.mail_from, payload), "delivered"

    def _leave_for_another_key(self, claimed: ClaimedMessage) -> None:
        """A message this process cannot decrypt was sealed under another secret key:
        give it back uncounted for a process that has that key, never fail it
        (SECURITY.md case 56), and skip it from now on. Logged and audited once."""
        self._queue.release(claimed.id)
        self._other_key.add(claimed.id)
        log.error(
            "outbox message %d is sealed under another secret key; left for a process "
            "with that key (is SEKISHO_SECRET_KEY the same everywhere?)",
            claimed.id,
        )
        with self._database.transaction() as repos:
            repos.audit.append(
                AuditEvent(
                    event="mail.skipped",
                    outcome="failure",
                    at=self._clock(),
                    detail={"kind": claimed.kind, "reason": "other_key"},
                )
            )

    def _failed_attempt(
        self, claimed: ClaimedMessage, payload: dict[str, Any], error: Exception
    ) -> Retry | Settlement:
        """A failed send: tried again later with backoff, or failed for good after
        ``mail_max_attempts``."""
        reason = f"{type(error).__name__}: {error}"
        log.warning("mail delivery attempt %d failed: %s", claimed.attempts, reason)
        if claimed.attempts >= self._settings.mail_max_attempts:
            return self._settlement(claimed, payload, "failed", "gave_up", reason)
        delay = min(
            self._settings.mail_retry_base_seconds * 2 ** (claimed.attempts - 1),
            self._settings.mail_retry_max_seconds,
        )
        return Retry(claimed.id, self._clock() + timedelta(seconds=delay), reason)

    def _settlement(
        self,
        claimed: ClaimedMessage,
        payload: dict[str, Any],
        status: str,
        what: str,
        error: str | None,
    ) -> Settlement:
        return Settlement(
            message_id=claimed.id,
            status=status,
            error=error,
            audit=AuditEvent(
                event=f"mail.{status}",
                outcome="failure" if status == "failed" else "success",
                at=self._clock(),
                email=payload.get("to"),
                detail={"kind": claimed.kind, "reason": what, "attempts": claimed.attempts},
            ),
        )


def _undelivered(claimed: ClaimedMessage, reason: str) -> str | None:
    """A message dropped after failed attempts (typically: SMTP was down for longer than
    the link's lifetime) was never delivered. That is logged as a warning and kept in
    the message's ``last_error``, besides its ``mail.dropped`` audit event, so that it is
    never lost silently; the waiting page has told the person (``store/mail_health.py``)."""
    if claimed.attempts <= 1:
        return None
    log.warning(
        "outbox message %d dropped undelivered after %d failed attempts (%s)",
        claimed.id,
        claimed.attempts - 1,
        reason,
    )
    return f"undelivered: dropped ({reason}) after {claimed.attempts - 1} failed attempts"
