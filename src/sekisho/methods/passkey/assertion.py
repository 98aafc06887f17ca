"""Verifying one WebAuthn assertion (WebAuthn L3 §7.2), shared by signing in
(:mod:`.authentication`) and confirming a transaction (:mod:`.transaction`).

The caller has spent the challenge and says which credentials may answer; this module
does the rest, in the order of §7.2:
- steps 1-3: the response must parse as a ``PublicKeyCredential`` assertion;
- steps 5-6: the credential must be registered and belong to an account the caller
  accepts (the caller's ``locate``); the ``userHandle``, when present, must be that
  account's handle, and must be present when the caller says so (usernameless sign-in,
  where no account was named);
- step 13: no cross-origin (framed) ceremonies;
- steps 7-12 and 14-21 by py_webauthn: type, challenge, origin, rpIdHash, UP, UV (as the
  caller requires) and the signature (its own signCount check is switched off by 0);
- BE must equal the stored value (§6.1.3; py_webauthn itself refuses BE=0 with BS=1);
- the signCount step: a counter that does not increase (when either value is non-zero)
  marks a possible clone, audited as ``passkey.clone_suspected`` and refused when
  ``passkey_sign_count_policy`` is ``reject``;
- the final step: stored state (sign count, backup state, last use) changes only after
  every check passed.

Every refusal goes through the caller's :class:`Refusal`, so each flow keeps its own
audit event, reasons and details.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from webauthn import verify_authentication_response
from webauthn.helpers import parse_authentication_credential_json, parse_authenticator_data

from sekisho.core.clients import ClientInfo
from sekisho.core.encoding import base64url
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Flow, Passkey, User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.ceremony import Ceremonies, ClientData, verifier_said
from sekisho.methods.passkey.relying_party import RelyingParty
from sekisho.policy.assurance import Assurance, Attestation, passkey_assurance


class Refusal(Protocol):
    """The caller's refusal: audits ``reason`` its own way and returns the error to raise.

    ``passkey`` is the credential once it is known; ``verifier`` is what py_webauthn said
    (for the audit log only)."""

    def __call__(
        self,
        reason: str,
        code: ErrorCode = ErrorCode.passkey_rejected,
        *,
        passkey: Passkey | None = None,
        verifier: str | None = None,
    ) -> SekishoError: ...


Locate = Callable[[bytes], tuple[Passkey, User]]
"""§7.2 steps 5-6 for one flow: the passkey with this credential id and its account, or
raise the caller's refusal."""


@dataclass(frozen=True, slots=True)
class VerifiedAssertion:
    passkey: Passkey
    user: User
    assurance: Assurance


class AssertionVerifier:
    def __init__(self, *, relying_party: RelyingParty, ceremonies: Ceremonies) -> None:
        self._rp = relying_party
        self._ceremonies = ceremonies

    def verify(
        self,
        repos: Repositories,
        *,
        flow: Flow,
        client_data: ClientData,
        credential: dict[str, Any],
        locate: Locate,
        refused: Refusal,
        require_user_verification: bool,
        user_handle_required: bool,
        client: ClientInfo,
        now: datetime,
    ) -> VerifiedAssertion:
        """Check ``credential`` against the spent ``flow`` and record the passkey's use."""
        try:
            parsed = parse_authentication_credential_json(credential)
        except Exception as error:
            raise refused("malformed", ErrorCode.passkey_invalid) from error
        passkey, user = locate(parsed.raw_id)
        handle = parsed.response.user_handle
        if handle is None and user_handle_required:
            raise refused("user_handle_missing", passkey=passkey)
        if handle is not None and base64url(handle) != user.webauthn_handle:
            raise refused("user_handle_mismatch", passkey=passkey)
        self._ceremonies.check_not_framed(repos, client_data, client, now, flow)
        try:
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=client_data.challenge,
                expected_rp_id=self._rp.rp_id,
                expected_origin=list(self._rp.origins),
                credential_public_key=passkey.public_key,
                credential_current_sign_count=0,
                require_user_verification=require_user_verification,
            )
            flags = parse_authenticator_data(parsed.response.authenticator_data).flags
        except Exception as error:
            raise refused(
                "verification_failed", passkey=passkey, verifier=verifier_said(error)
            ) from error
        if flags.be != passkey.backup_eligible:
            raise refused("backup_eligibility_changed", passkey=passkey)
        new_count = verified.new_sign_count
        if (new_count > 0 or passkey.sign_count > 0) and new_count <= passkey.sign_count:
            _audit_clone(repos, passkey, user.email, new_count, client, now)
            if self._rp.sign_count_policy == "reject":
                raise refused("sign_count_not_increased", passkey=passkey)
        repos.passkeys.record_use(
            passkey.id,
            sign_count=max(new_count, passkey.sign_count),
            backup_state=flags.bs,
            now=now,
        )
        assurance = passkey_assurance(
            passkey,
            user_verified=flags.uv,
            backup_eligible=flags.be,
            attestation=Attestation(self._rp.aaguid_allowlist),
        )
        return VerifiedAssertion(passkey=passkey, user=user, assurance=assurance)


def _audit_clone(
    repos: Repositories,
    passkey: Passkey,
    email: str,
    new_count: int,
    client: ClientInfo,
    now: datetime,
) -> None:
    repos.audit.append(
        AuditEvent(
            event="passkey.clone_suspected",
            outcome="failure",
            at=now,
            ip=client.ip,
            user_agent=client.user_agent,
            user_id=passkey.user_id,
            email=email,
            detail={"passkey": passkey.id, "stored": passkey.sign_count, "received": new_count},
        )
    )
