"""The fingerprint of what admission reads (:mod:`sekisho.policy.admission`): each tier's
sign-in rules, the rules that derive tiers, the default tier, and the deployment's AAL3
allow-list. Descriptions, timeouts and step-up actions are left out: editing them admits
and refuses the same sessions, so it needs no sweep.

Invariant: two processes with equivalent policies compute the same fingerprint, whatever
the order of sets in memory (everything is sorted before it is hashed).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sekisho.policy.assurance import Attestation
from sekisho.policy.tiers import Policy, Tier


def fingerprint(policy: Policy, attestation: Attestation) -> str:
    """SHA-256 (hex) of the canonical JSON of what admission reads."""
    canonical = {
        "default_tier": policy.default_tier,
        "tiers": sorted((_tier(tier) for tier in policy.tiers), key=lambda t: str(t["name"])),
        "rules": [[r.attribute, r.operator, r.value, r.tier] for r in policy.rules],
        "aaguid_allowlist": sorted(attestation.aaguid_allowlist),
    }
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


def _tier(tier: Tier) -> dict[str, Any]:
    return {
        "name": tier.name,
        "methods": sorted(tier.methods),
        "signin_aal": tier.signin_aal,
        "email_recovery": tier.email_recovery,
        "synced_passkeys": tier.synced_passkeys,
        "attestation_required": tier.attestation_required,
        "aaguids": sorted(tier.aaguids),
    }
