"""An example relying party: a securities account that signs people in through Sekisho
(OpenID Connect code flow with PKCE S256, configured by discovery, with Authlib's
Starlette client) and has large withdrawals confirmed on Sekisho, bound to the amount
and the destination (docs/flows/step-up.md).

A withdrawal above the threshold asks Sekisho for a confirmation with the person's
access token. When Sekisho answers RFC 9470's ``insufficient_user_authentication``
challenge (the session is too weak or too old for the policy's ``step_up``), the app
answers its own callers with the same challenge and its page sends the person back to
Sekisho's ``/authorize`` with those values (RFC 9470 §4, OIDC Core §3.1.2.1). Otherwise
the person confirms on Sekisho's page with a passkey and comes back; the app fetches
the signed confirmation, verifies it against Sekisho's JWKS (type, issuer, audience,
expiry, action and the RFC 8785 hash of the details it is about to execute), redeems it
once, and only then moves the money. Its pages are in English and Japanese, as the
browser asks, and it passes that language to Sekisho as ``ui_locales``. The ledger is
kept in memory: this is an example, not a bank.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import rfc8785
from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import FastAPI
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from examples.brokerage.language import colon, language_of, translator

PHISHING_RESISTANT = "phr"
CONFIRMATION_TYPE = "txn-confirmation+jwt"
CHALLENGE_PARAMETER = re.compile(r'([a-z_]+)=(?:"([^"]*)"|([0-9]+))')
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


@dataclass(frozen=True)
class BrokerageSettings:
    """Where Sekisho is, who this client is, and the step-up rule."""

    issuer: str
    client_id: str
    client_secret: str
    origin: str
    session_key: str
    threshold: int = 100_000
    """Withdrawals above this many yen are confirmed on Sekisho with a passkey."""

    @classmethod
    def from_environment(cls) -> BrokerageSettings:
        return cls(
            issuer=os.environ["BROKERAGE_ISSUER"],
            client_id=os.environ["BROKERAGE_CLIENT_ID"],
            client_secret=os.environ["BROKERAGE_CLIENT_SECRET"],
            origin=os.environ["BROKERAGE_ORIGIN"],
            session_key=os.environ["BROKERAGE_SESSION_KEY"],
            threshold=int(os.environ.get("BROKERAGE_THRESHOLD", "100000")),
        )


@dataclass
class Account:
    balance: int = 1_250_000
    bank_account: str = "MUFG 0123-4567890"
    history: list[tuple[str, str, int]] = field(
        default_factory=lambda: [("2026-11-02", "Dividend, 7203 Toyota Motor", 18_400)]
    )


@dataclass(frozen=True)
class Challenge:
    """An RFC 9470 §3 ``insufficient_user_authentication`` challenge."""

    acr_values: str
    max_age: int

    def header(self) -> str:
        return (
            'Bearer error="insufficient_user_authentication", '
            'error_description="A recent passkey sign-in is required", '
            f'acr_values="{self.acr_values}", max_age={self.max_age}'
        )

    @classmethod
    def parse(cls, header: str) -> Challenge | None:
        values = {
            name: quoted or bare for name, quoted, bare in CHALLENGE_PARAMETER.findall(header)
        }
        if values.get("error") != "insufficient_user_authentication":
            return None
        return cls(acr_values=values.get("acr_values", ""), max_age=int(values.get("max_age", "0")))


def withdrawal_details(amount: int, account: Account) -> dict[str, str]:
    """The details Sekisho shows and binds (the policy's ``[actions.withdrawal]``)."""
    return {"amount": str(amount), "currency": "JPY", "destination": account.bank_account}


def details_hash(details: dict[str, str]) -> str:
    """base64url(SHA-256(RFC 8785 canonical JSON)), as Sekisho computes it."""
    digest = hashlib.sha256(rfc8785.dumps(details)).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def check_confirmation(
    token: str, *, jwks: Any, issuer: str, client_id: str, expected: dict[str, Any]
) -> dict[str, Any] | None:
    """The confirmation's claims if Sekisho signed it for this app, unexpired, for a
    withdrawal with exactly these details; None otherwise."""
    try:
        decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["ES256"])
        if decoded.header.get("typ") != CONFIRMATION_TYPE:
            return None
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": client_id},
            exp={"essential": True},
            jti={"essential": True},
            action={"essential": True, "value": "withdrawal"},
            details_hash={"essential": True, "value": details_hash(expected)},
        ).validate(decoded.claims)
    except (JoseError, ValueError):
        return None
    return dict(decoded.claims)


def create_app(settings: BrokerageSettings) -> FastAPI:
    app = FastAPI(title="Brokerage (Sekisho example)", docs_url=None, redoc_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_key,
        session_cookie="brokerage_session",
        same_site="lax",
        https_only=settings.origin.startswith("https://"),
    )
    oauth = OAuth()
    oauth.register(
        name="sekisho",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )
    sekisho: Any = oauth.create_client("sekisho")
    accounts: dict[str, Account] = {}
    confirmed_uri = f"{settings.origin}/withdrawals/confirmed"
    basic = httpx.BasicAuth(settings.client_id, settings.client_secret)

    def render(
        request: Request, name: str, context: dict[str, Any], status_code: int = 200
    ) -> Response:
        language = language_of(request.headers.get("accept-language", ""))
        return TEMPLATES.TemplateResponse(
            request,
            name,
            {**context, "lang": language, "t": translator(language), "colon": colon(language)},
            status_code=status_code,
        )

    def signed_in(request: Request) -> dict[str, Any] | None:
        claims: dict[str, Any] | None = request.session.get("claims")
        return claims

    def csrf_token(request: Request) -> str:
        token: str | None = request.session.get("csrf")
        if token is None:
            token = secrets.token_urlsafe(24)
            request.session["csrf"] = token
        return token

    def execute(claims: dict[str, Any], amount: int) -> JSONResponse:
        account = accounts.setdefault(claims["sub"], Account())
        if amount > account.balance:
            return JSONResponse({"error": "insufficient_funds"}, status_code=409)
        account.balance -= amount
        account.history.insert(0, (datetime.now(UTC).date().isoformat(), "Withdrawal", -amount))
        return JSONResponse({"balance": account.balance}, status_code=201)

    async def withdraw(request: Request, claims: dict[str, Any], amount: int) -> JSONResponse:
        """The withdrawal API's decision, shared by the JSON endpoint and the form: small
        amounts at once; large ones only after Sekisho's confirmation (202, ``confirm``
        the page to send the person to), or Sekisho's RFC 9470 challenge passed on."""
        if amount <= 0:
            return JSONResponse({"error": "invalid_amount"}, status_code=400)
        if amount <= settings.threshold:
            return execute(claims, amount)
        account = accounts.setdefault(claims["sub"], Account())
        if amount > account.balance:
            return JSONResponse({"error": "insufficient_funds"}, status_code=409)
        details = withdrawal_details(amount, account)
        async with httpx.AsyncClient(base_url=settings.issuer, timeout=10) as http:
            asked = await http.post(
                "/api/v1/confirmations",
                json={"action": "withdrawal", "details": details, "return_uri": confirmed_uri},
                headers={"Authorization": f"Bearer {request.session.get('access_token', '')}"},
            )
        if asked.status_code == 401:
            challenge = Challenge.parse(asked.headers.get("www-authenticate", ""))
            header = challenge.header() if challenge else 'Bearer error="invalid_token"'
            return JSONResponse(
                {"error": "insufficient_user_authentication" if challenge else "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": header},
            )
        if asked.status_code != 201:
            return JSONResponse({"error": "refused_by_sekisho"}, status_code=409)
        created = asked.json()
        request.session["pending"] = {
            "id": created["id"],
            "url": created["url"],
            "amount": amount,
            "details": details,
        }
        return JSONResponse({"confirm": created["url"]}, status_code=202)

    @app.get("/")
    async def home(request: Request) -> Response:
        claims = signed_in(request)
        if claims is None:
            return render(request, "signed_out.html", {})
        account = accounts.setdefault(claims["sub"], Account())
        return render(
            request,
            "account.html",
            {
                "claims": claims,
                "auth_time": datetime.fromtimestamp(claims["auth_time"], UTC).isoformat(),
                "account": account,
                "threshold": settings.threshold,
                "csrf": csrf_token(request),
                "notice": request.session.pop("notice", None),
            },
        )

    @app.get("/login")
    async def login(request: Request) -> Response:
        """Start the code flow; a step-up passes the challenge's ``acr_values`` and
        ``max_age`` on (only the values this app itself asks for)."""
        extra = {"ui_locales": language_of(request.headers.get("accept-language", ""))}
        if request.query_params.get("acr_values") == PHISHING_RESISTANT:
            extra["acr_values"] = PHISHING_RESISTANT
        max_age = request.query_params.get("max_age", "")
        if max_age.isdigit() and len(max_age) <= 6:
            extra["max_age"] = max_age
        response: Response = await sekisho.authorize_redirect(
            request, f"{settings.origin}/callback", **extra
        )
        return response

    @app.get("/callback")
    async def callback(request: Request) -> Response:
        metadata = await sekisho.load_server_metadata()
        if request.query_params.get("iss") != metadata["issuer"]:  # RFC 9207 §2.4
            return render(request, "error.html", {"error": "issuer_mismatch"}, status_code=400)
        try:
            token = await sekisho.authorize_access_token(request)
        except OAuthError as error:
            status = 200 if error.error == "unmet_authentication_requirements" else 400
            return render(request, "error.html", {"error": error.error}, status_code=status)
        claims = dict(token["userinfo"])
        request.session["access_token"] = token["access_token"]
        if request.session.pop("stepping_up", False):
            request.session["notice"] = "stepped_up"
        request.session["claims"] = {
            name: claims[name]
            for name in ("sub", "email", "name", "acr", "amr", "auth_time")
            if name in claims
        }
        return RedirectResponse("/", status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        if form.get("csrf") == request.session.get("csrf"):
            request.session.clear()
        return RedirectResponse("/", status_code=303)

    @app.post("/api/withdrawals")
    async def api_withdrawal(request: Request) -> Response:
        """JSON ``{"amount": yen}``; the session cookie authenticates (SameSite=Lax, and
        a JSON body cannot come from another site's form)."""
        claims = signed_in(request)
        if request.headers.get("content-type") != "application/json":
            return JSONResponse({"error": "unsupported_media_type"}, status_code=415)
        if claims is None:
            return JSONResponse(
                {"error": "invalid_token"},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        body = await request.json()
        amount = body.get("amount") if isinstance(body, dict) else None
        if not isinstance(amount, int) or isinstance(amount, bool):
            return JSONResponse({"error": "invalid_amount"}, status_code=400)
        return await withdraw(request, claims, amount)

    @app.post("/withdraw")
    async def withdraw_form(request: Request) -> Response:
        """The page's form: on an RFC 9470 challenge, retry the authorization with the
        challenge's values (an expired access token: a plain new one); the person
        submits again once back. A large amount goes to Sekisho's confirmation page."""
        claims = signed_in(request)
        form = await request.form()
        if claims is None or form.get("csrf") != request.session.get("csrf"):
            return RedirectResponse("/", status_code=303)
        raw = str(form.get("amount", ""))
        answer = await withdraw(
            request, claims, int(raw) if raw.isdigit() and len(raw) <= 12 else 0
        )
        if answer.status_code == 401:
            request.session["stepping_up"] = True
            challenge = Challenge.parse(answer.headers.get("www-authenticate", ""))
            if challenge is None:
                return RedirectResponse("/login", status_code=303)
            query = f"acr_values={challenge.acr_values}&max_age={challenge.max_age}"
            return RedirectResponse(f"/login?{query}", status_code=303)
        if answer.status_code == 202:
            return RedirectResponse(str(request.session["pending"]["url"]), status_code=303)
        request.session["notice"] = "withdrawn" if answer.status_code == 201 else "refused"
        return RedirectResponse("/", status_code=303)

    @app.get("/withdrawals/confirmed")
    async def confirmed(request: Request) -> Response:
        """Back from Sekisho's confirmation page: fetch the signed confirmation, verify
        it, redeem it once, and only then move the money."""
        claims = signed_in(request)
        pending: dict[str, Any] | None = request.session.pop("pending", None)
        if claims is None or pending is None:
            return RedirectResponse("/", status_code=303)
        if request.query_params.get("confirmation") != pending["id"]:
            request.session["notice"] = "refused"
            return RedirectResponse("/", status_code=303)
        metadata = await sekisho.load_server_metadata()
        async with httpx.AsyncClient(base_url=settings.issuer, timeout=10) as http:
            collected = (
                await http.get(f"/api/v1/confirmations/{pending['id']}", auth=basic)
            ).json()
            jwks = (await http.get(metadata["jwks_uri"])).json()
            verified = check_confirmation(
                str(collected.get("confirmation") or ""),
                jwks=jwks,
                issuer=metadata["issuer"],
                client_id=settings.client_id,
                expected=pending["details"],
            )
            redeemed = None
            if verified is not None and verified["sub"] == claims["sub"]:
                redeemed = await http.post(
                    f"/api/v1/confirmations/{pending['id']}/redeem",
                    json={"action": "withdrawal", "details": pending["details"]},
                    auth=basic,
                )
        if redeemed is None or redeemed.status_code != 200:
            request.session["notice"] = "refused"
            return RedirectResponse("/", status_code=303)
        answer = execute(claims, int(pending["amount"]))
        request.session["notice"] = "withdrawn" if answer.status_code == 201 else "refused"
        return RedirectResponse("/", status_code=303)

    return app


def main() -> None:
    import uvicorn

    uvicorn.run(
        create_app(BrokerageSettings.from_environment()),
        host="127.0.0.1",
        port=int(os.environ.get("BROKERAGE_PORT", "8100")),
    )


if __name__ == "__main__":
    main()
