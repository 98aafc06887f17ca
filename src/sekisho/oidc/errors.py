"""Protocol errors with the spec's own names (RFC 6749 §4.1.2.1 and §5.2, OIDC Core
§3.1.2.6, RFC 6750 §3.1)."""

from __future__ import annotations


class OAuthError(Exception):
    """A refusal the client reads: ``error`` is the registered code, ``description`` a
    human-readable hint without internal detail."""

    def __init__(self, error: str, description: str, *, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class AuthorizationPageError(Exception):
    """An authorization request whose client or redirect URI cannot be trusted: shown
    to the person as a page, never redirected anywhere (RFC 6749 §4.1.2.1; RFC 9700
    §4.1: no open redirector)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
