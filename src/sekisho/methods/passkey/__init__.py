"""Passkeys (WebAuthn Level 3 / FIDO2), verified with py_webauthn plus the relying-party
checks the library leaves to us."""
