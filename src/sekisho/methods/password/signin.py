"""The legacy password as a one-way bridge (SECURITY.md cases 23-26).

- Password sign-in exists only for accounts that still hold a hash, only while the
  deployment's (or the account's own) migration mode allows it, and never after the
  cut-off date. It proves AAL1 with amr ``pwd`` (NIST SP 800-63B-4: a password alone).
- An unknown address, an account without a password or a refused mode costs one
  argon2id verification of a dummy hash and gets the same answer as a wrong password
  (case 24); the web layer answers every attempt no sooner than one floor, so the
  different costs of the legacy formats do not show either (case 60, ``web/pacing``).
- A correct legacy hash is replaced by argon2id in the same transaction; a wrong
  password changes nothing but the failure count (case 23).
- Failures count per address under their own method key, with the same progressive
  delay as codes: a locked-out password never blocks the account's passkeys or email.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.migration import MigrationPolicy
from sekisho.core.policy import FailurePolicy
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Passkey, User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.password.hashes import (
    MAX_PASSWORD_BYTES,
    burn_time,
    hash_password,
    needs_rehash,
    verify_password,
)
from sekisho.policy.assurance import PASSWORD

FAILURE_METHOD = "password"


@dataclass(frozen=True, slots=True)
class PasswordProof:
    email: str
    flow_id: str = ""
    via: str = "password"
    amr: tuple[str, ...] = PASSWORD.amr
    aal: int = PASSWORD.aal
    passkey: Passkey | None = None


class PasswordSignIn:
    def __init__(
        self,
        *,
        failures: FailurePolicy,
        migration: MigrationPolicy,
        tier_allows: Callable[[User], bool] = lambda _user: True,
    ) -> None:
        """``tier_allows`` says whether the account's tier lets a password sign it in: an
        account whose tier forbids it is treated like one without a password (the same
        answer, time and failure count), so a right password is never revealed by the
        failure counter being reset (SECURITY.md case 50)."""
        self._failures = failures
        self.migration = migration
        self._tier_allows = tier_allows

    def verify(
        self, repos: Repositories, *, email: str, password: str, client: ClientInfo, now: datetime
    ) -> PasswordProof:
        if len(password.encode()) > MAX_PASSWORD_BYTES:
            raise SekishoError(ErrorCode.password_too_long)
        repos.locks.hold(f"email:{email}")
        previous = repos.failures.get(email, FAILURE_METHOD)
        if previous is not None:
            wait = self._failures.wait(previous.consecutive, previous.last_failure_at, now)
            if wait > 0:
                self._audit(repos, "failure", email, None, client, now, reason="account_delay")
                raise SekishoError(ErrorCode.rate_limited, retry_after=wait, persist=True)
        user = repos.users.by_email(email)
        stored = repos.passwords.get(user.id if user is not None else "")
        usable = (
            user is not None
            and stored is not None
            and user.status == "active"
            and self.migration.password_allowed(user, now)
        )
        if not usable or stored is None or user is None:
            burn_time(password)
            self._fail(repos, email, user, client, now, reason="not_available")
        elif not self._tier_allows(user):
            burn_time(password)
            self._fail(repos, email, user, client, now, reason="tier_forbids_method")
        elif not verify_password(stored.hash, password):
            self._fail(repos, email, user, client, now, reason="wrong_password")
        else:
            repos.failures.reset(email, FAILURE_METHOD)
            rehashed = needs_rehash(stored.hash)
            if rehashed:
                repos.passwords.put(
                    user.id, hash=hash_password(password), scheme="argon2id", now=now
                )
            self._audit(
                repos, "success", email, user, client, now, scheme=stored.scheme, rehashed=rehashed
            )
        return PasswordProof(email=email)

    def _fail(
        self,
        repos: Repositories,
        email: str,
        user: User | None,
        client: ClientInfo,
        now: datetime,
        *,
        reason: str,
    ) -> None:
        consecutive = repos.failures.record_failure(email, FAILURE_METHOD, now=now)
        self._audit(
            repos,
            "failure",
            email,
            user,
            client,
            now,
            reason=reason,
            consecutive_failures=consecutive,
        )
        raise SekishoError(ErrorCode.invalid_credentials, persist=True)

    @staticmethod
    def _audit(
        repos: Repositories,
        outcome: str,
        email: str,
        user: User | None,
        client: ClientInfo,
        now: datetime,
        **detail: object,
    ) -> None:
        repos.audit.append(
            AuditEvent(
                event="signin.password.verified"
                if outcome == "success"
                else "signin.password.failed",
                outcome=outcome,
                at=now,
                ip=client.ip,
                user_agent=client.user_agent,
                user_id=user.id if user else None,
                email=email,
                amr=PASSWORD.amr if outcome == "success" else (),
                aal=PASSWORD.aal if outcome == "success" else None,
                detail=dict(detail),
            )
        )
