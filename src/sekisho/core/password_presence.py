"""Whether any account still holds a password, for the sign-in page's password link.

A fresh install, or one whose imported passwords have all been retired, has nobody to
offer password sign-in to. The page asks on every load, so the answer is read from the
database at most once per ``ttl`` seconds in each process: a password imported or
retired shows on the page within that time.
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
        ttl: float = PASSWORD_PRESENCE_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transactions = transactions
        self._ttl = ttl
        self._monotonic = monotonic
        self._held = False
        self._checked_at: float | None = None

    def any_held(self) -> bool:
        now = self._monotonic()
        if self._checked_at is None or now - self._checked_at >= self._ttl:
            with self._transactions.transaction() as repos:
                self._held = repos.passwords.any_held()
            self._checked_at = now
        return self._held
