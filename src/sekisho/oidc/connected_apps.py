"""The account page's "Connected apps": the third-party clients a person consented to,
and taking that consent back (OIDC Core §3.1.2.4 leaves revocation to the provider).

Invariant: revoking forgets the consent and ends every grant the client holds for the
person in one transaction, with its ``oidc.consent.revoked`` audit event; the client's
tokens are refused from then on and its next authorization asks for consent again.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sekisho.core.clients import ClientInfo
from sekisho.core.records import Session
from sekisho.core.sessions import session_event
from sekisho.errors import ErrorCode, SekishoError
from sekisho.oidc.records import ConnectedApp
from sekisho.store.database import Database
from sekisho.store.oidc import SqlOidc


class ConnectedApps:
    def __init__(self, database: Database, clock: Callable[[], datetime]) -> None:
        self._database = database
        self._clock = clock

    def of(self, session: Session) -> list[ConnectedApp]:
        with self._database.reading() as repos:
            return SqlOidc(repos.connection).connected_apps(session.user_id)

    def revoke(self, session: Session, client_id: str, client: ClientInfo) -> None:
        """Take back the consent to ``client_id`` (404 ``not_found`` when there is none:
        another person's client, or one already revoked)."""
        with self._database.transaction() as repos:
            now = self._clock()
            store = SqlOidc(repos.connection)
            connected = {app.client_id for app in store.connected_apps(session.user_id)}
            if client_id not in connected:
                raise SekishoError(ErrorCode.not_found)
            _consented, grants = store.disconnect(session.user_id, client_id, now=now)
            repos.audit.append(
                session_event(
                    "oidc.consent.revoked",
                    session,
                    client,
                    now,
                    detail={"client_id": client_id, "grants_ended": grants},
                )
            )
