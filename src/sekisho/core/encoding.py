"""base64url without padding (RFC 4648 §5), as WebAuthn's JSON serialisation uses it."""

from __future__ import annotations

import base64
import binascii
import re

_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")


class InvalidEncoding(ValueError):
    """Not base64url."""


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def bytes_from_base64url(text: str) -> bytes:
    if not isinstance(text, str) or not _ALPHABET.fullmatch(text.rstrip("=")):
        raise InvalidEncoding("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidEncoding("not base64url") from error
