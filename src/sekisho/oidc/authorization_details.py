"""Rich Authorization Requests (RFC 9396) carrying one transaction through the
authorization endpoint, onto the same confirmation as the first-party API
(:mod:`sekisho.confirmation_service`, SECURITY.md case 52).

- ``authorization_details`` is a JSON array (RFC 9396 §2) of exactly one object: its
  ``type`` names an ``[actions.NAME]`` of the policy file and its other members are
  exactly that action's declared detail fields (:meth:`sekisho.policy.actions.Action.check`).
  Anything else is ``invalid_authorization_details`` (§5), sent back to the client.
  One transaction per request: one passkey assertion confirms one ``details_hash``.
- The tier's ``step_up`` for the action tightens the request as if the client had asked
  for it: ``acr_values`` at least the step-up level, ``max_age`` at most the step-up
  one; the provider's existing ``acr_values`` / ``max_age`` logic then signs the person
  in again or answers ``unmet_authentication_requirements``.
- Once every other check passes, a pending :class:`~sekisho.policy.confirmations.Confirmation`
  is stored whose id is a keyed hash of the pending request's secret id (only this
  browser's cookie carries it); the person confirms it on ``/confirm/{id}``, the page
  returns to ``/authorize/resume``, and only a confirmed confirmation lets a code be
  issued. The grant names it; the token response, the access token and introspection
  carry its details (§7, §9.1), and the client redeems it once at
  ``POST /api/v1/confirmations/{txn}/redeem``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sekisho.core.keys import Keyring
from sekisho.oidc import assurance
from sekisho.oidc.errors import OAuthError
from sekisho.oidc.records import AuthorizationRequest, Client
from sekisho.policy.actions import DetailsError
from sekisho.policy.confirmations import Confirmation, canonical, details_hash, requirement
from sekisho.policy.tiers import Policy, Tier
from sekisho.store.confirmations import SqlConfirmations

PARAMETER = "authorization_details"
ERROR = "invalid_authorization_details"
MAX_LENGTH = 4096
CONFIRMATION_PURPOSE = "oidc-rar-confirmation"
RESUME_PATH = "/authorize/resume"
"""Where the confirmation page sends the browser back to (its ``return_uri``)."""


def _refuse(description: str) -> OAuthError:
    return OAuthError(ERROR, description)


def parse(
    params: Callable[[str], list[str]], policy: Policy, client: Client
) -> tuple[str, dict[str, str | int]] | None:
    """The requested action and its checked details, or None without the parameter."""
    values = params(PARAMETER)
    if not values:
        return None
    if len(values) > 1:
        raise OAuthError("invalid_request", f"{PARAMETER} is repeated.")
    if client.public:
        raise OAuthError(
            "unauthorized_client",
            "Only a confidential client may ask for authorization_details: it redeems them.",
        )
    if len(values[0]) > MAX_LENGTH:
        raise _refuse("authorization_details is too long.")
    try:
        entries = json.loads(values[0])
    except (ValueError, RecursionError) as error:  # nested past the recursion limit
        raise _refuse("authorization_details must be a JSON array.") from error
    if not isinstance(entries, list) or not entries:
        raise _refuse("authorization_details must be a non-empty JSON array.")
    if len(entries) > 1:
        raise _refuse("One transaction per request: authorization_details holds one object.")
    entry = entries[0]
    if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
        raise _refuse("Each authorization_details object needs a type.")
    action = policy.action(entry["type"])
    if action is None:
        raise _refuse(f"The type {entry['type'][:32]!r} is not supported.")
    try:
        checked = action.check({name: value for name, value in entry.items() if name != "type"})
    except DetailsError as error:
        raise _refuse(f"{action.name}: {error}") from error
    return action.name, checked


def attach(
    request: AuthorizationRequest,
    params: Callable[[str], list[str]],
    policy: Policy,
    client: Client,
) -> AuthorizationRequest:
    """``request`` with its validated ``authorization_details`` (RFC 9396 §5 errors)."""
    found = parse(params, policy, client)
    if found is None:
        return request
    action, details = found
    return dataclasses.replace(request, authorization_details=(entry(action, details),))


def entry(action: str, details: dict[str, str | int]) -> dict[str, str | int]:
    """One ``authorization_details`` object as RFC 9396 §2 writes it."""
    return {"type": action, **details}


def split(request: AuthorizationRequest) -> tuple[str, dict[str, str | int]]:
    """The one transaction a request carries: its action and details."""
    (found,) = request.authorization_details
    return str(found["type"]), {name: value for name, value in found.items() if name != "type"}


def tightened(request: AuthorizationRequest, tier: Tier) -> AuthorizationRequest:
    """The request as the tier's ``step_up`` for its action demands (RFC 9470 terms)."""
    if not request.authorization_details:
        return request
    needed = requirement(tier, split(request)[0])
    asked = min((assurance.RANK[value] for value in request.acr_values), default=1)
    acr_values = request.acr_values
    if needed.aal > asked:
        acr_values = (assurance.acr_of_level(needed.aal),)
    max_age = request.max_age
    if needed.max_age is not None:
        limit = int(needed.max_age.total_seconds())
        max_age = limit if max_age is None else min(max_age, limit)
    return dataclasses.replace(request, acr_values=acr_values, max_age=max_age)


def confirmation_id(keys: Keyring, pending: str) -> str:
    """The confirmation of a pending request: derivable only from its secret id."""
    return keys.digest(CONFIRMATION_PURPOSE, pending)


def open_confirmation(
    confirmations: SqlConfirmations,
    *,
    confirmation_id: str,
    request: AuthorizationRequest,
    user_id: str,
    session_id: str,
    now: datetime,
    lifetime: timedelta,
) -> Confirmation:
    """The pending confirmation of the request's transaction (stored once)."""
    found = confirmations.get(confirmation_id)
    if found is not None:
        return found
    action, details = split(request)
    confirmation = Confirmation(
        id=confirmation_id,
        client_id=request.client_id,
        user_id=user_id,
        session_id=session_id,
        action=action,
        details=details,
        details_hash=details_hash(details),
        return_uri=RESUME_PATH,
        created_at=now,
        expires_at=now + lifetime,
    )
    confirmations.add(confirmation, canonical_details=canonical(details).decode())
    return confirmation


def token_claims(confirmation: Confirmation) -> dict[str, Any]:
    """What the token response and the access token carry (RFC 9396 §7, §9.1): the
    confirmed details, and ``txn`` (RFC 8417 §2.2) naming the confirmation to redeem."""
    return {
        PARAMETER: [entry(confirmation.action, confirmation.details)],
        "txn": confirmation.id,
    }
