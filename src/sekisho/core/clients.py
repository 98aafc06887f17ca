"""Who is asking: the client's address and a readable description of its browser."""

from __future__ import annotations

from dataclasses import dataclass

from ua_parser import parse

from sekisho.i18n import DEFAULT_LOCALE, N_, gettext

MAX_USER_AGENT = 512
UNKNOWN_BROWSER = N_("unknown browser")
# Translators: a browser on an operating system, e.g. "Chrome on Linux".
BROWSER_ON_SYSTEM = N_("%(browser)s on %(system)s")


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """``device`` is the browser's device cookie (a random value), ``locale`` the
    language its pages are shown in (security notices to the account are written in it)."""

    ip: str
    user_agent: str
    device: str | None = None
    locale: str = DEFAULT_LOCALE

    @classmethod
    def of(
        cls,
        ip: str | None,
        user_agent: str | None,
        *,
        device: str | None = None,
        locale: str = DEFAULT_LOCALE,
    ) -> ClientInfo:
        return cls(
            ip=ip or "unknown",
            user_agent=(user_agent or "")[:MAX_USER_AGENT],
            device=device,
            locale=locale,
        )

    def describe(self, locale: str = DEFAULT_LOCALE) -> str:
        """'Chrome on Windows' style description in ``locale`` ('Windows 上の Chrome'):
        product names stay as the user agent gives them, the words around them are
        translated."""
        if not self.user_agent:
            return gettext(locale, UNKNOWN_BROWSER)
        result = parse(self.user_agent)
        browser = result.user_agent.family if result.user_agent else None
        if not browser or browser == "Other":
            browser = gettext(locale, UNKNOWN_BROWSER)
        system = result.os.family if result.os else None
        if system and system != "Other":
            return gettext(locale, BROWSER_ON_SYSTEM, browser=browser, system=system)
        return browser
