"""Cookie names and attributes.

With an https public origin every cookie is ``__Host-``-prefixed, Secure, HttpOnly,
Path=/, without Domain, SameSite=Lax (SECURITY.md case 27). On plain-http localhost
in development the nearest safe equivalent drops only the prefix and Secure.

The ``Set-Cookie`` value is written here directly, with the attributes and in the order
Starlette's ``Response.set_cookie``/``delete_cookie`` wrote them (through the stdlib's
``http.cookies`` morsels, a tenth of a passkey sign-in's busy samples under py-spy):
every value Sekisho sets is its own (URL-safe tokens, ids, language codes), and one that
is not made only of RFC 6265 cookie-octets is refused, so that no header can ever be
split or a cookie's attributes extended by a value. A deletion carries ``Max-Age=0``
(which browsers obey before ``expires``) and an ``expires`` at the epoch, where
Starlette wrote the current time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from starlette.responses import Response

from sekisho.settings import Settings

BINDING_MAX_AGE = 24 * 3600
AUTHORIZATION_MAX_AGE = 30 * 60
CONFIRMATION_MAX_AGE = 15 * 60
DEVICE_MAX_AGE = 365 * 24 * 3600
LANGUAGE_MAX_AGE = 365 * 24 * 3600

#: RFC 6265 §4.1.1 ``cookie-value``, unquoted: US-ASCII without controls, whitespace,
#: DQUOTE, comma, semicolon and backslash.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")
#: RFC 6265 ``cookie-name``: an RFC 2616 token.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: What a deletion sets (Starlette's ``delete_cookie`` gave the same, quoted empty value).
_DELETED = '""; expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Max-Age=0'


def is_cookie_value(value: str) -> bool:
    """Whether ``value`` is made only of RFC 6265 cookie-octets (and may be set as is)."""
    return _COOKIE_VALUE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Cookies:
    secure: bool
    #: The attributes after HttpOnly and Max-Age, the same on every cookie.
    _tail: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tail = "; Path=/; SameSite=lax; Secure" if self.secure else "; Path=/; SameSite=lax"
        object.__setattr__(self, "_tail", tail)

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

    def header(self, name: str, value: str, *, max_age: int | None = None) -> bytes:
        """The ``Set-Cookie`` header value that sets ``name`` to ``value`` (HttpOnly,
        Path=/, SameSite=Lax, Secure with https, Max-Age when given); ``ValueError`` for
        a name that is not a token or a value that is not all cookie-octets."""
        if _COOKIE_NAME.fullmatch(name) is None or _COOKIE_VALUE.fullmatch(value) is None:
            raise ValueError(f"not a cookie name and value: {name!r}")
        lifetime = "" if max_age is None else f"; Max-Age={int(max_age)}"
        return f"{name}={value}; HttpOnly{lifetime}{self._tail}".encode("ascii")

    def deletion(self, name: str) -> bytes:
        """The ``Set-Cookie`` header value that removes ``name``."""
        if _COOKIE_NAME.fullmatch(name) is None:
            raise ValueError(f"not a cookie name: {name!r}")
        return f"{name}={_DELETED}{self._tail}".encode("ascii")

    def set(self, response: Response, name: str, value: str, *, max_age: int | None = None) -> None:
        response.raw_headers.append((b"set-cookie", self.header(name, value, max_age=max_age)))

    def clear(self, response: Response, name: str) -> None:
        response.raw_headers.append((b"set-cookie", self.deletion(name)))
