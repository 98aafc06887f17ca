"""Every proof's Authentication Assurance Level in one place (NIST SP 800-63B-4 §2).

- Email proves control of an address, not possession of an authenticator: a link or a
  code is AAL1 and never more (§3.1.3.1, out-of-band to an address is not an
  authenticator above AAL1). A password alone is AAL1 (§2.1).
- A passkey that verified the user (PIN or biometric) is a multi-factor cryptographic
  authenticator bound to the origin: AAL2 and phishing-resistant (§2.2, §3.2.5).
  Presence only (UV=0) is single-factor: AAL1 (§3.1.7).
- AAL3 needs a non-exportable key (§2.3: "hardware-protected", not synced): the
  credential was registered device-bound (WebAuthn L3 §6.1.3 BE=0), its attestation
  chained to a configured trust root, and its AAGUID is on the deployment's allow-list.
  A synced passkey (BE=1) or an unattested key is never AAL3 (SECURITY.md case 55).

``amr`` values follow RFC 8176 §2: ``hwk`` (a device-bound key) or ``swk`` (a synced,
software-held key); ``pin`` and ``mfa`` when the authenticator verified the user (it
does not say whether by PIN or biometric), ``user`` for presence only; ``email`` and
``pwd`` for the email and password methods.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sekisho.core.records import Passkey

AAL1 = 1
AAL2 = 2
AAL3 = 3
LEVELS = (AAL1, AAL2, AAL3)
AMR_EMAIL = "email"
AMR_PASSWORD = "pwd"  # noqa: S105 (an RFC 8176 amr value)
AMR_HARDWARE_KEY = "hwk"
AMR_SOFTWARE_KEY = "swk"
#: A saved recovery code (a look-up secret, NIST SP 800-63B-4 §3.1.2). RFC 8176 has no
#: value of its own for it; ``otp`` is the nearest. Its sessions are restricted.
AMR_RECOVERY_CODE = "otp"


@dataclass(frozen=True, slots=True)
class Assurance:
    """What a proof is worth: its AAL, its RFC 8176 ``amr`` and whether it resists
    phishing (verifier-impersonation resistance, NIST SP 800-63B-4 §3.2.5)."""

    aal: int
    amr: tuple[str, ...]
    phishing_resistant: bool


EMAIL = Assurance(aal=AAL1, amr=(AMR_EMAIL,), phishing_resistant=False)
PASSWORD = Assurance(aal=AAL1, amr=(AMR_PASSWORD,), phishing_resistant=False)
RECOVERY_CODE = Assurance(aal=AAL1, amr=(AMR_RECOVERY_CODE,), phishing_resistant=False)


@dataclass(frozen=True, slots=True)
class Attestation:
    """The deployment's AAL3 conditions: the AAGUIDs it accepts as hardware keys (their
    attestation is checked against the trust roots when the key is registered)."""

    aaguid_allowlist: frozenset[str] = frozenset()

    def hardware_bound(self, passkey: Passkey) -> bool:
        """Device-bound, attested to a trust root at registration, and allow-listed."""
        return (
            not passkey.backup_eligible
            and passkey.attestation_trusted
            and passkey.aaguid in self.aaguid_allowlist
        )


def passkey_amr(*, backup_eligible: bool, user_verified: bool) -> tuple[str, ...]:
    """RFC 8176 values for a passkey assertion (see the module docstring)."""
    key = AMR_SOFTWARE_KEY if backup_eligible else AMR_HARDWARE_KEY
    return (key, "pin", "mfa") if user_verified else (key, "user")


def passkey_assurance(
    passkey: Passkey, *, user_verified: bool, backup_eligible: bool, attestation: Attestation
) -> Assurance:
    """The AAL of one assertion by ``passkey`` with the flags it carried."""
    amr = passkey_amr(backup_eligible=backup_eligible, user_verified=user_verified)
    if not user_verified:
        return Assurance(aal=AAL1, amr=amr, phishing_resistant=True)
    if not backup_eligible and attestation.hardware_bound(passkey):
        return Assurance(aal=AAL3, amr=amr, phishing_resistant=True)
    return Assurance(aal=AAL2, amr=amr, phishing_resistant=True)


def stored_passkey_aal(passkey: Passkey, attestation: Attestation) -> int:
    """The level an assertion by this registered passkey reaches when it verifies the
    user as it did at registration."""
    return passkey_assurance(
        passkey,
        user_verified=passkey.user_verified,
        backup_eligible=passkey.backup_eligible,
        attestation=attestation,
    ).aal


def highest_aal(passkeys: Sequence[Passkey], attestation: Attestation) -> int:
    """The strongest level the account can reach with what it has registered."""
    return max((stored_passkey_aal(p, attestation) for p in passkeys), default=AAL1)


def phishing_resistant(amr: Collection[str]) -> bool:
    """A session made by a passkey (either key kind) resists phishing."""
    return AMR_HARDWARE_KEY in amr or AMR_SOFTWARE_KEY in amr


def verified_passkey(amr: Collection[str], aal: int) -> bool:
    """A passkey that verified the user (AAL2 or more): what operators need (issue 10).
    Email, a password or a recovery code never is, whatever else the session holds."""
    return aal >= AAL2 and phishing_resistant(amr)


def method_of(amr: Collection[str]) -> str:
    """The sign-in method a proof's ``amr`` names: passkey, email, password or
    recovery_code."""
    if phishing_resistant(amr):
        return "passkey"
    if AMR_EMAIL in amr:
        return "email"
    if AMR_PASSWORD in amr:
        return "password"
    if AMR_RECOVERY_CODE in amr:
        return "recovery_code"
    return "other"
