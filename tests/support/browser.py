"""A cookie-keeping HTTP client that fills Sekisho's forms like a browser would."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FLOW = re.compile(r"flow=([A-Za-z0-9_\-]+)")


class FormBrowser:
    """One browser: its own cookie jar, CSRF token and binding cookie."""

    def __init__(
        self, base_url: str, user_agent: str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
    ) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            follow_redirects=False,
            timeout=30,
            headers={"User-Agent": user_agent},
        )
        self._csrf: str | None = None

    def close(self) -> None:
        self.http.close()

    def csrf(self) -> str:
        if self._csrf is None:
            page = self.http.get("/signin")
            match = CSRF.search(page.text)
            assert match is not None, page.text
            self._csrf = match.group(1)
        return self._csrf

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """A same-origin form post as Chromium sends it from a no-referrer page."""
        headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin", **kwargs.pop("headers", {})}
        return self.http.post(
            path, data={"csrf_token": self.csrf(), **data}, headers=headers, **kwargs
        )

    def request_email(self, address: str) -> str:
        """Ask for a sign-in email; returns the flow id from the redirect."""
        response = self.post("/signin/email", {"email": address})
        assert response.status_code == 303, response.text
        match = FLOW.search(response.headers["location"])
        assert match is not None
        return match.group(1)

    def session_cookie(self) -> str | None:
        return self.http.cookies.get("sekisho_session")

    def signed_in(self) -> bool:
        return self.http.get("/api/v1/session").status_code == 200
