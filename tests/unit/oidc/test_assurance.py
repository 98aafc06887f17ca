"""acr values: only a user-verified passkey is phishing-resistant (OpenID EAP ACR)."""

from __future__ import annotations

from sekisho.oidc.assurance import (
    ACR_AAL1,
    ACR_PHISHING_RESISTANT,
    ACR_PHISHING_RESISTANT_HARDWARE,
    acr_for,
)


def test_only_a_user_verified_passkey_is_phr() -> None:
    assert acr_for(amr=("hwk", "pin", "mfa"), aal=2) == ACR_PHISHING_RESISTANT
    assert acr_for(amr=("swk", "pin", "mfa"), aal=2) == ACR_PHISHING_RESISTANT
    assert acr_for(amr=("hwk", "user"), aal=1) == ACR_AAL1
    assert acr_for(amr=("email",), aal=1) == ACR_AAL1
    assert acr_for(amr=("email",), aal=2) == ACR_AAL1
    assert acr_for(amr=("pwd",), aal=1) == ACR_AAL1
    assert acr_for(amr=("otp",), aal=1) == ACR_AAL1
    assert acr_for(amr=("hwk", "pin", "mfa"), aal=3) == ACR_PHISHING_RESISTANT_HARDWARE
    assert acr_for(amr=("email",), aal=3) == ACR_AAL1
