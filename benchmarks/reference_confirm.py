"""The reference app's step-up confirmation of a withdrawal: only the essential work of
Sekisho's (``sekisho/confirmation_service.py``, docs/flows/step-up.md).

- ``POST /confirmations`` (the application, with the person's access token): the token
  checked as UserInfo checks it, its ``jti`` row joined to a live grant, session and
  client; the session's AAL (2) and ``auth_time`` (``MAX_AGE``) against the step-up
  requirement; the details exactly ``amount`` (decimal string), ``currency`` (ISO 4217)
  and ``destination`` (printable text); one confirmation row holding their RFC 8785 form
  and ``details_hash`` (base64url SHA-256 of it), one audit row.
- ``POST /confirmations/{id}/options`` (the person's browser, signed in): the session
  by its cookie's keyed hash, the person's own pending confirmation and passkeys; the
  challenge ``nonce || SHA-256(JCS({action, aud, details_hash, jti, sub}))``; py_webauthn
  options naming those passkeys, user verification required; one flow row bound to the
  browser's binding cookie.
- ``POST /confirmations/{id}/verify``: the flow spent by one ``UPDATE ... RETURNING``,
  its binding, account and challenge (this transaction's) checked, the credential one
  of the person's; py_webauthn verification with UV required, the sign count updated;
  the ``txn-confirmation+jwt`` signed (ES256, joserfc) and stored by one
  ``UPDATE ... WHERE confirmed_at IS NULL`` (confirmed once), one audit row.
- ``GET /confirmations/{id}`` (the application, ``client_secret_basic``): the client's
  own confirmation and its signed token, read outside any write transaction.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import rfc8785
from babel.numbers import list_currencies
from starlette.requests import Request
from starlette.responses import JSONResponse
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import options_to_json_dict, parse_authentication_credential_json
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from benchmarks import reference_oidc

if TYPE_CHECKING:
    from benchmarks.reference_app import Reference

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS confirmations (id TEXT PRIMARY KEY, client_id TEXT NOT NULL,"
    " user_id TEXT NOT NULL, session_id TEXT NOT NULL, action TEXT NOT NULL,"
    " details TEXT NOT NULL, details_hash TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
    " expires_at DOUBLE PRECISION NOT NULL, confirmed_at DOUBLE PRECISION,"
    " credential_id TEXT, token TEXT)",
    "CREATE INDEX IF NOT EXISTS credentials_user ON credentials (user_id)",
)
ACTION = "withdrawal"
REQUIRED_AAL = 2
MAX_AGE = 12 * 3600.0
REQUEST_TTL = 600.0
CONFIRMATION_TTL = 300.0
NONCE_BYTES = 32
AMOUNT = re.compile(r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,4})?$")
CURRENCIES = frozenset(list_currencies())
ACR = "urn:sekisho:aal2"
AMR = ["hwk", "user"]
_SESSION = "SELECT u.id, u.email FROM sessions s JOIN users u ON u.id = s.user_id"
_SESSION += " WHERE s.token = ? AND s.expires_at > ?"
_PENDING = "SELECT client_id, details_hash, details FROM confirmations WHERE id = ? AND user_id = ?"
_PENDING += " AND confirmed_at IS NULL AND expires_at > ?"


def _refused(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def _details(details: Any) -> dict[str, str] | None:
    """The withdrawal's details if they are exactly its three fields, each valid."""
    if not isinstance(details, dict) or set(details) != {"amount", "currency", "destination"}:
        return None
    amount, currency, destination = details["amount"], details["currency"], details["destination"]
    if (
        not all(isinstance(value, str) for value in (amount, currency, destination))
        or not AMOUNT.match(amount)
        or currency not in CURRENCIES
        or not destination.strip()
        or len(destination) > 200
        or not destination.isprintable()
    ):
        return None
    return {"amount": amount, "currency": currency, "destination": destination}


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _binding(confirmation_id: str, client_id: str, user_id: str, details_hash: str) -> bytes:
    document = {
        "action": ACTION,
        "aud": client_id,
        "details_hash": details_hash,
        "jti": confirmation_id,
        "sub": user_id,
    }
    return hashlib.sha256(rfc8785.dumps(document)).digest()


async def create(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    now = time.time()
    body = await request.json()
    claims = reference_oidc.access_claims(ref, request, now)
    if claims is None:
        return _refused("access_token_invalid", 401)
    store = ref.store
    try:
        grant = store.run(
            "SELECT g.client_id, g.user_id, g.session_id, g.auth_time, s.aal FROM access_tokens a"
            " JOIN grants g ON g.id = a.grant_id JOIN sessions s ON s.id = g.session_id"
            " JOIN clients c ON c.id = g.client_id"
            " WHERE a.jti = ? AND a.expires_at > ? AND g.revoked = 0 AND s.expires_at > ?",
            (claims["jti"], now, now),
        )
        if not grant:
            store.rollback()
            return _refused("access_token_invalid", 401)
        client_id, user_id, session_id, auth_time, aal = grant[0]
        details = _details(body.get("details")) if body.get("action") == ACTION else None
        if details is None:
            store.rollback()
            return _refused("invalid_details")
        if aal < REQUIRED_AAL or now - auth_time > MAX_AGE:
            store.rollback()
            return _refused("insufficient_user_authentication", 401)
        canonical = rfc8785.dumps(details)
        details_hash = _b64url(hashlib.sha256(canonical).digest())
        confirmation_id = secrets.token_urlsafe(32)
        store.run(
            "INSERT INTO confirmations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)",
            (
                confirmation_id,
                client_id,
                user_id,
                session_id,
                ACTION,
                canonical.decode(),
                details_hash,
                now,
                now + REQUEST_TTL,
            ),
        )
        ref.audit("confirmation.requested", user_id, now)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    answer = {
        "id": confirmation_id,
        "url": f"{ref.origin}/confirm/{confirmation_id}",
        "action": ACTION,
        "details_hash": details_hash,
        "expires_at": now + REQUEST_TTL,
    }
    return JSONResponse(answer, status_code=201)


def _mine(ref: Reference, request: Request, now: float) -> tuple[Any, ...] | None:
    """(user id, email, client id, details hash, canonical details) of the signed-in
    person's own pending confirmation, inside the write transaction."""
    cookie = request.cookies.get("session", "")
    session = ref.store.run(_SESSION, (ref.digest("session", cookie), now))
    if not session:
        return None
    pending = ref.store.run(_PENDING, (request.path_params["id"], session[0][0], now))
    return (*session[0], *pending[0]) if pending else None


async def options(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    now = time.time()
    store = ref.store
    binding = request.cookies.get("binding") or secrets.token_urlsafe(32)
    try:
        mine = _mine(ref, request, now)
        user_id, email, client_id, details_hash, _details = mine or ("", "", "", "", "")
        passkeys = store.run("SELECT id FROM credentials WHERE user_id = ?", (user_id,))
        if mine is None or not passkeys:
            store.rollback()
            return _refused("confirmation_unknown", 404)
        confirmation_id = request.path_params["id"]
        challenge = secrets.token_bytes(NONCE_BYTES) + _binding(
            confirmation_id, client_id, user_id, details_hash
        )
        generated = generate_authentication_options(
            rp_id=ref.rp_id,
            challenge=challenge,
            timeout=300000,
            allow_credentials=[
                PublicKeyCredentialDescriptor(id=bytes.fromhex(row[0])) for row in passkeys
            ],
            user_verification=UserVerificationRequirement.REQUIRED,
        )
        flow_id = secrets.token_urlsafe(16)
        store.run(
            "INSERT INTO flows VALUES (?, ?, ?, 'pending', ?, ?)",
            (flow_id, email, ref.digest("binding", binding), challenge.hex(), now + 300),
        )
        store.commit()
    except BaseException:
        store.rollback()
        raise
    response = JSONResponse({"flow_id": flow_id, "publicKey": options_to_json_dict(generated)})
    response.set_cookie("binding", binding, httponly=True, samesite="lax")
    return response


async def verify(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    now = time.time()
    body = await request.json()
    store = ref.store
    confirmation_id = request.path_params["id"]
    try:
        mine = _mine(ref, request, now)
        flow = store.run(
            "UPDATE flows SET state = 'completed' WHERE id = ? AND state = 'pending'"
            " AND expires_at > ? RETURNING email, binding, challenge",
            (body["flow_id"], now),
        )
        parsed = parse_authentication_credential_json(body["credential"])
        found = store.run(
            "SELECT user_id, public_key, sign_count FROM credentials WHERE id = ?",
            (parsed.raw_id.hex(),),
        )
        if mine is None or not flow or not found:
            store.rollback()
            return _refused("passkey_rejected")
        user_id, email, client_id, details_hash, canonical = mine
        challenge = bytes.fromhex(flow[0][2])
        bound = _binding(confirmation_id, client_id, user_id, details_hash)
        browser = ref.digest("binding", request.cookies.get("binding", ""))
        if (
            flow[0][0] != email
            or not hmac.compare_digest(flow[0][1], browser)
            or not hmac.compare_digest(challenge[NONCE_BYTES:], bound)
            or found[0][0] != user_id
        ):
            store.rollback()
            return _refused("invalid_or_expired")
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge,
            expected_rp_id=ref.rp_id,
            expected_origin=ref.origin,
            credential_public_key=bytes.fromhex(found[0][1]),
            credential_current_sign_count=found[0][2],
            require_user_verification=True,
        )
        store.run(
            "UPDATE credentials SET sign_count = ? WHERE id = ?",
            (verified.new_sign_count, parsed.raw_id.hex()),
        )
        token = ref.signer.sign(
            {
                "iss": ref.origin,
                "aud": client_id,
                "sub": user_id,
                "jti": confirmation_id,
                "iat": int(now),
                "exp": int(now + CONFIRMATION_TTL),
                "action": ACTION,
                "details": json.loads(canonical),
                "details_hash": details_hash,
                "acr": ACR,
                "amr": AMR,
                "auth_time": int(now),
            },
            "txn-confirmation+jwt",
        )
        if not store.run(
            "UPDATE confirmations SET confirmed_at = ?, expires_at = ?, credential_id = ?,"
            " token = ? WHERE id = ? AND confirmed_at IS NULL AND expires_at > ? RETURNING id",
            (now, now + CONFIRMATION_TTL, parsed.raw_id.hex(), token, confirmation_id, now),
        ):
            store.rollback()
            return _refused("confirmation_used")
        ref.audit("confirmation.confirmed", user_id, now)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    return JSONResponse({"redirect_to": None})


async def collect(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    now = time.time()
    store = ref.store
    try:
        client_id = reference_oidc.basic_client(
            ref, request.headers.get("authorization", ""), reading=True
        )
        found = store.read(
            "SELECT action, details, details_hash, expires_at, confirmed_at, token"
            " FROM confirmations WHERE id = ? AND client_id = ?",
            (request.path_params["id"], client_id),
        )
    finally:
        store.rollback()
    if client_id is None:
        return _refused("client_authentication_failed", 401)
    if not found:
        return _refused("confirmation_unknown", 404)
    action, details, details_hash, expires_at, confirmed_at, token = found[0]
    status = "expired" if expires_at <= now else "confirmed" if confirmed_at else "pending"
    answer = {
        "id": request.path_params["id"],
        "status": status,
        "action": action,
        "details": json.loads(details),
        "details_hash": details_hash,
        "expires_at": expires_at,
        "confirmation": token if status == "confirmed" else None,
    }
    return JSONResponse(answer)
