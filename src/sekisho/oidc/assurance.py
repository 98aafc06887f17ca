"""``acr`` from what the session really proved (OIDC Core §2; OpenID EAP ACR Values 1.0;
NIST SP 800-63B-4), read from the one AAL mapping in :mod:`sekisho.policy.assurance`.

An email link or code, a password, a recovery code, or a passkey without user
verification is AAL1 and is said so. A passkey with user verification (AAL2,
phishing-resistant) earns the EAP value ``phr``; ``phrh`` (phishing-resistant and
hardware-protected) only an AAL3 session: a device-bound key whose attestation chained
to a configured trust root and whose AAGUID is allow-listed.
"""

from __future__ import annotations

from sekisho.policy.assurance import AAL2, AAL3, verified_passkey

ACR_AAL1 = "urn:sekisho:acr:aal1"
ACR_PHISHING_RESISTANT = "phr"
ACR_PHISHING_RESISTANT_HARDWARE = "phrh"
SUPPORTED = (ACR_AAL1, ACR_PHISHING_RESISTANT, ACR_PHISHING_RESISTANT_HARDWARE)


def acr_for(*, amr: tuple[str, ...], aal: int) -> str:
    if not verified_passkey(amr, aal):
        return ACR_AAL1
    return ACR_PHISHING_RESISTANT_HARDWARE if aal >= AAL3 else ACR_PHISHING_RESISTANT


RANK = {ACR_AAL1: 1, ACR_PHISHING_RESISTANT: 2, ACR_PHISHING_RESISTANT_HARDWARE: 3}


def acr_of_level(aal: int) -> str:
    """The ``acr`` a passkey reaching ``aal`` earns (AAL1: what any proof earns)."""
    if aal >= AAL3:
        return ACR_PHISHING_RESISTANT_HARDWARE
    return ACR_PHISHING_RESISTANT if aal >= AAL2 else ACR_AAL1


def satisfies(acr: str, acr_values: tuple[str, ...]) -> bool:
    """Whether ``acr`` meets a request's ``acr_values`` (OIDC Core §3.1.2.1; RFC 9470
    §4). Every listed value is acceptable to the client, so the weakest one is the
    requirement, and a stronger proof meets a weaker value. No supported value: no
    requirement (the parameter is voluntary)."""
    if not acr_values:
        return True
    return RANK[acr] >= min(RANK[value] for value in acr_values)
