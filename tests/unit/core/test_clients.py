"""Device descriptions in the reader's language: product names kept, words translated."""

from __future__ import annotations

import pytest

from sekisho.core.clients import ClientInfo

LINUX_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


@pytest.mark.parametrize(
    ("locale", "expected"), [("en", "Chrome on Linux"), ("ja", "Linux 上の Chrome")]
)
def test_browser_on_system_in_each_language(locale: str, expected: str) -> None:
    assert ClientInfo.of("203.0.113.7", LINUX_CHROME).describe(locale) == expected


def test_english_is_the_default() -> None:
    assert ClientInfo.of("203.0.113.7", LINUX_CHROME).describe() == "Chrome on Linux"


@pytest.mark.parametrize(
    ("locale", "expected"), [("en", "unknown browser"), ("ja", "不明なブラウザ")]
)
def test_no_user_agent_is_an_unknown_browser(locale: str, expected: str) -> None:
    assert ClientInfo.of(None, None).describe(locale) == expected
    assert ClientInfo.of(None, "???").describe(locale) == expected
