"""The relying party's fixed facts and policies, read once from the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from webauthn.helpers.cose import COSEAlgorithmIdentifier

SUPPORTED_ALGORITHMS = (
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
)
MAX_CREDENTIAL_ID_BYTES = 1023  # WebAuthn L3 §7.1 step 25


@dataclass(frozen=True, slots=True)
class RelyingParty:
    rp_id: str
    name: str
    origins: tuple[str, ...]
    user_verification: Literal["required", "preferred"]
    attestation: Literal["none", "direct"]
    trust_roots: tuple[bytes, ...]
    aaguid_allowlist: frozenset[str]
    sign_count_policy: Literal["reject", "audit"]
    challenge_ttl: timedelta

    @property
    def requires_user_verification(self) -> bool:
        return self.user_verification == "required"
