"""Recovery codes: sign-in with a saved code when the passkey is lost."""
