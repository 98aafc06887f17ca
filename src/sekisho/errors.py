"""One catalogue of stable error codes, each with its HTTP status and message.

Invariant: every refusal the server makes is one of these codes, so clients can rely on
``error`` in JSON bodies and the pages show a readable, translated message; nothing
else (no stack trace, no internal detail) leaves the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status: int
    message: str


class ErrorCode(Enum):
    """Stable machine-readable error codes. Never renumber or rename one."""

    invalid_request = ErrorSpec(400, "The request could not be understood.")
    invalid_email = ErrorSpec(422, "Enter a valid email address, like name@example.com.")
    invalid_field = ErrorSpec(422, "A field is missing, repeated or malformed.")
    invalid_code_format = ErrorSpec(422, "Enter the 6-digit code from the email.")
    unsupported_media_type = ErrorSpec(415, "This content type is not accepted here.")
    payload_too_large = ErrorSpec(413, "The request is too large.")
    request_timeout = ErrorSpec(408, "The request took too long to arrive. Try again.")
    csrf_failed = ErrorSpec(
        403, "This form has expired or came from another site. Reload the page and try again."
    )
    other_browser = ErrorSpec(403, "This sign-in was started in another browser.")
    invalid_or_expired = ErrorSpec(
        400, "This sign-in link or code is invalid or has expired. Request a new one."
    )
    code_incorrect = ErrorSpec(400, "That code is not correct.")
    invalid_credentials = ErrorSpec(
        400,
        "The email address or password is not correct, or password sign-in is not available for this account. Sign in by email instead.",
    )
    password_too_long = ErrorSpec(422, "That password is too long.")
    approval_refused = ErrorSpec(
        400,
        "That number did not match. This link can no longer approve a sign-in; type the code from the email on the screen where you asked to sign in.",
    )
    rate_limited = ErrorSpec(429, "Too many attempts. Wait a little and try again.")
    not_authenticated = ErrorSpec(401, "You are not signed in.")
    reauthentication_required = ErrorSpec(
        403, "For your security, sign in again to make this change."
    )
    passkey_invalid = ErrorSpec(400, "The passkey response could not be read. Try again.")
    passkey_rejected = ErrorSpec(
        400, "The passkey could not be verified. Try again, or use another way to sign in."
    )
    passkey_unknown = ErrorSpec(
        400, "This passkey is not registered here. Use another passkey or sign in by email."
    )
    passkey_not_allowed = ErrorSpec(
        403,
        "This kind of passkey or security key is not allowed here. Use one your organisation gave you.",
    )
    passkey_already_registered = ErrorSpec(409, "This passkey is already registered.")
    passkey_limit_reached = ErrorSpec(
        409,
        "This account already has as many passkeys as it can hold. Remove one you no longer use, then add the new one.",
    )
    wrong_origin = ErrorSpec(
        421,
        "You opened Sekisho at another address. Sign-in links and passkeys work only at its public address: open Sekisho there.",
    )
    not_found = ErrorSpec(404, "There is nothing here.")
    method_not_allowed = ErrorSpec(405, "This method is not allowed here.")
    service_unavailable = ErrorSpec(503, "The service is unavailable right now. Try again shortly.")
    internal_error = ErrorSpec(500, "Something went wrong on our side. Try again shortly.")
    signin_method_not_allowed = ErrorSpec(
        403,
        "This account does not accept this way of signing in. Use a passkey or security key it accepts.",
    )
    restricted_session = ErrorSpec(
        403,
        "Your account now needs a passkey. Add one first: until then this session can do nothing else.",
    )
    last_way_in = ErrorSpec(
        409,
        "This is the last way to sign in that your account allows. Add another passkey before removing this one.",
    )
    code_attempts_exhausted = ErrorSpec(
        400,
        "Too many wrong codes: this code no longer works. The link in the same email still signs you in on the device where you asked for it; or ask for a new email.",
    )
    recovery_failed = ErrorSpec(
        400,
        "That email address and recovery code do not match a recovery code that can be used. Check both and try again.",
    )
    recovery_code_format = ErrorSpec(
        422, "Enter a recovery code: 16 letters and digits, such as K7QM-3XVD-9RTA-HW2P."
    )
    session_restricted = ErrorSpec(
        403,
        "You signed in with a recovery code: add a new passkey first. Until then this session can do nothing else.",
    )
    recovery_hold = ErrorSpec(
        403,
        "Your account was recovered recently, so this change is on hold for a while to protect you. Try again after the time shown on your account page.",
    )
    operator_passkey_required = ErrorSpec(
        403,
        "Operator pages need a sign-in with a passkey. Sign out, then sign in with your passkey to open this page.",
    )
    api_key_invalid = ErrorSpec(
        401, "This request needs a valid API key: send Authorization: Bearer followed by the key."
    )
    insufficient_scope = ErrorSpec(403, "This API key does not have the scope this request needs.")
    not_an_operator = ErrorSpec(
        403,
        "Only an operator, an address in admin_emails, may open, approve or cancel a recovery.",
    )
    api_key_no_operator = ErrorSpec(
        403,
        "This API key names no operator, so it cannot act on recovery cases: make a new key with the operator's address (sekisho api-keys create --operator).",
    )
    invalid_client_metadata = ErrorSpec(
        400, "These client settings cannot be accepted; the explanation says why."
    )
    client_exists = ErrorSpec(409, "A client with this id already exists.")
    recovery_case_refused = ErrorSpec(
        409,
        "This recovery step is refused: the account already has a recovery under way, the case is unknown, approved, used or expired, or the operator who opened it tried to approve it. The explanation says which.",
    )
    tier_refused = ErrorSpec(
        409,
        "This change is refused: it names a tier the policy does not declare, or would leave the account with no way to sign in. The explanation says which.",
    )
    access_token_invalid = ErrorSpec(
        401, "This request needs a valid access token: send Authorization: Bearer and the token."
    )
    insufficient_user_authentication = ErrorSpec(
        401,
        "The person must sign in again, more strongly or more recently, before this action. WWW-Authenticate says how (RFC 9470).",
    )
    client_authentication_failed = ErrorSpec(
        401, "Client authentication failed: send the client id and secret with HTTP Basic."
    )
    unknown_action = ErrorSpec(422, "The policy declares no such action.")
    invalid_details = ErrorSpec(422, "The details do not match the action's declared fields.")
    invalid_return_uri = ErrorSpec(
        422, "The return URI must be one of the client's registered redirect URIs."
    )
    email_unchanged = ErrorSpec(422, "That is already your account's email address.")
    email_change_invalid = ErrorSpec(
        400,
        "This confirmation link or code is invalid, used or expired. Ask again from your account page.",
    )
    email_change_unavailable = ErrorSpec(
        409, "This address cannot be used for your account. Ask again with another address."
    )
    confirmation_unknown = ErrorSpec(404, "There is no such confirmation.")
    confirmation_pending = ErrorSpec(409, "This confirmation has not been confirmed yet.")
    confirmation_used = ErrorSpec(409, "This confirmation has already been used.")
    confirmation_expired = ErrorSpec(410, "This confirmation has expired. Ask again.")
    confirmation_mismatch = ErrorSpec(
        409,
        "This confirmation was given for another action or other details. It can no longer be used.",
    )
    confirmation_passkey_required = ErrorSpec(
        403,
        "Confirming this needs a passkey that verifies you (with a PIN or biometrics). Add one on your account page first.",
    )

    @property
    def status(self) -> int:
        return self.value.status

    @property
    def message(self) -> str:
        return self.value.message


class SekishoError(Exception):
    """A refusal with a stable code.

    ``persist`` marks refusals whose bookkeeping (a counted failed attempt, a burned
    code) must be committed even though the request fails; every other error rolls
    back the transaction so that nothing is stored half-way.
    """

    def __init__(
        self,
        code: ErrorCode,
        *,
        persist: bool = False,
        retry_after: int | None = None,
        detail: dict[str, int | str] | None = None,
    ) -> None:
        super().__init__(code.name)
        self.code = code
        self.persist = persist
        self.retry_after = retry_after
        self.detail = detail or {}
