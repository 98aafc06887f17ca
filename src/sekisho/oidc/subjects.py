"""Subject identifiers (OIDC Core §8): ``public`` is Sekisho's user id; ``pairwise`` is
a keyed hash of the client's sector identifier and the user id (§8.1), so two clients
on different hosts cannot correlate a person by ``sub``, while every client of one
sector sees the same value. The session id (``sid``, Back-Channel Logout 1.0 §2.1) a
pairwise client sees is keyed the same way, or it would correlate the person again. The key is derived from the server secret for this purpose
alone (like every keyed hash in Sekisho): adopting another server key changes every
pairwise ``sub``.
"""

from __future__ import annotations

from sekisho.core.keys import Keyring
from sekisho.oidc.records import Client

PAIRWISE_PURPOSE = "oidc-pairwise-subject"
PAIRWISE_SESSION_PURPOSE = "oidc-pairwise-session"
SUBJECT_TYPES = ("public", "pairwise")


def subject(keys: Keyring, client: Client, user_id: str) -> str:
    """The ``sub`` this client knows the user by (ID token, UserInfo, access token,
    logout token alike)."""
    if client.subject_type != "pairwise":
        return user_id
    sector = client.sector_identifier
    return keys.digest(PAIRWISE_PURPOSE, f"{len(sector)}:{sector}:{user_id}")


def session_id(keys: Keyring, client: Client, sekisho_session_id: str) -> str:
    """The ``sid`` this client knows the Sekisho session by (ID token, logout token,
    ``id_token_hint``)."""
    if client.subject_type != "pairwise":
        return sekisho_session_id
    sector = client.sector_identifier
    digest = keys.digest(PAIRWISE_SESSION_PURPOSE, f"{len(sector)}:{sector}:{sekisho_session_id}")
    return digest[:32]
