"""One-time secrets: link tokens, codes, approval numbers, binding values.

Invariants (ARCHITECTURE.md, NIST SP 800-63B-4 §3.1.3 and §3.2.2):
- every value comes from ``secrets`` (a CSPRNG);
- link tokens carry 256 bits; codes are 6 digits; both live at most 10 minutes;
- only keyed hashes are stored (see :mod:`sekisho.core.keys`), and a code's hash is
  bound to its flow, so a valid code sent with another flow's id never matches;
- the attempt counter is incremented *before* the comparison and atomically (the
  store's ``take_code_attempt``), so concurrent guesses cannot exceed the cap.
"""

from __future__ import annotations

import secrets

CODE_DIGITS = 6
LINK_TOKEN_BYTES = 32
FLOW_ID_BYTES = 16
BINDING_BYTES = 32
SESSION_TOKEN_BYTES = 32

PURPOSE_SIGNIN = "signin"


def new_link_token() -> str:
    return secrets.token_urlsafe(LINK_TOKEN_BYTES)


def new_code() -> str:
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def new_flow_id() -> str:
    return secrets.token_urlsafe(FLOW_ID_BYTES)


def new_binding() -> str:
    return secrets.token_urlsafe(BINDING_BYTES)


def new_session_token() -> str:
    return secrets.token_urlsafe(SESSION_TOKEN_BYTES)


def new_approval_number() -> int:
    """A two-digit number the waiting browser shows for number matching."""
    return 10 + secrets.randbelow(90)


def is_code_shaped(value: str) -> bool:
    return len(value) == CODE_DIGITS and value.isascii() and value.isdigit()


def code_material(flow_id: str, code: str) -> str:
    """What is hashed for a code: the code bound to its flow."""
    return f"{flow_id}:{code}"
