from __future__ import annotations

import pytest

from sekisho.core.encoding import InvalidEncoding, base64url, bytes_from_base64url


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xff\xfe", bytes(range(256))])
def test_round_trip_without_padding(data: bytes) -> None:
    text = base64url(data)
    assert "=" not in text
    assert bytes_from_base64url(text) == data


@pytest.mark.parametrize("text", ["a+b/", "é", "abc=d", "a"])
def test_refuses_what_is_not_base64url(text: str) -> None:
    with pytest.raises(InvalidEncoding):
        bytes_from_base64url(text)
