"""Registering a passkey (WebAuthn L3 §7.1), for a signed-in user.

py_webauthn checks type, challenge, origin, rpIdHash, UP/UV, the algorithm and the
attestation statement; this module adds what it leaves to the relying party:
- §7.1 step 10: no cross-origin (framed) ceremonies;
- §7.1 step 25: credential id at most 1023 bytes;
- §7.1 step 26: a credential id already registered, to anyone, is refused;
- BE=0 with BS=1 is refused (§6.1.3; py_webauthn refuses it first, this is the
  relying party's own guard should the library change);
- with ``attestation = direct``: a 'none' or self attestation is refused, the chain must
  reach a configured trust root, and the AAGUID must be on the allow-list;
and stores nothing until every check has passed (§7.1 step 27).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webauthn import generate_registration_options, verify_registration_response
from webauthn.helpers import (
    options_to_json_dict,
    parse_attestation_object,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import InvalidCertificateChain
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AttestationFormat,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialHint,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from sekisho.core.clients import ClientInfo
from sekisho.core.encoding import base64url, bytes_from_base64url
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Passkey, User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.aaguids import model_name
from sekisho.methods.passkey.authentication import EMAIL_FIRST_ENTRIES
from sekisho.methods.passkey.ceremony import (
    Ceremonies,
    StartedCeremony,
    parse_client_data,
    refuse,
    verifier_said,
)
from sekisho.methods.passkey.relying_party import (
    MAX_CREDENTIAL_ID_BYTES,
    SUPPORTED_ALGORITHMS,
    RelyingParty,
)

PURPOSE = "passkey-register"
FLOW_KIND = "passkey_register"
MAX_NAME = 100
PASSKEYS_PER_ACCOUNT = EMAIL_FIRST_ENTRIES
"""The most passkeys an account may register: no more than email-first sign-in pads its
``allowCredentials`` to, so the size of that list never tells how many an address has."""
_TRANSPORTS = {transport.value for transport in AuthenticatorTransport}


@dataclass(frozen=True, slots=True)
class RegisteredPasskey:
    passkey: Passkey
    model: str | None


class PasskeyRegistration:
    def __init__(self, *, keys: Keyring, relying_party: RelyingParty) -> None:
        self._rp = relying_party
        self._ceremonies = Ceremonies(
            keys=keys,
            relying_party=relying_party,
            purpose=PURPOSE,
            flow_kind=FLOW_KIND,
            failure_event="passkey.registration.failed",
        )

    def begin(
        self, repos: Repositories, *, user: User, binding: str, client: ClientInfo, now: datetime
    ) -> StartedCeremony:
        handle = repos.users.ensure_webauthn_handle(user.id, base64url(secrets.token_bytes(32)))
        existing = repos.passkeys.for_user(user.id)
        challenge = self._ceremonies.new_challenge()
        direct = self._rp.attestation == "direct"
        options = generate_registration_options(
            rp_id=self._rp.rp_id,
            rp_name=self._rp.name,
            user_name=user.email,
            user_id=bytes_from_base64url(handle),
            user_display_name=user.display_name or user.email,
            challenge=challenge,
            timeout=int(self._rp.challenge_ttl.total_seconds() * 1000),
            attestation=(
                AttestationConveyancePreference.DIRECT
                if direct
                else AttestationConveyancePreference.NONE
            ),
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                require_resident_key=True,
                user_verification=(
                    UserVerificationRequirement.REQUIRED
                    if self._rp.requires_user_verification
                    else UserVerificationRequirement.PREFERRED
                ),
            ),
            exclude_credentials=[
                PublicKeyCredentialDescriptor(
                    id=passkey.credential_id,
                    transports=[
                        AuthenticatorTransport(t) for t in passkey.transports if t in _TRANSPORTS
                    ],
                )
                for passkey in existing
            ],
            supported_pub_key_algs=list(SUPPORTED_ALGORITHMS),
            hints=[PublicKeyCredentialHint.SECURITY_KEY] if direct else None,
        )
        flow_id = self._ceremonies.open(
            repos, challenge=challenge, email=user.email, binding=binding, client=client, now=now
        )
        return StartedCeremony(flow_id=flow_id, options=dict(options_to_json_dict(options)))

    def finish(
        self,
        repos: Repositories,
        *,
        user: User,
        flow_id: str,
        credential: dict[str, Any],
        name: str | None,
        binding: str | None,
        client: ClientInfo,
        now: datetime,
        accept: Callable[[Passkey], bool] = lambda _passkey: True,
    ) -> RegisteredPasskey:
        """Verify and store a new passkey; ``accept`` is the account's tier saying whether
        it would let this passkey sign in (a key it refuses is not stored)."""
        client_data = parse_client_data(credential)
        flow = self._ceremonies.spend(
            repos, flow_id=flow_id, client_data=client_data, binding=binding, client=client, now=now
        )

        def refused(
            reason: str, code: ErrorCode = ErrorCode.passkey_rejected, verifier: str | None = None
        ) -> SekishoError:
            return refuse(
                repos,
                event="passkey.registration.failed",
                reason=reason,
                client=client,
                now=now,
                user_id=user.id,
                email=user.email,
                flow_id=flow.id,
                code=code,
                audit_detail={"verifier": verifier} if verifier else None,
            )

        if flow.email != user.email:
            raise refused("other_account", ErrorCode.invalid_or_expired)
        self._ceremonies.check_not_framed(repos, client_data, client, now, flow)
        try:
            parsed = parse_registration_credential_json(credential)
        except Exception as error:
            raise refused("malformed", ErrorCode.passkey_invalid) from error
        try:
            verified = verify_registration_response(
                credential=parsed,
                expected_challenge=client_data.challenge,
                expected_rp_id=self._rp.rp_id,
                expected_origin=list(self._rp.origins),
                require_user_verification=self._rp.requires_user_verification,
                supported_pub_key_algs=list(SUPPORTED_ALGORITHMS),
                pem_root_certs_bytes_by_fmt=self._trust_roots(),
            )
            attestation = parse_attestation_object(parsed.response.attestation_object)
        except Exception as error:
            if self._rp.attestation == "direct" and isinstance(
                error.__context__, InvalidCertificateChain
            ):
                raise refused(
                    "attestation_untrusted",
                    ErrorCode.passkey_not_allowed,
                    verifier=verifier_said(error),
                ) from error
            raise refused("verification_failed", verifier=verifier_said(error)) from error
        flags = attestation.auth_data.flags
        if len(verified.credential_id) > MAX_CREDENTIAL_ID_BYTES:
            raise refused("credential_id_too_long")
        if flags.bs and not flags.be:
            raise refused("backup_state_without_eligibility")
        if self._rp.attestation == "direct":
            if verified.fmt == AttestationFormat.NONE or not attestation.att_stmt.x5c:
                raise refused("attestation_missing", ErrorCode.passkey_not_allowed)
            if verified.aaguid not in self._rp.aaguid_allowlist:
                raise refused("aaguid_not_allowed", ErrorCode.passkey_not_allowed)
        model = model_name(verified.aaguid)
        passkey = Passkey(
            id=secrets.token_urlsafe(16),
            user_id=user.id,
            credential_id=verified.credential_id,
            public_key=verified.credential_public_key,
            sign_count=verified.sign_count,
            transports=tuple(
                str(AuthenticatorTransport(t).value)
                for t in (parsed.response.transports or [])
                if str(getattr(t, "value", t)) in _TRANSPORTS
            ),
            aaguid=verified.aaguid,
            backup_eligible=flags.be,
            backup_state=flags.bs,
            user_verified=verified.user_verified,
            attestation_format=str(AttestationFormat(verified.fmt).value),
            name=clean_name(name) or model or "Passkey",
            created_at=now,
            attestation_trusted=self._rp.attestation == "direct",
        )
        if not accept(passkey):
            raise refused("tier_refuses_passkey", ErrorCode.passkey_not_allowed)
        if not repos.passkeys.add(passkey):
            raise refused("credential_already_registered", ErrorCode.passkey_already_registered)
        repos.audit.append(
            AuditEvent(
                event="passkey.added",
                outcome="success",
                at=now,
                ip=client.ip,
                user_agent=client.user_agent,
                user_id=user.id,
                email=user.email,
                flow_id=flow.id,
                detail={
                    "passkey": passkey.id,
                    "aaguid": passkey.aaguid,
                    "synced": passkey.backup_eligible,
                    "attestation": passkey.attestation_format,
                },
            )
        )
        return RegisteredPasskey(passkey=passkey, model=model)

    def _trust_roots(self) -> dict[AttestationFormat, list[bytes]] | None:
        if self._rp.attestation != "direct":
            return None
        roots = list(self._rp.trust_roots)
        return {fmt: roots for fmt in AttestationFormat if fmt != AttestationFormat.NONE}


def clean_name(name: str | None) -> str:
    """A user-given passkey name: printable, trimmed, at most 100 characters."""
    if not name:
        return ""
    printable = "".join(ch if ch.isprintable() else " " if ch.isspace() else "" for ch in name)
    return " ".join(printable.split())[:MAX_NAME]
