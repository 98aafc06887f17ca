"""Subject identifiers (OIDC Core §8): ``public`` is Sekisho's user id; ``pairwise`` is
a keyed hash of the client's sector identifier and the user id (§8.1), so two clients
on different hosts cannot correlate a person by ``sub``, while every client of one
sector sees the same value. The key is derived from the server secret for this purpose
alone (like every keyed hash in Sekisho): adopting another server key changes every
pairwise ``sub``.
"""

from __future__ import annotations

from sekisho.core.keys import Keyring
from sekisho.oidc.records import Client

PAIRWISE_PURPOSE = "oidc-pairwise-subject"
SUBJECT_TYPES = ("public", "pairwise")


def subject(keys: Keyring, client: Client, user_id: str) -> str:
    """The ``sub`` this client knows the user by (ID token, UserInfo, access token,
    logout token alike)."""
    if client.subject_type != "pairwise":
        return user_id
    sector = client.sector_identifier
    return keys.digest(PAIRWISE_PURPOSE, f"{len(sector)}:{sector}:{user_id}")
