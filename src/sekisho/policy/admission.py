"""The weakest link, decided in one place (SECURITY.md cases 50, 51 and 54).

- A proof the account's tier does not allow never signs the account in, even if that
  method did before the tier changed (case 50).
- An account that moved into a stricter tier and holds no way in the tier allows yet
  gets, from a proof the tier still accepts as a bridge (one of its registered
  passkeys, or email when the tier lets email recover the account), a *restricted*
  session whose only use is enrolling a passkey the tier accepts.
- Where anyone may join by email (``self_signup``), email also leads to that restricted
  session for an account that holds no passkey at all, whatever its tier: the email
  proves the address, which is all such an account has ever had, and joining anew
  would prove no more. Once the account holds a passkey, email is refused again.
- Removing a passkey, or moving the account to another tier, must leave at least one
  way in: an allowed method, or that bridge (case 51).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from sekisho.core.records import Passkey
from sekisho.policy.assurance import AAL1, Attestation, stored_passkey_aal
from sekisho.policy.tiers import Tier

ENROL_PASSKEY = "enrol_passkey"


class Admission(Enum):
    FULL = "full"
    RESTRICTED = "restricted"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Standing:
    """What an account holds, as far as signing in goes."""

    passkeys: tuple[Passkey, ...]
    has_password: bool


def accepts_passkey(tier: Tier, passkey: Passkey, attestation: Attestation, *, aal: int) -> bool:
    """Whether the tier lets this passkey sign in at the level ``aal`` it just proved."""
    if "passkey" not in tier.methods or aal < tier.signin_aal:
        return False
    if passkey.backup_eligible and not tier.synced_passkeys:
        return False
    if tier.attestation_required and not (
        passkey.attestation_trusted and passkey.aaguid in attestation.aaguid_allowlist
    ):
        return False
    return not tier.aaguids or passkey.aaguid in tier.aaguids


def qualifying_passkeys(
    tier: Tier, passkeys: Sequence[Passkey], attestation: Attestation
) -> list[Passkey]:
    return [
        p
        for p in passkeys
        if accepts_passkey(tier, p, attestation, aal=stored_passkey_aal(p, attestation))
    ]


def ways_in(tier: Tier, standing: Standing, attestation: Attestation) -> list[str]:
    """The ways the account can sign in fully under ``tier`` ("passkey:NAME", "email",
    "password")."""
    ways = [f"passkey:{p.name}" for p in qualifying_passkeys(tier, standing.passkeys, attestation)]
    if tier.signin_aal <= AAL1 and "email" in tier.methods:
        ways.append("email")
    if tier.signin_aal <= AAL1 and "password" in tier.methods and standing.has_password:
        ways.append("password")
    return ways


def bridges(tier: Tier, standing: Standing, *, self_signup: bool = False) -> list[str]:
    """The proofs that lead to a restricted enrolment session when nothing else does."""
    found = []
    if standing.passkeys and "passkey" in tier.methods:
        found.append("passkey")
    if tier.email_recovery or (self_signup and "passkey" in tier.methods and not standing.passkeys):
        found.append("email")
    return found


def admit(
    tier: Tier,
    *,
    via: str,
    aal: int,
    passkey: Passkey | None,
    standing: Callable[[], Standing],
    attestation: Attestation,
    self_signup: bool = False,
) -> Admission:
    """Full, restricted or refused, for one proof by ``via`` at ``aal``. ``standing`` is
    read only when the proof is not allowed outright (the common sign-in costs no
    extra query)."""
    if via == "passkey" and passkey is not None:
        allowed = accepts_passkey(tier, passkey, attestation, aal=aal)
    else:
        allowed = via in tier.methods and aal >= tier.signin_aal
    if allowed:
        return Admission.FULL
    held = standing()
    if not ways_in(tier, held, attestation) and via in bridges(tier, held, self_signup=self_signup):
        return Admission.RESTRICTED
    return Admission.REFUSED


def lockout_reason(
    tier: Tier, standing: Standing, attestation: Attestation, *, self_signup: bool = False
) -> str | None:
    """Why the account would have no way in under ``tier``; None when it has one."""
    if ways_in(tier, standing, attestation) or bridges(tier, standing, self_signup=self_signup):
        return None
    needs = _needs(tier)
    held = (
        f"{len(standing.passkeys)} passkey(s), none of which the tier accepts"
        if standing.passkeys
        else "no passkey"
    )
    return (
        f"tier {tier.name} signs in only with {needs} and does not let email recover the "
        f"account, and the account has {held}: it could never sign in again. Register an "
        "accepted passkey first, or choose a tier that lets email recover the account."
    )


def _needs(tier: Tier) -> str:
    parts = []
    if "passkey" in tier.methods:
        kind = "device-bound " if not tier.synced_passkeys else ""
        attested = "attested " if tier.attestation_required else ""
        parts.append(f"{kind}{attested}passkeys at AAL{tier.signin_aal}")
    parts.extend(m for m in sorted(tier.methods) if m != "passkey")
    return " or ".join(parts)


def removal_reason(
    tier: Tier, standing: Standing, removing: Passkey, attestation: Attestation
) -> str | None:
    """Why removing ``removing`` would leave the account without a way in; else None."""
    after = Standing(
        passkeys=tuple(p for p in standing.passkeys if p.id != removing.id),
        has_password=standing.has_password,
    )
    if ways_in(tier, after, attestation):
        return None
    return f"it is the last way to sign in that tier {tier.name} allows"
