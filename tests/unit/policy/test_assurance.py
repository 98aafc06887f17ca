"""The AAL of every proof (NIST SP 800-63B-4; SECURITY.md case 55)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from sekisho.core.records import Passkey
from sekisho.policy.assurance import (
    EMAIL,
    PASSWORD,
    Attestation,
    highest_aal,
    method_of,
    passkey_assurance,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
YUBIKEY = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
ALLOWED = Attestation(frozenset({YUBIKEY}))


def passkey(
    *, synced: bool = False, attested: bool = True, aaguid: str = YUBIKEY, uv: bool = True
) -> Passkey:
    return Passkey(
        id="p",
        user_id="u",
        credential_id=b"c",
        public_key=b"k",
        sign_count=0,
        transports=(),
        aaguid=aaguid,
        backup_eligible=synced,
        backup_state=synced,
        user_verified=uv,
        attestation_format="packed" if attested else "none",
        name="P",
        created_at=NOW,
        attestation_trusted=attested,
    )


def test_email_and_password_are_aal1_and_phishable() -> None:
    assert (EMAIL.aal, EMAIL.amr, EMAIL.phishing_resistant) == (1, ("email",), False)
    assert (PASSWORD.aal, PASSWORD.amr, PASSWORD.phishing_resistant) == (1, ("pwd",), False)


def test_attested_device_bound_allow_listed_key_with_uv_is_aal3() -> None:
    key = passkey()
    found = passkey_assurance(key, user_verified=True, backup_eligible=False, attestation=ALLOWED)
    assert (found.aal, found.amr, found.phishing_resistant) == (3, ("hwk", "pin", "mfa"), True)


@pytest.mark.parametrize(
    ("key", "attestation"),
    [
        (passkey(synced=True), ALLOWED),
        (passkey(attested=False), ALLOWED),
        (passkey(aaguid="00000000-0000-0000-0000-000000000000"), ALLOWED),
        (passkey(), Attestation()),
    ],
    ids=["synced", "unattested", "aaguid-not-listed", "no-allow-list"],
)
def test_aal3_is_never_issued_without_every_condition(
    key: Passkey, attestation: Attestation
) -> None:
    found = passkey_assurance(
        key, user_verified=True, backup_eligible=key.backup_eligible, attestation=attestation
    )
    assert found.aal == 2
    assert found.phishing_resistant


def test_synced_passkey_amr_is_swk() -> None:
    key = passkey(synced=True)
    found = passkey_assurance(key, user_verified=True, backup_eligible=True, attestation=ALLOWED)
    assert found.amr == ("swk", "pin", "mfa")


def test_presence_only_is_aal1_even_for_a_hardware_key() -> None:
    found = passkey_assurance(
        passkey(), user_verified=False, backup_eligible=False, attestation=ALLOWED
    )
    assert (found.aal, found.amr) == (1, ("hwk", "user"))


def test_highest_aal_of_what_the_account_holds() -> None:
    assert highest_aal([], ALLOWED) == 1
    assert highest_aal([passkey(uv=False)], ALLOWED) == 1
    assert highest_aal([passkey(uv=False), passkey(synced=True)], ALLOWED) == 2
    assert highest_aal([passkey(synced=True), passkey()], ALLOWED) == 3
    assert highest_aal([replace(passkey(), attestation_trusted=False)], ALLOWED) == 2


def test_method_of_names_the_method() -> None:
    assert method_of(("hwk", "pin", "mfa")) == "passkey"
    assert method_of(("swk", "user")) == "passkey"
    assert method_of(("email",)) == "email"
    assert method_of(("pwd",)) == "password"
    assert method_of(()) == "other"
