"""Confirming one transaction with a passkey (WebAuthn L3 §7.2, the challenge built as
:mod:`sekisho.policy.confirmations` says, SECURITY.md case 52).

The same relying-party checks as signing in (:mod:`.authentication`), for a person
already known: the credential must be one of the passkeys offered for this account
(``allowCredentials``), user verification is always required whatever the
deployment's sign-in setting, and the challenge must carry this transaction's binding.
The challenge is spent before anything is verified, so a response is checked once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from webauthn import generate_authentication_options
from webauthn.helpers import (
    options_to_json_dict,
)
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from sekisho.core.clients import ClientInfo
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
from sekisho.policy.assurance import Assurance
from sekisho.policy.confirmations import Transaction

PURPOSE = "passkey-confirm"
FLOW_KIND = "passkey_confirm"
FAILURE_EVENT = "confirmation.passkey.failed"


@dataclass(frozen=True, slots=True)
class TransactionProof:
    passkey: Passkey
    assurance: Assurance


class PasskeyConfirmation:
    def __init__(self, *, keys: Keyring, relying_party: RelyingParty) -> None:
        self._rp = relying_party
        self._ceremonies = Ceremonies(
            keys=keys,
            relying_party=relying_party,
            purpose=PURPOSE,
            flow_kind=FLOW_KIND,
            failure_event=FAILURE_EVENT,
        )
        self._assertions = AssertionVerifier(
            relying_party=relying_party, ceremonies=self._ceremonies
        )

    def begin(
        self,
        repos: Repositories,
        *,
        user: User,
        passkeys: Sequence[Passkey],
        transaction: Transaction,
        binding: str,
        client: ClientInfo,
        now: datetime,
    ) -> StartedCeremony:
        """Request options naming the account's passkeys that may confirm, with the
        transaction bound into the challenge and user verification required."""
        challenge = transaction.challenge()
        options = generate_authentication_options(
            rp_id=self._rp.rp_id,
            challenge=challenge,
            timeout=int(self._rp.challenge_ttl.total_seconds() * 1000),
            allow_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys],
            user_verification=UserVerificationRequirement.REQUIRED,
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
        allowed: Sequence[Passkey],
        transaction: Transaction,
        flow_id: str,
        credential: dict[str, Any],
        binding: str | None,
        client: ClientInfo,
        now: datetime,
    ) -> TransactionProof:
        """The passkey (one of ``allowed``, the account's, read by the caller in this
        transaction) that confirmed exactly ``transaction``."""
        client_data = parse_client_data(credential)
        flow = self._ceremonies.spend(
            repos, flow_id=flow_id, client_data=client_data, binding=binding, client=client, now=now
        )

        def refused(
            reason: str,
            code: ErrorCode = ErrorCode.passkey_rejected,
            *,
            passkey: Passkey | None = None,
            verifier: str | None = None,
        ) -> SekishoError:
            """``passkey`` adds nothing here: the account is known before the ceremony."""
            return refuse(
                repos,
                event=FAILURE_EVENT,
                reason=reason,
                client=client,
                now=now,
                user_id=user.id,
                email=user.email,
                flow_id=flow.id,
                code=code,
                audit_detail={"confirmation": transaction.jti}
                | ({"verifier": verifier} if verifier else {}),
            )

        if flow.email != user.email or not transaction.bound_in(client_data.challenge):
            raise refused("challenge_of_another_transaction", ErrorCode.invalid_or_expired)

        def locate(credential_id: bytes) -> tuple[Passkey, User]:
            # Found among the passkeys the caller has just read for this account, not
            # read again by credential id: anything else is not allowed, whoever's it is.
            for passkey in allowed:
                if passkey.credential_id == credential_id and passkey.user_id == user.id:
                    return passkey, user
            raise refused("credential_not_allowed")

        verified = self._assertions.verify(
            repos,
            flow=flow,
            client_data=client_data,
            credential=credential,
            locate=locate,
            refused=refused,
            require_user_verification=True,
            user_handle_required=False,
            client=client,
            now=now,
        )
        return TransactionProof(passkey=verified.passkey, assurance=verified.assurance)
