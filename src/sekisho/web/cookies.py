"""Cookie names and attributes.

With an https public origin every cookie is ``__Host-``-prefixed, Secure, HttpOnly,
Path=/, without Domain, SameSite=Lax (SECURITY.md case 27). On plain-http localhost
in development the nearest safe equivalent drops only the prefix and Secure.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from sekisho.settings import Settings

BINDING_MAX_AGE = 24 * 3600
AUTHORIZATION_MAX_AGE = 30 * 60
CONFIRMATION_MAX_AGE = 15 * 60
DEVICE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_MAX_AGE = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Cookies:
    secure: bool

    @classmethod
    def for_settings(cls, settings: Settings) -> Cookies:
        return cls(secure=settings.secure_cookies)

    def _name(self, base: str) -> str:
        return f"__Host-sekisho_{base}" if self.secure else f"sekisho_{base}"

    @property
    def session(self) -> str:
        return self._name("session")

    @property
    def binding(self) -> str:
        return self._name("binding")

    @property
    def csrf(self) -> str:
        return self._name("csrf")

    @property
    def language(self) -> str:
        return self._name("lang")

    @property
    def authorization(self) -> str:
        """Names the OpenID Connect authorization request this browser is signing in
        for, so that the sign-in pages go back to it (sekisho.oidc.authorize)."""
        return self._name("authorization")

    @property
    def confirmation(self) -> str:
        """Names the transaction confirmation this browser signs in for, so that the
        sign-in pages go back to its page (sekisho.web.confirmation_pages)."""
        return self._name("confirmation")

    @property
    def device(self) -> str:
        """A random value naming this browser, to tell a sign-in from a new browser."""
        return self._name("device")

    @property
    def passkey_nudge(self) -> str:
        """Set when the person dismissed the offer to add a passkey."""
        return self._name("passkey_nudge")

    def set(self, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="lax",
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="lax")
