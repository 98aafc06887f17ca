"""The move off passwords: which accounts may still use one, and retiring it.

Modes (deployment-wide, or per account): ``hybrid`` keeps passwords working beside the
passwordless methods; ``phase_out`` deletes an account's password hash as soon as it
signs in by email or passkey or adds a passkey; ``passwordless`` allows no password
sign-in at all. An optional cut-off date ends password sign-in for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, User


@dataclass(frozen=True, slots=True)
class MigrationPolicy:
    mode: str
    cutoff: datetime | None

    def mode_for(self, user: User) -> str:
        return user.migration_mode or self.mode

    def password_allowed(self, user: User, now: datetime) -> bool:
        return self.before_cutoff(now) and self.mode_for(user) != "passwordless"

    def before_cutoff(self, now: datetime) -> bool:
        """Whether password sign-in has not yet ended for everyone."""
        return self.cutoff is None or now < self.cutoff

    def retire_if_phasing_out(
        self, repos: Repositories, user: User, *, because: str, client: ClientInfo, now: datetime
    ) -> bool:
        """In ``phase_out``, delete the account's password for good once it has another
        way in (``because``: an email sign-in, a passkey sign-in, a new passkey)."""
        if self.mode_for(user) != "phase_out" or not repos.passwords.delete(user.id):
            return False
        repos.users.retire_password(user.id, now=now)
        repos.audit.append(
            AuditEvent(
                event="password.retired",
                outcome="success",
                at=now,
                ip=client.ip,
                user_agent=client.user_agent,
                user_id=user.id,
                email=user.email,
                detail={"because": because},
            )
        )
        return True
