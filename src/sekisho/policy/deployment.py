"""The policy a deployment runs with: its ``policy_file``, checked against the rest of
its settings, or the built-in policy (today's behaviour) when none is set."""

from __future__ import annotations

from pathlib import Path

from sekisho.policy.parsing import PolicyError, load_policy, locate
from sekisho.policy.tiers import Policy, builtin_policy


def policy_for(policy_file: Path | None, *, attested_keys: bool) -> Policy:
    """Load ``policy_file`` (or the built-in policy) and refuse a tier that needs attested
    keys when the deployment registers none (``passkey_attestation`` is not ``direct``):
    no account in it could ever sign in."""
    if policy_file is None:
        return builtin_policy()
    policy = load_policy(policy_file)
    if not attested_keys:
        for tier in policy.tiers:
            if tier.attestation_required:
                text = policy_file.read_text(encoding="utf-8")
                raise PolicyError(
                    str(policy_file),
                    locate(text, ("tiers", tier.name, "attestation")),
                    f'tier {tier.name} requires attestation, but passkey_attestation is not "direct": '
                    "no passkey registered here is attested, so no account in it could sign in",
                )
    return policy
