"""Signing in with a passkey (WebAuthn L3 §7.2): usernameless, autofill, or email-first.

py_webauthn checks type, challenge, origin, rpIdHash, UP/UV and the signature; this
module adds what it leaves to the relying party:
- §7.2 step 5/6: the credential must be registered, belong to the account the ceremony
  named (email-first), and the ``userHandle`` must be that account's handle (required
  when no account was named: discoverable credentials return it);
- §7.2 step 13: no cross-origin (framed) ceremonies;
- BE must equal the stored value (§6.1.3; py_webauthn itself refuses BE=0 with BS=1);
- a signature counter that does not increase (when either value is non-zero) marks a
  possible clone, refused or audited as ``passkey_sign_count_policy`` says (§7.2, the
  signCount step; the library's own check is switched off by passing 0);
- stored state changes only after every check passed (§7.2, the final step).

Email-first never tells whether the address has an account or passkeys: for an address
with none, ``allowCredentials`` lists a decoy id derived from the address with a keyed
hash, so the answer has the same shape and stays the same across requests; entries carry
no ``transports`` (which would tell a decoy from a real credential), and decoys take one
of the id lengths common authenticators use. An address with several passkeys still
lists several entries: that count is what it can reveal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import (
    options_to_json_dict,
    parse_authentication_credential_json,
    parse_authenticator_data,
)
from webauthn.helpers.structs import (
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from sekisho.core.clients import ClientInfo
from sekisho.core.encoding import base64url
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import AuditEvent, Passkey
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.ceremony import (
    Ceremonies,
    StartedCeremony,
    parse_client_data,
    refuse,
    verifier_said,
)
from sekisho.methods.passkey.relying_party import RelyingParty
from sekisho.policy.assurance import Attestation, passkey_assurance

PURPOSE = "passkey-signin"
FLOW_KIND = "passkey_signin"
_DECOY = "passkey-decoy"
DECOY_LENGTHS = (16, 20, 32, 64)


@dataclass(frozen=True, slots=True)
class PasskeyProof:
    """What a passkey sign-in proved (see :func:`sekisho.policy.assurance.passkey_assurance`)."""

    email: str
    flow_id: str
    passkey: Passkey | None
    amr: tuple[str, ...]
    aal: int
    via: str = "passkey"


class PasskeySignIn:
    def __init__(self, *, keys: Keyring, relying_party: RelyingParty) -> None:
        self._keys = keys
        self._rp = relying_party
        self._ceremonies = Ceremonies(
            keys=keys,
            relying_party=relying_party,
            purpose=PURPOSE,
            flow_kind=FLOW_KIND,
            failure_event="passkey.signin.failed",
        )

    def begin(
        self,
        repos: Repositories,
        *,
        email: str | None,
        binding: str,
        client: ClientInfo,
        now: datetime,
    ) -> StartedCeremony:
        """Options for usernameless or autofill sign-in (``email`` None, empty
        allowCredentials), or email-first (the address's credentials, or a decoy)."""
        allow: list[PublicKeyCredentialDescriptor] = []
        if email is not None:
            user = repos.users.by_email(email)
            registered = repos.passkeys.for_user(user.id) if user else []
            allow = [
                PublicKeyCredentialDescriptor(id=passkey.credential_id) for passkey in registered
            ] or [PublicKeyCredentialDescriptor(id=self._decoy_id(email))]
        challenge = self._ceremonies.new_challenge()
        options = generate_authentication_options(
            rp_id=self._rp.rp_id,
            challenge=challenge,
            timeout=int(self._rp.challenge_ttl.total_seconds() * 1000),
            allow_credentials=allow,
            user_verification=(
                UserVerificationRequirement.REQUIRED
                if self._rp.requires_user_verification
                else UserVerificationRequirement.PREFERRED
            ),
        )
        flow_id = self._ceremonies.open(
            repos, challenge=challenge, email=email or "", binding=binding, client=client, now=now
        )
        return StartedCeremony(flow_id=flow_id, options=dict(options_to_json_dict(options)))

    def _decoy_id(self, email: str) -> bytes:
        """A credential id that looks like one: stable for the address, keyed, and of one
        of the lengths common authenticators use."""
        material = bytes.fromhex(
            self._keys.digest(_DECOY, email) + self._keys.digest(_DECOY, email + "#2")
        )
        return material[: DECOY_LENGTHS[material[0] % len(DECOY_LENGTHS)]]

    def finish(
        self,
        repos: Repositories,
        *,
        flow_id: str,
        credential: dict[str, Any],
        binding: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> PasskeyProof:
        client_data = parse_client_data(credential)
        flow = self._ceremonies.spend(
            repos, flow_id=flow_id, client_data=client_data, binding=binding, client=client, now=now
        )

        def refused(
            reason: str,
            code: ErrorCode = ErrorCode.passkey_rejected,
            passkey: Passkey | None = None,
            verifier: str | None = None,
            public: dict[str, str] | None = None,
        ) -> SekishoError:
            return refuse(
                repos,
                event="passkey.signin.failed",
                reason=reason,
                client=client,
                now=now,
                user_id=passkey.user_id if passkey else None,
                email=flow.email or None,
                flow_id=flow.id,
                code=code,
                audit_detail={"verifier": verifier} if verifier else None,
                public_detail=public,
            )

        try:
            parsed = parse_authentication_credential_json(credential)
        except Exception as error:
            raise refused("malformed", ErrorCode.passkey_invalid) from error
        passkey = repos.passkeys.by_credential_id(parsed.raw_id)
        if passkey is None:
            raise refused(
                "unknown_credential",
                ErrorCode.passkey_unknown,
                public={"credential_id": base64url(parsed.raw_id)},
            )
        user = repos.users.by_id(passkey.user_id)
        if user is None or (flow.email and user.email != flow.email):
            raise refused("credential_not_allowed", passkey=passkey)
        handle = parsed.response.user_handle
        if handle is None and not flow.email:
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
                require_user_verification=self._rp.requires_user_verification,
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
            self._audit_clone(repos, passkey, user.email, new_count, client, now)
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
        return PasskeyProof(
            email=user.email,
            flow_id=flow.id,
            passkey=passkey,
            amr=assurance.amr,
            aal=assurance.aal,
        )

    @staticmethod
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
