"""Authenticator model names by AAGUID, from the shipped ``aaguids.json`` (plain data, so
it can be updated without a code change)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "aaguids.json"
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"


@cache
def _names() -> dict[str, str]:
    data: dict[str, str] = json.loads(DATA.read_text(encoding="utf-8"))
    return {key.lower(): value for key, value in data.items() if not key.startswith("_")}


def model_name(aaguid: str) -> str | None:
    """The authenticator's model name, or None when the AAGUID is unknown or all zeros
    (authenticators that do not disclose their model)."""
    if aaguid == ZERO_AAGUID:
        return None
    return _names().get(aaguid.lower())
