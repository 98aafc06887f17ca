from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken

from sekisho.core.keys import Keyring


def test_digests_are_purpose_bound() -> None:
    keys = Keyring("s" * 40)
    assert keys.digest("signin-link", "value") != keys.digest("recovery", "value")
    assert keys.matches("signin-link", "value", keys.digest("signin-link", "value"))
    assert not keys.matches("step-up", "value", keys.digest("signin-link", "value"))


def test_digests_depend_on_the_secret() -> None:
    assert Keyring("a" * 40).digest("p", "v") != Keyring("b" * 40).digest("p", "v")


def test_sealed_payloads_round_trip_and_resist_other_keys() -> None:
    sealed = Keyring("a" * 40).seal(b"link and code")
    assert b"link" not in sealed.encode()
    assert Keyring("a" * 40).unseal(sealed) == b"link and code"
    with pytest.raises(InvalidToken):
        Keyring("b" * 40).unseal(sealed)
