"""``acr`` from what the session really proved (OIDC Core §2; OpenID EAP ACR Values 1.0;
NIST SP 800-63B-4).

An email link or code, a password, or a passkey without user verification is AAL1 and
is said so; only a passkey with user verification (AAL2, phishing-resistant) earns the
EAP value ``phr``. ``phrh`` (hardware-protected) is never claimed: nothing proves a key's
hardware without attestation.
"""

from __future__ import annotations

ACR_AAL1 = "urn:sekisho:acr:aal1"
ACR_PHISHING_RESISTANT = "phr"
SUPPORTED = (ACR_AAL1, ACR_PHISHING_RESISTANT)
PASSKEY_AMR = frozenset({"hwk", "swk"})


def acr_for(*, amr: tuple[str, ...], aal: int) -> str:
    if aal >= 2 and PASSKEY_AMR.intersection(amr):
        return ACR_PHISHING_RESISTANT
    return ACR_AAL1
