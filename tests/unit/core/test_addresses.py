from __future__ import annotations

import pytest

from sekisho.core.addresses import InvalidAddress, mask_email, normalize_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Alice@Example.COM", "alice@example.com"),
        ("  bob@example.com\t", "bob@example.com"),
        ("user+tag@sub.example.co.jp", "user+tag@sub.example.co.jp"),
        ("taro@例え.jp", "taro@xn--r8jz45g.jp"),
    ],
)
def test_normalises_to_one_canonical_form(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "no-at-sign",
        "a@b@example.com",
        '"a@evil"@example.com',
        "a\uff20example.com",
        "\u0430dmin@example.com",
        "a@example.com\nBcc: x@example.com",
        "a b@example.com",
        "a@[127.0.0.1]",
        "Alice <alice@example.com>",
        "a" * 250 + "@example.com",
        "a@" + "b" * 250 + ".com",
        "a@localhost",
    ],
)
def test_refuses_tricks(raw: str) -> None:
    with pytest.raises(InvalidAddress):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("address", "masked"),
    [("alice@example.com", "a•••@example.com"), ("b@example.jp", "b•••@example.jp")],
)
def test_mask_keeps_the_first_letter_and_the_domain(address: str, masked: str) -> None:
    assert mask_email(address) == masked
