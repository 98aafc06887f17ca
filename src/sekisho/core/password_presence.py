"""Whether any account may still sign in with a password, for the sign-in page's
password link and the password page.

An account may when it holds a password and its migration mode (the account's own
override, else the deployment's) is not ``passwordless``: a fresh install, one whose
imported passwords have all been retired, or a passwordless deployment without
accounts kept on passwords by their override has nobody to offer password sign-in to.
The page asks on every load, so the answer is read from the database at most once per
``ttl`` seconds in each process: a password imported or retired, or an override set,
shows on the page within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sekisho.core.ports import Transactions

PASSWORD_PRESENCE_TTL_SECONDS = 30.0


class PasswordPresence:
    def __init__(
        self,
        transactions: Transactions,
        *,
        default_mode: str,
        ttl: float = PASSWORD_PRESENCE_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transactions = transactions
        self._default_mode = default_mode
        self._ttl = ttl
        self._monotonic = monotonic
        self._usable = False
        self._checked_at: float | None = None

    def any_usable(self) -> bool:
        now = self._monotonic()
        if self._checked_at is None or now - self._checked_at >= self._ttl:
            with self._transactions.transaction() as repos:
                self._usable = repos.passwords.any_usable(self._default_mode)
            self._checked_at = now
        return self._usable
