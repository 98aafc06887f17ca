"""The legacy password, kept only as a bridge to passwordless sign-in."""
