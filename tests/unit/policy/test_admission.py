"""The weakest link (SECURITY.md cases 50, 51, 54): what a tier admits, when a session is
restricted to enrolment, and which changes would lock an account out."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sekisho.core.records import Passkey
from sekisho.policy.admission import (
    Admission,
    Standing,
    admit,
    lockout_reason,
    removal_reason,
    ways_in,
)
from sekisho.policy.assurance import Attestation
from sekisho.policy.parsing import load_policy
from sekisho.policy.tiers import Tier
from tests.unit.policy.test_assurance import YUBIKEY, passkey

POLICY = load_policy(Path(__file__).resolve().parents[3] / "examples" / "policy.toml")
ALLOWED = Attestation(frozenset({YUBIKEY}))


def tier(name: str) -> Tier:
    found = POLICY.tier(name)
    assert found is not None
    return found


def standing(*passkeys: Passkey, password: bool = False) -> Standing:
    return Standing(passkeys=passkeys, has_password=password)


def test_standard_admits_every_method() -> None:
    held = standing(password=True)
    for via in ("email", "password"):
        found = admit(
            tier("standard"),
            via=via,
            aal=1,
            passkey=None,
            standing=lambda: held,
            attestation=ALLOWED,
        )
        assert found is Admission.FULL
    assert ways_in(tier("standard"), held, ALLOWED) == ["email", "password"]


def test_high_value_refuses_email_and_password_even_with_a_passkey() -> None:
    held = standing(passkey(synced=True), password=True)
    for via in ("email", "password"):
        found = admit(
            tier("high_value"),
            via=via,
            aal=1,
            passkey=None,
            standing=lambda: held,
            attestation=ALLOWED,
        )
        assert found is Admission.REFUSED
    key = held.passkeys[0]
    assert (
        admit(
            tier("high_value"),
            via="passkey",
            aal=2,
            passkey=key,
            standing=lambda: held,
            attestation=ALLOWED,
        )
        is Admission.FULL
    )
    assert (
        admit(
            tier("high_value"),
            via="passkey",
            aal=1,
            passkey=key,
            standing=lambda: held,
            attestation=ALLOWED,
        )
        is Admission.REFUSED
    ), "presence only is AAL1: below the tier, and the account has an allowed way in"


def test_corporate_refuses_a_synced_passkey_but_admits_it_to_enrol() -> None:
    synced = passkey(synced=True)
    held = standing(synced)
    assert ways_in(tier("corporate"), held, ALLOWED) == []
    found = admit(
        tier("corporate"),
        via="passkey",
        aal=2,
        passkey=synced,
        standing=lambda: held,
        attestation=ALLOWED,
    )
    assert found is Admission.RESTRICTED
    assert lockout_reason(tier("corporate"), held, ALLOWED) is None
    hardware = passkey()
    both = standing(synced, hardware)
    assert ways_in(tier("corporate"), both, ALLOWED) == ["passkey:P"]
    found = admit(
        tier("corporate"),
        via="passkey",
        aal=2,
        passkey=synced,
        standing=lambda: both,
        attestation=ALLOWED,
    )
    assert found is Admission.REFUSED
    found = admit(
        tier("corporate"),
        via="passkey",
        aal=3,
        passkey=hardware,
        standing=lambda: both,
        attestation=ALLOWED,
    )
    assert found is Admission.FULL


def test_email_only_account_cannot_move_into_high_value() -> None:
    reason = lockout_reason(tier("high_value"), standing(password=True), ALLOWED)
    assert reason is not None
    assert "does not let email recover the account" in reason
    assert "no passkey" in reason


def test_email_recovery_tier_restricts_an_email_sign_in_until_a_passkey_exists() -> None:
    passkey_only = replace(tier("high_value"), email_recovery=True)
    assert lockout_reason(passkey_only, standing(), ALLOWED) is None
    found = admit(
        passkey_only, via="email", aal=1, passkey=None, standing=standing, attestation=ALLOWED
    )
    assert found is Admission.RESTRICTED
    found = admit(
        passkey_only,
        via="email",
        aal=1,
        passkey=None,
        standing=lambda: standing(passkey()),
        attestation=ALLOWED,
    )
    assert found is Admission.REFUSED


def test_the_last_allowed_passkey_cannot_be_removed() -> None:
    first, second = passkey(), replace(passkey(), id="q")
    assert removal_reason(tier("high_value"), standing(first), first, ALLOWED) is not None
    assert removal_reason(tier("high_value"), standing(first, second), first, ALLOWED) is None
    assert removal_reason(tier("standard"), standing(first), first, ALLOWED) is None
