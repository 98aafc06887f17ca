"""Making, listing, revoking and checking API keys (issue 9 "Clients", issue 10
"Operators"; RFC 6750 §3.1 for the refusals). One implementation behind
``sekisho api-keys`` and the admin API's bearer check.

Invariant: every creation, revocation and refused use writes one audit event in the
same transaction as the change; a successful use records the key's last use.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sekisho.core import api_keys
from sekisho.core.api_keys import ApiKey, NewApiKey
from sekisho.core.keys import Keyring
from sekisho.core.records import AuditEvent
from sekisho.errors import ErrorCode, SekishoError
from sekisho.store.api_keys import SqlApiKeys
from sekisho.store.database import Database


class ApiKeyService:
    def __init__(self, *, database: Database, keys: Keyring, clock: Callable[[], datetime]) -> None:
        self._database = database
        self._keys = keys
        self._clock = clock

    def create(
        self,
        *,
        name: str,
        scopes: list[str],
        operator: str | None = None,
        operators: frozenset[str] = frozenset(),
        actor: str = "cli",
    ) -> NewApiKey:
        """A new key, belonging to ``operator`` if given (one of ``operators``, the
        deployment's ``admin_emails``); raises
        :class:`sekisho.core.api_keys.ApiKeyRefused`."""
        now = self._clock()
        made = api_keys.make(
            self._keys, name=name, scopes=scopes, now=now, operator=operator, operators=operators
        )
        detail = {
            "key_id": made.record.id,
            "name": made.record.name,
            "scopes": " ".join(made.record.scopes),
        }
        if made.record.operator is not None:
            detail["operator"] = made.record.operator
        with self._database.transaction() as repos:
            SqlApiKeys(repos.connection).add(made.record)
            repos.audit.append(
                AuditEvent(
                    event="api_key.created",
                    outcome="success",
                    at=now,
                    ip=actor,
                    detail=detail,
                )
            )
        return made

    def all(self) -> list[ApiKey]:
        with self._database.reading() as repos:
            return SqlApiKeys(repos.connection).all()

    def revoke(self, identifier: str, *, actor: str = "cli") -> bool:
        """Revoke a live key at once; False when there is no such live key."""
        now = self._clock()
        with self._database.transaction() as repos:
            if not SqlApiKeys(repos.connection).revoke(identifier, now=now):
                return False
            repos.audit.append(
                AuditEvent(
                    event="api_key.revoked",
                    outcome="success",
                    at=now,
                    ip=actor,
                    detail={"key_id": identifier},
                )
            )
        return True

    def authenticate(
        self,
        presented: str | None,
        scopes: tuple[str, ...],
        *,
        ip: str | None,
        user_agent: str | None,
        operator: bool = False,
    ) -> ApiKey:
        """The live key ``presented`` is, if it holds every one of ``scopes`` (and, with
        ``operator``, names the operator it belongs to); otherwise ``api_key_invalid``
        (RFC 6750 ``invalid_token``, 401), ``insufficient_scope`` (403) or
        ``api_key_no_operator`` (403). A presented value that is refused is audited,
        with the key id it named."""
        if presented is None:
            raise SekishoError(ErrorCode.api_key_invalid, detail={"scope": " ".join(scopes)})
        now = self._clock()
        parts = api_keys.parse(presented)
        with self._database.transaction() as repos:
            store = SqlApiKeys(repos.connection)
            record = store.get(parts[0]) if parts else None
            if api_keys.verify(self._keys, record, presented):
                assert record is not None
                if not all(record.allows(scope) for scope in scopes):
                    refusal = ErrorCode.insufficient_scope
                elif operator and record.operator is None:
                    refusal = ErrorCode.api_key_no_operator
                else:
                    store.used(record.id, now=now)
                    return record
            else:
                refusal = ErrorCode.api_key_invalid
            detail: dict[str, str] = {"scope": " ".join(scopes), "reason": refusal.name}
            if parts is not None:
                detail["key_id"] = parts[0]
            repos.audit.append(
                AuditEvent(
                    event="api_key.refused",
                    outcome="failure",
                    at=now,
                    ip=ip,
                    user_agent=user_agent,
                    detail=detail,
                )
            )
        raise SekishoError(refusal, detail={"scope": " ".join(scopes)})
