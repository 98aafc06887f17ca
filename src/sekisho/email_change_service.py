"""Changing an account's email address (SECURITY.md case 31; NIST SP 800-63B-4 §4.6).

Invariants:
- Asking needs a full (unrestricted) session with a fresh proof at the account's highest
  reachable AAL: the same rule as making new recovery codes
  (:meth:`RecoveryRules.may_regenerate`: a sign-in within
  ``recovery_codes_reauthentication_window`` by the account's strongest kind of passkey,
  so an account holding an attested AAL3 key refuses a synced passkey's AAL2 session
  with ``reauthentication_required``, as adding a passkey does; else a fresh email
  sign-in), and no recovery hold.
- The answer is the same whether or not the new address belongs to another account.
  A free address gets a one-time link and 6-digit code (keyed hashes stored, single use,
  ``email_link_ttl``); an address that is taken gets, instead, a message telling its
  owner that it already has an account here, with no link. Either way nothing else
  changes until the link or code is spent.
- Spending it changes the address in one transaction that also ends every other session
  of the account (the asking one stays: it proved the account, and the link proved the
  new mailbox), audits ``email.changed`` and queues a notice to the *old* address.
- A new request ends the earlier pending one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy.exc import IntegrityError

from sekisho.core import onetime
from sekisho.core.addresses import InvalidAddress, normalize_email
from sekisho.core.clients import ClientInfo
from sekisho.core.keys import Keyring
from sekisho.core.notices import EMAIL_CHANGED, queue_notice
from sekisho.core.records import AuditEvent, Session, User
from sekisho.core.recovery import RecoveryRules, is_recovery
from sekisho.core.sessions import session_event
from sekisho.errors import ErrorCode, SekishoError
from sekisho.ratelimits import RateLimits
from sekisho.store.database import Database
from sekisho.store.email_changes import PendingChange, SqlEmailChanges
from sekisho.store.repositories import SqlRepositories

#: Where the link in the confirmation email leads (``web/email_change_pages.py``).
CONFIRM_PATH = "/account/email/confirm"
_LINK = "email-change-link"
_CODE = "email-change-code"
MAIL_CONFIRM = "email_change"
MAIL_TAKEN = "email_change_taken"


class EmailChangeService:
    def __init__(
        self,
        *,
        database: Database,
        keys: Keyring,
        limits: RateLimits,
        rules: RecoveryRules,
        public_origin: str,
        lifetime: timedelta,
        code_attempts: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._database = database
        self._keys = keys
        self._limits = limits
        self._rules = rules
        self._public_origin = public_origin
        self._lifetime = lifetime
        self._code_attempts = code_attempts
        self._clock = clock

    def request(self, session: Session, *, raw_email: str, client: ClientInfo) -> None:
        """Send the confirmation (or, for an address that is taken, the notice that it
        is) to the new address; the same outcome to the caller either way."""
        try:
            address = normalize_email(raw_email)
        except InvalidAddress as error:
            raise SekishoError(ErrorCode.invalid_email) from error
        self._limits.hit(self._limits.email_changes_per_account, session.user_id)
        self._limits.hit(self._limits.sends_per_ip, client.ip)
        self._limits.hit(self._limits.sends_global)
        with self._database.transaction() as repos:
            now = self._clock()
            user = self._allowed(repos, session, now)
            if address == user.email:
                raise SekishoError(ErrorCode.email_unchanged)
            changes = SqlEmailChanges(repos.connection)
            taken = repos.users.by_email(address) is not None
            payload: dict[str, object] = {
                "to": address,
                "locale": client.locale,
                "requested_at": now.isoformat(),
                "ip": client.ip,
                "device": client.describe(client.locale),
            }
            if taken:
                changes.cancel(user.id, now=now)
                kind = MAIL_TAKEN
            else:
                change_id = onetime.new_flow_id()
                token = onetime.new_link_token()
                code = onetime.new_code()
                changes.start(
                    change_id=change_id,
                    user_id=user.id,
                    session_id=session.id,
                    new_email=address,
                    token_digest=self._keys.digest(_LINK, token),
                    code_digest=self._keys.digest(_CODE, onetime.code_material(change_id, code)),
                    locale=client.locale,
                    now=now,
                    expires_at=now + self._lifetime,
                )
                payload |= {
                    "change_id": change_id,
                    "link": f"{self._public_origin}{CONFIRM_PATH}?{urlencode({'token': token})}",
                    "code": code,
                    "expires_minutes": int(self._lifetime.total_seconds() // 60),
                }
                kind = MAIL_CONFIRM
            repos.outbox.enqueue(
                kind=kind,
                sealed_payload=self._keys.seal(json.dumps(payload).encode()),
                now=now,
            )
            repos.audit.append(
                session_event(
                    "email.change_requested",
                    session,
                    client,
                    now,
                    detail={"taken": taken},
                )
            )

    def confirm_link(self, *, token: str, client: ClientInfo) -> str:
        """Spend the emailed link (a POST from its page): the new address, now the
        account's. Works in any browser, signed in or not: the link proves the mailbox,
        and the request was made by a freshly proven session."""
        self._limits.hit_verification(client.ip)
        with self._database.transaction() as repos:
            now = self._clock()
            change = SqlEmailChanges(repos.connection).use_by_token(
                self._keys.digest(_LINK, token), now=now
            )
            if change is None:
                raise SekishoError(ErrorCode.email_change_invalid)
            return self._apply(repos, change, client, now, session=None)

    def confirm_code(self, session: Session, *, code: str, client: ClientInfo) -> str:
        """Spend the emailed code from the account page of the account that asked."""
        code = code.strip(" \t")
        if not onetime.is_code_shaped(code):
            raise SekishoError(ErrorCode.invalid_code_format)
        self._limits.hit_verification(client.ip)
        with self._database.transaction() as repos:
            now = self._clock()
            self._allowed(repos, session, now, fresh=False)
            changes = SqlEmailChanges(repos.connection)
            change = changes.take_code_attempt(session.user_id, limit=self._code_attempts, now=now)
            if change is None:
                raise SekishoError(ErrorCode.email_change_invalid)
            material = onetime.code_material(change.id, code)
            if not self._keys.matches(_CODE, material, change.code_digest):
                repos.audit.append(
                    session_event(
                        "email.change_code_failed", session, client, now, outcome="failure"
                    )
                )
                raise SekishoError(ErrorCode.code_incorrect, persist=True)
            if not changes.use_by_id(change.id, now=now):
                raise SekishoError(ErrorCode.email_change_invalid)
            return self._apply(repos, change, client, now, session=session)

    def _allowed(
        self, repos: SqlRepositories, session: Session, now: datetime, *, fresh: bool = True
    ) -> User:
        """The session's user, if it may change the address now (see the module's rules)."""
        user = repos.users.by_id(session.user_id)
        if user is None or user.status != "active":
            raise SekishoError(ErrorCode.not_authenticated)
        if is_recovery(session):
            raise SekishoError(ErrorCode.session_restricted)
        if session.restriction is not None:
            raise SekishoError(ErrorCode.restricted_session)
        self._rules.ensure_no_hold(repos, user.id, now=now)
        passkeys = repos.passkeys.for_user(user.id)
        if fresh and not self._rules.may_regenerate(session, passkeys, None, now):
            raise SekishoError(ErrorCode.reauthentication_required)
        return user

    def _apply(
        self,
        repos: SqlRepositories,
        change: PendingChange,
        client: ClientInfo,
        now: datetime,
        *,
        session: Session | None,
    ) -> str:
        """Change the address, end the other sessions, audit and notify the old address,
        all in the caller's transaction."""
        user = repos.users.by_id(change.user_id)
        if user is None or user.status != "active":
            raise SekishoError(ErrorCode.email_change_invalid)
        self._rules.ensure_no_hold(repos, user.id, now=now)
        if repos.users.by_email(change.new_email) is not None:
            raise SekishoError(ErrorCode.email_change_unavailable)
        try:
            changed = SqlEmailChanges(repos.connection).set_address(
                user.id, old=user.email, new=change.new_email, now=now
            )
        except IntegrityError as error:
            raise SekishoError(ErrorCode.email_change_unavailable) from error
        if not changed:
            raise SekishoError(ErrorCode.email_change_invalid)
        ended = repos.sessions.revoke_others(user.id, keep=change.session_id, now=now)
        repos.audit.append(
            AuditEvent(
                event="email.changed",
                outcome="success",
                at=now,
                ip=client.ip,
                user_agent=client.user_agent,
                user_id=user.id,
                email=change.new_email,
                session_id=session.id if session is not None else None,
                detail={
                    "old_email": user.email,
                    "new_email": change.new_email,
                    "sessions_ended": ended,
                    "via": "code" if session is not None else "link",
                },
            )
        )
        queue_notice(
            repos,
            self._keys,
            user=user,
            notice=EMAIL_CHANGED,
            locale=change.locale,
            client=client,
            now=now,
            new_email=change.new_email,
        )
        return change.new_email
