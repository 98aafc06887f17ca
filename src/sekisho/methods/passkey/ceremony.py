"""What registration and authentication share: the challenge's life, the client data
checks the library leaves to us, and refusals that are audited.

Invariants (WebAuthn L3 §13.4.3, SECURITY.md case 17):
- a challenge is 32 random bytes, made and kept server-side as a keyed hash, bound to
  one flow, one purpose and one browser (the binding cookie), and lives 5 minutes;
- the challenge is spent *before* the response is verified, so any final outcome,
  success or failure, leaves it unusable;
- ``crossOrigin`` true or a ``topOrigin`` is refused: Sekisho is never framed.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sekisho.core import onetime
from sekisho.core.clients import ClientInfo
from sekisho.core.encoding import InvalidEncoding, base64url, bytes_from_base64url
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Flow, FlowState
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.relying_party import RelyingParty

CHALLENGE_BYTES = 32
_CHALLENGE = "passkey-challenge"
_BINDING = "binding"
MAX_CREDENTIAL_JSON_FIELD = 16 * 1024


@dataclass(frozen=True, slots=True)
class StartedCeremony:
    flow_id: str
    options: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ClientData:
    challenge: bytes
    raw: dict[str, Any]


def parse_client_data(credential: dict[str, Any]) -> ClientData:
    """The decoded clientDataJSON of a response, or a 400 ``passkey_invalid``.

    JSON nested deeper than the interpreter's recursion limit makes ``json.loads`` raise
    ``RecursionError``: that is a malformed credential too, never a 500."""
    try:
        response = credential["response"]
        encoded = response["clientDataJSON"]
        if not isinstance(encoded, str) or len(encoded) > MAX_CREDENTIAL_JSON_FIELD:
            raise ValueError("clientDataJSON")
        raw = json.loads(bytes_from_base64url(encoded))
        if not isinstance(raw, dict) or not isinstance(raw.get("challenge"), str):
            raise ValueError("challenge")
        return ClientData(challenge=bytes_from_base64url(raw["challenge"]), raw=raw)
    except (
        KeyError,
        TypeError,
        ValueError,
        RecursionError,
        InvalidEncoding,
        UnicodeDecodeError,
    ) as error:
        raise SekishoError(ErrorCode.passkey_invalid) from error


class Ceremonies:
    """Issues and spends challenges for one purpose ('passkey-register', 'passkey-signin')."""

    def __init__(
        self,
        *,
        keys: Keyring,
        relying_party: RelyingParty,
        purpose: str,
        flow_kind: str,
        failure_event: str,
    ) -> None:
        self._keys = keys
        self._rp = relying_party
        self.purpose = purpose
        self.flow_kind = flow_kind
        self.failure_event = failure_event

    def new_challenge(self) -> bytes:
        return secrets.token_bytes(CHALLENGE_BYTES)

    def open(
        self,
        repos: Repositories,
        *,
        challenge: bytes,
        email: str,
        binding: str,
        client: ClientInfo,
        now: datetime,
    ) -> str:
        """Store a flow holding the challenge's keyed hash; return the flow id."""
        flow = Flow(
            id=onetime.new_flow_id(),
            kind=self.flow_kind,
            state=FlowState.PENDING,
            email=email,
            binding_digest=self._keys.digest(_BINDING, binding),
            approval_number=0,
            requested_ip=client.ip,
            requested_user_agent=client.user_agent,
            locale="",
            created_at=now,
            expires_at=now + self._rp.challenge_ttl,
        )
        repos.flows.create(flow)
        repos.secrets.add(
            flow_id=flow.id,
            purpose=self.purpose,
            kind="challenge",
            digest=self._keys.digest(_CHALLENGE, base64url(challenge)),
            max_attempts=1,
            expires_at=flow.expires_at,
        )
        return flow.id

    def spend(
        self,
        repos: Repositories,
        *,
        flow_id: str,
        client_data: ClientData,
        binding: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> Flow:
        """Spend the challenge the response carries, and check it belongs to ``flow_id``,
        to this purpose and to this browser; every refusal is audited and answered
        ``invalid_or_expired``."""
        spent_for = repos.secrets.consume_live(
            purpose=self.purpose,
            kind="challenge",
            digest=self._keys.digest(_CHALLENGE, base64url(client_data.challenge)),
            now=now,
        )
        if spent_for is None:
            raise self.refuse(
                repos, "challenge_unknown_spent_or_expired", client, now, flow_id=flow_id
            )
        flow = repos.flows.get(spent_for)
        if flow is None or flow.id != flow_id or flow.kind != self.flow_kind:
            repos.secrets.spend_flow(spent_for, reason="mismatch", now=now)
            raise self.refuse(
                repos, "challenge_of_another_ceremony", client, now, flow_id=spent_for
            )
        if not binding or not self._keys.matches(_BINDING, binding, flow.binding_digest):
            repos.secrets.spend_flow(flow.id, reason="other_browser", now=now)
            raise self.refuse(repos, "other_browser", client, now, flow=flow)
        if not repos.flows.transition(
            flow.id, from_state=FlowState.PENDING, to_state=FlowState.COMPLETED, now=now
        ):
            raise self.refuse(repos, "ceremony_ended", client, now, flow=flow)
        return flow

    def check_not_framed(
        self,
        repos: Repositories,
        client_data: ClientData,
        client: ClientInfo,
        now: datetime,
        flow: Flow,
    ) -> None:
        """WebAuthn L3 §7.1 step 10 / §7.2 step 13: Sekisho's pages are never embedded."""
        if client_data.raw.get("crossOrigin") is True or "topOrigin" in client_data.raw:
            raise self.refuse(
                repos, "cross_origin", client, now, flow=flow, code=ErrorCode.passkey_rejected
            )

    def refuse(
        self,
        repos: Repositories,
        reason: str,
        client: ClientInfo,
        now: datetime,
        *,
        flow: Flow | None = None,
        flow_id: str | None = None,
        code: ErrorCode = ErrorCode.invalid_or_expired,
    ) -> SekishoError:
        return refuse(
            repos,
            event=self.failure_event,
            reason=reason,
            client=client,
            now=now,
            email=(flow.email or None) if flow else None,
            flow_id=flow.id if flow else flow_id,
            code=code,
        )


def refuse(
    repos: Repositories,
    *,
    event: str,
    reason: str,
    client: ClientInfo,
    now: datetime,
    user_id: str | None = None,
    email: str | None = None,
    flow_id: str | None = None,
    code: ErrorCode = ErrorCode.passkey_rejected,
    audit_detail: dict[str, str] | None = None,
    public_detail: dict[str, str] | None = None,
) -> SekishoError:
    """Write the failure's audit event and return the error to raise (committed).

    The client sees the stable ``reason`` token and ``public_detail`` only; what the
    verifier said (``audit_detail``) stays in the audit log."""
    repos.audit.append(
        AuditEvent(
            event=event,
            outcome="failure",
            at=now,
            ip=client.ip,
            user_agent=client.user_agent,
            user_id=user_id,
            email=email,
            flow_id=flow_id,
            detail={"reason": reason, **(audit_detail or {}), **(public_detail or {})},
        )
    )
    return SekishoError(code, persist=True, detail={"reason": reason, **(public_detail or {})})


def verifier_said(error: Exception) -> str:
    """What py_webauthn said, shortened, for the audit log only (it may quote origins and
    configuration, which the client is not told)."""
    return f"{type(error).__name__}: {error}"[:300]
