"""How pages say how someone signed in: words ("Passkey", "Email", "Password") and what
the assurance level means, never the RFC 8176 ``amr`` codes or "AAL2"."""

from __future__ import annotations

from collections.abc import Sequence

from sekisho.i18n import N_, gettext
from sekisho.policy.assurance import AAL2, AAL3, AMR_EMAIL, AMR_PASSWORD, AMR_RECOVERY_CODE

PASSKEY_AMR = frozenset({"hwk", "swk"})
PASSKEY = N_("Passkey")
EMAIL = N_("Email")
PASSWORD = N_("Password")
RECOVERY_CODE = N_("Recovery code")
UNKNOWN = N_("Other")
STANDARD = N_("standard protection: one step")
STRONG = N_("strong protection: two factors, cannot be phished")
STRONGEST = N_("strongest protection: a security key that never leaves its device")
# Translators: how someone signed in, then what that protects, e.g.
# "Passkey (strong protection: two factors, cannot be phished)".
METHOD_AND_LEVEL = N_("%(method)s (%(level)s)")


def method_label(locale: str, amr: Sequence[str]) -> str:
    """The sign-in method a session or event came from, as a word."""
    if AMR_PASSWORD in amr:
        return gettext(locale, PASSWORD)
    if AMR_EMAIL in amr:
        return gettext(locale, EMAIL)
    if AMR_RECOVERY_CODE in amr:
        return gettext(locale, RECOVERY_CODE)
    if PASSKEY_AMR.intersection(amr):
        return gettext(locale, PASSKEY)
    return gettext(locale, UNKNOWN)


def level_label(locale: str, aal: int | None) -> str:
    """What an authenticator assurance level means to the person (NIST SP 800-63B-4)."""
    if aal is not None and aal >= AAL3:
        return gettext(locale, STRONGEST)
    return gettext(locale, STRONG if aal is not None and aal >= AAL2 else STANDARD)


def signed_in_with(locale: str, amr: Sequence[str], aal: int | None) -> str:
    return gettext(
        locale,
        METHOD_AND_LEVEL,
        method=method_label(locale, amr),
        level=level_label(locale, aal),
    )
