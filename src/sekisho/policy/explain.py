"""A tiers file in plain words, for ``sekisho policy check`` and operators."""

from __future__ import annotations

from datetime import timedelta

from sekisho.policy.actions import Action, DetailField
from sekisho.policy.tiers import Policy, Tier

_METHOD_WORDS = {"passkey": "a passkey", "email": "an email link or code", "password": "a password"}


def explain(policy: Policy) -> list[str]:
    lines = [f"Policy from {policy.source}: {len(policy.tiers)} tier(s)."]
    for tier in policy.tiers:
        lines.extend(explain_tier(tier, default=tier.name == policy.default_tier))
    if policy.rules:
        lines.append(
            "Rules, first match wins (a tier set with `sekisho users set-tier` wins over them):"
        )
        lines.extend(f"  - when {rule} -> {rule.tier}" for rule in policy.rules)
    else:
        lines.append("No rules: accounts are in the default tier unless an operator sets one.")
    lines.extend(explain_actions(policy))
    return lines


def explain_self_signup(policy: Policy) -> str:
    """What joining by email (``self_signup``) gives a newcomer: an account with no
    attributes yet, so in the tier the rules give no attributes."""
    tier = policy.derived({})
    where = f"self_signup is on and newcomers land in tier {tier.name}"
    if tier.email_signin and tier.signin_aal <= 1:
        return f"{where}, which lets email sign in: a newcomer's email signs the account in."
    if "passkey" not in tier.methods:
        return (
            f"{where}, which signs in neither by email nor by passkey: a newcomer's "
            "account could never sign in. Choose another default tier."
        )
    return (
        f"{where}, which does not let email sign in: a newcomer's email proves the "
        "address and leads to a session that can only enrol a passkey; once the account "
        "holds one, email never signs it in again."
    )


_FIELD_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "currency": "an ISO 4217 currency code",
}


def explain_actions(policy: Policy) -> list[str]:
    if not policy.actions:
        return ["No actions: applications cannot ask for transaction confirmations."]
    lines = [
        "Actions applications may ask a person to confirm on Sekisho's page, each time "
        "with a passkey that verifies the user (the details are bound into its challenge):"
    ]
    for action in policy.actions:
        lines.append(f"  - {action.name} ({action.title['en']} / {action.title['ja']}), details:")
        lines.extend(f"      {_field_words(field)}" for field in action.fields)
        lines.append(f"      {_demands(policy, action)}")
    return lines


def _field_words(field: DetailField) -> str:
    kind = (
        f"a decimal amount in the currency of {field.currency}"
        if field.type == "amount"
        else _FIELD_WORDS[field.type]
    )
    return f"{field.name}: {kind} (shown as {field.label['en']!r} / {field.label['ja']!r})"


def _demands(policy: Policy, action: Action) -> str:
    parts = []
    for tier in policy.tiers:
        step = tier.step_up_for(action.name)
        if step is None:
            parts.append(f"{tier.name}: any full session")
        else:
            parts.append(
                f"{tier.name}: a session at AAL{step.aal} signed in within "
                f"{_words(step.max_age)}, and a confirming passkey at AAL{max(step.aal, 2)}"
            )
    return "before asking, the app's access token must come from " + "; ".join(parts) + "."


def explain_tier(tier: Tier, *, default: bool) -> list[str]:
    title = f"Tier {tier.name}" + (" (the default)" if default else "")
    lines = [f"{title}: {tier.description}" if tier.description else f"{title}:"]
    words = [_METHOD_WORDS[m] for m in ("passkey", "email", "password") if m in tier.methods]
    methods = words[0] if len(words) == 1 else f"{', '.join(words[:-1])} or {words[-1]}"
    lines.append(f"  - signs in with {methods}, at AAL{tier.signin_aal} or above.")
    if "passkey" in tier.methods:
        kinds = (
            "synced or device-bound"
            if tier.synced_passkeys
            else "device-bound only (synced passkeys refused)"
        )
        attested = (
            "; attestation must chain to passkey_trust_roots with an allow-listed AAGUID"
            if tier.attestation_required
            else ""
        )
        listed = f"; only AAGUIDs {', '.join(sorted(tier.aaguids))}" if tier.aaguids else ""
        lines.append(f"  - passkeys: {kinds}{attested}{listed}.")
    if not tier.email_signin:
        lines.append(
            "  - email never signs in"
            + (
                "; it may recover the account, into a session that can only enrol a passkey."
                if tier.email_recovery
                else " and never recovers the account."
            )
        )
    if tier.idle_timeout or tier.absolute_timeout:
        lines.append(
            "  - sessions end after "
            + ", ".join(
                part
                for part in (
                    f"{_words(tier.idle_timeout)} idle" if tier.idle_timeout else "",
                    f"{_words(tier.absolute_timeout)} in all" if tier.absolute_timeout else "",
                )
                if part
            )
            + " (or sooner, by the session's AAL)."
        )
    for step in tier.step_up:
        lines.append(
            f"  - {step.action} needs a proof at AAL{step.aal} no older than {_words(step.max_age)}."
        )
    return lines


def _words(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} seconds"
