from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sekisho.core.password_presence import PasswordPresence


class _Passwords:
    def __init__(self) -> None:
        self.usable = False
        self.asked: list[str] = []

    def any_usable(self, default_mode: str) -> bool:
        self.asked.append(default_mode)
        return self.usable


class _Transactions:
    def __init__(self) -> None:
        self.passwords = _Passwords()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        yield self


def test_the_database_is_asked_at_most_once_per_ttl() -> None:
    transactions = _Transactions()
    now = [100.0]
    presence = PasswordPresence(
        transactions, default_mode="passwordless", ttl=30.0, monotonic=lambda: now[0]
    )
    assert not presence.any_usable()
    transactions.passwords.usable = True
    now[0] = 129.0
    assert not presence.any_usable()
    assert transactions.passwords.asked == ["passwordless"]
    now[0] = 130.0
    assert presence.any_usable()
    assert transactions.passwords.asked == ["passwordless"] * 2
