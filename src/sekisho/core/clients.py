"""Who is asking: the client's address and a readable description of its browser."""

from __future__ import annotations

from dataclasses import dataclass

from ua_parser import parse

MAX_USER_AGENT = 512


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str
    user_agent: str

    @classmethod
    def of(cls, ip: str | None, user_agent: str | None) -> ClientInfo:
        return cls(ip=ip or "unknown", user_agent=(user_agent or "")[:MAX_USER_AGENT])

    def describe(self) -> str:
        """'Chrome on Windows' style description for emails and the account page."""
        if not self.user_agent:
            return "unknown browser"
        result = parse(self.user_agent)
        browser = result.user_agent.family if result.user_agent else "unknown browser"
        system = result.os.family if result.os else None
        if system and system != "Other":
            return f"{browser} on {system}"
        return browser
