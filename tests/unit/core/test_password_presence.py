from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sekisho.core.password_presence import PasswordPresence


class _Passwords:
    def __init__(self) -> None:
        self.held = False
        self.asked = 0

    def any_held(self) -> bool:
        self.asked += 1
        return self.held


class _Transactions:
    def __init__(self) -> None:
        self.passwords = _Passwords()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        yield self


def test_the_database_is_asked_at_most_once_per_ttl() -> None:
    transactions = _Transactions()
    now = [100.0]
    presence = PasswordPresence(transactions, ttl=30.0, monotonic=lambda: now[0])
    assert not presence.any_held()
    transactions.passwords.held = True
    now[0] = 129.0
    assert not presence.any_held()
    assert transactions.passwords.asked == 1
    now[0] = 130.0
    assert presence.any_held()
    assert transactions.passwords.asked == 2
