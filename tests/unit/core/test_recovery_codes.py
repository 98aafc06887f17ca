"""Recovery codes: entropy, format, forgiving input, keyed hashes bound to the account."""

from __future__ import annotations

import re

from sekisho.core import recovery_codes
from sekisho.core.keys import Keyring

GROUPED = re.compile(r"^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$")


def test_a_set_is_ten_distinct_codes_of_at_least_64_bits() -> None:
    codes = recovery_codes.new_set()
    assert len(codes) == 10
    assert len(set(codes)) == 10
    assert all(GROUPED.match(code) for code in codes)
    assert all(recovery_codes.canonical(code) == recovery_codes.ungrouped(code) for code in codes)
    assert len(recovery_codes.ALPHABET) == 32
    assert recovery_codes.ENTROPY_BITS >= 64
    assert not set("ILOU").intersection(recovery_codes.ALPHABET)


def test_typed_codes_are_forgiven_case_separators_and_look_alikes() -> None:
    assert recovery_codes.canonical("k7qm-3xvd-9rta-hw2p") == "K7QM3XVD9RTAHW2P"
    assert recovery_codes.canonical(" K7QM 3XVD\t9RTA HW2P ") == "K7QM3XVD9RTAHW2P"
    assert recovery_codes.canonical("OIL0-0000-0000-0000") == "0110000000000000"
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "k7qm-3xvd-9rta-hw2p")
    assert recovery_codes.canonical(full_width) == "K7QM3XVD9RTAHW2P"


def test_what_cannot_be_a_code_is_refused() -> None:
    for typed in (
        "",
        "K7QM-3XVD-9RTA",
        "K7QM-3XVD-9RTA-HW2PX",
        "K7QM-3XVD-9RTA-HW2U",
        "K7QM-3XVD-9RTA-HW2\u00e9",
    ):
        assert recovery_codes.canonical(typed) is None


def test_digests_are_keyed_and_bound_to_the_account() -> None:
    keys = Keyring("a-test-secret-that-is-long-enough-0123456789")
    other = Keyring("another-test-secret-long-enough-0123456789")
    code = "K7QM3XVD9RTAHW2P"
    digest = recovery_codes.digest(keys, "user-1", code)
    assert code not in digest
    assert digest == recovery_codes.digest(keys, "user-1", code)
    assert digest != recovery_codes.digest(keys, "user-2", code)
    assert digest != recovery_codes.digest(other, "user-1", code)
    assert digest != keys.digest("signin-code", f"user-1:{code}")
