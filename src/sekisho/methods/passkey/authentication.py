"""Signing in with a passkey (WebAuthn L3 §7.2): usernameless, autofill, or email-first.

py_webauthn checks type, challenge, origin, rpIdHash, UP/UV and the signature;
:mod:`.assertion` (shared with transaction confirmation) adds what it leaves to the
relying party, with this module's choice of credential and account:
- §7.2 step 5/6: the credential must be registered, belong to the account the ceremony
  named (email-first), and the ``userHandle`` must be that account's handle (required
  when no account was named: discoverable credentials return it);
- §7.2 step 13: no cross-origin (framed) ceremonies;
- BE must equal the stored value (§6.1.3; py_webauthn itself refuses BE=0 with BS=1);
- a signature counter that does not increase (when either value is non-zero) marks a
  possible clone, refused or audited as ``passkey_sign_count_policy`` says (§7.2, the
  signCount step; the library's own check is switched off by passing 0);
- stored state changes only after every check passed (§7.2, the final step).

Email-first never tells whether the address has an account or how many passkeys it has:
``allowCredentials`` always lists at least ``EMAIL_FIRST_ENTRIES`` ids, the address's
credentials padded with decoy ids derived from the address with a keyed hash, in an
order set by the ids' bytes; so every address with up to that many passkeys, and every
address without an account, gets an answer of the same shape and size, stable across
requests. Entries carry no ``transports`` (which would tell a decoy from a real
credential), and decoys take one of the id lengths common authenticators use. A full
session cannot register more than ``EMAIL_FIRST_ENTRIES`` passkeys
(``registration.PASSKEYS_PER_ACCOUNT``); only an account that went past it from a
restricted session (recovery, tier enrolment) lists more entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webauthn import generate_authentication_options
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.structs import (
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from sekisho.core.clients import ClientInfo
from sekisho.core.encoding import base64url
from sekisho.core.keys import Keyring
from sekisho.core.ports import Repositories
from sekisho.core.records import Passkey, User
from sekisho.errors import ErrorCode, SekishoError
from sekisho.methods.passkey.assertion import AssertionVerifier
from sekisho.methods.passkey.ceremony import (
    Ceremonies,
    StartedCeremony,
    parse_client_data,
    refuse,
)
from sekisho.methods.passkey.relying_party import RelyingParty

PURPOSE = "passkey-signin"
FLOW_KIND = "passkey_signin"
_DECOY = "passkey-decoy"
DECOY_LENGTHS = (16, 20, 32, 64)
EMAIL_FIRST_ENTRIES = 8
"""Entries of every email-first ``allowCredentials``: more than nearly any account
holds, and a list size security keys take in one request."""


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
        self._assertions = AssertionVerifier(
            relying_party=relying_party, ceremonies=self._ceremonies
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
            ids = [passkey.credential_id for passkey in registered]
            ids += [self._decoy_id(email, n) for n in range(EMAIL_FIRST_ENTRIES - len(ids))]
            allow = [PublicKeyCredentialDescriptor(id=entry) for entry in sorted(ids)]
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

    def _decoy_id(self, email: str, number: int) -> bytes:
        """The address's ``number``-th decoy: a credential id that looks like one, stable
        for the address, keyed, and of one of the lengths common authenticators use."""
        label = f"{number}:{email}"
        material = bytes.fromhex(
            self._keys.digest(_DECOY, label) + self._keys.digest(_DECOY, label + "#2")
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

        def locate(credential_id: bytes) -> tuple[Passkey, User]:
            passkey = repos.passkeys.by_credential_id(credential_id)
            if passkey is None:
                raise refused(
                    "unknown_credential",
                    ErrorCode.passkey_unknown,
                    public={"credential_id": base64url(credential_id)},
                )
            user = repos.users.by_id(passkey.user_id)
            if user is None or (flow.email and user.email != flow.email):
                raise refused("credential_not_allowed", passkey=passkey)
            return passkey, user

        verified = self._assertions.verify(
            repos,
            flow=flow,
            client_data=client_data,
            credential=credential,
            locate=locate,
            refused=refused,
            require_user_verification=self._rp.requires_user_verification,
            user_handle_required=not flow.email,
            client=client,
            now=now,
        )
        return PasskeyProof(
            email=verified.user.email,
            flow_id=flow.id,
            passkey=verified.passkey,
            amr=verified.assurance.amr,
            aal=verified.assurance.aal,
        )
