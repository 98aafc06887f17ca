"""Email address normalisation (SECURITY.md case 8).

Invariant: one typed address maps to exactly one stored, normalised address, or is
refused. Quoted local parts, non-ASCII local parts (look-alikes), fullwidth at signs and
over-long input are refused rather than repaired; domains are IDNA-encoded and the whole
address lower-cased.
"""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email

MAX_ADDRESS_LENGTH = 254


class InvalidAddress(ValueError):
    """The input is not an address Sekisho will send to."""


def mask_email(address: str) -> str:
    """``a•••@example.com``: enough for its owner to recognise the address they typed,
    too little for someone looking over their shoulder to read it."""
    local, _at, domain = address.rpartition("@")
    return f"{local[:1]}\u2022\u2022\u2022@{domain}"


def normalize_email(raw: str) -> str:
    """Return the canonical form of ``raw`` or raise :class:`InvalidAddress`."""
    candidate = raw.strip()
    if not candidate or len(candidate) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("length")
    if any(ord(ch) < 0x21 or ch in '\x7f"' for ch in candidate):
        raise InvalidAddress("characters")
    if candidate.count("@") != 1:
        raise InvalidAddress("shape")
    try:
        result = validate_email(
            candidate,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
            allow_display_name=False,
        )
    except EmailNotValidError as exc:
        raise InvalidAddress("syntax") from exc
    normalized = (result.ascii_email or result.normalized).lower()
    if len(normalized) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("length")
    return normalized
