"""An example relying party: a securities account that signs people in through Sekisho
(OpenID Connect code flow with PKCE S256, configured by discovery, with Authlib's
Starlette client) and asks for a passkey before large withdrawals, the RFC 9470 way.

Its withdrawal API answers ``401`` with ``WWW-Authenticate: Bearer
error="insufficient_user_authentication", acr_values="phr", max_age=N`` (RFC 9470 §3)
when the ID token's ``acr`` or ``auth_time`` do not meet the rule; the page that uses it
reads the challenge and sends the person back to Sekisho's ``/authorize`` with those
values (RFC 9470 §4, OIDC Core §3.1.2.1). Its pages are in English and Japanese, as the
browser asks, and it passes that language to Sekisho as ``ui_locales``. The ledger is
kept in memory: this is an example, not a bank.
"""

from __future__ import annotations

import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.templating import Jinja2Templates

from examples.brokerage.language import colon, language_of, translator

PHISHING_RESISTANT = "phr"
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
    """Withdrawals above this many yen need a passkey proof (``acr`` = ``phr``)."""
    step_up_max_age: int = 300
    """...made at most this many seconds ago (``auth_time``)."""

    @classmethod
    def from_environment(cls) -> BrokerageSettings:
        return cls(
            issuer=os.environ["BROKERAGE_ISSUER"],
            client_id=os.environ["BROKERAGE_CLIENT_ID"],
            client_secret=os.environ["BROKERAGE_CLIENT_SECRET"],
            origin=os.environ["BROKERAGE_ORIGIN"],
            session_key=os.environ["BROKERAGE_SESSION_KEY"],
            threshold=int(os.environ.get("BROKERAGE_THRESHOLD", "100000")),
            step_up_max_age=int(os.environ.get("BROKERAGE_STEP_UP_MAX_AGE", "300")),
        )


@dataclass
class Account:
    balance: int = 1_250_000
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


def required_challenge(
    settings: BrokerageSettings, claims: dict[str, Any], amount: int, now: float
) -> Challenge | None:
    """The step-up rule: above the threshold, a passkey (``acr`` ``phr``) proved within
    ``step_up_max_age`` seconds; below it, any sign-in."""
    if amount <= settings.threshold:
        return None
    recent = now - float(claims.get("auth_time", 0)) <= settings.step_up_max_age
    if claims.get("acr") == PHISHING_RESISTANT and recent:
        return None
    return Challenge(acr_values=PHISHING_RESISTANT, max_age=settings.step_up_max_age)


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

    def withdraw(claims: dict[str, Any], amount: int) -> JSONResponse:
        """The withdrawal API's decision, shared by the JSON endpoint and the form."""
        if amount <= 0:
            return JSONResponse({"error": "invalid_amount"}, status_code=400)
        challenge = required_challenge(settings, claims, amount, time.time())
        if challenge is not None:
            return JSONResponse(
                {"error": "insufficient_user_authentication"},
                status_code=401,
                headers={"WWW-Authenticate": challenge.header()},
            )
        account = accounts.setdefault(claims["sub"], Account())
        if amount > account.balance:
            return JSONResponse({"error": "insufficient_funds"}, status_code=409)
        account.balance -= amount
        account.history.insert(0, (datetime.now(UTC).date().isoformat(), "Withdrawal", -amount))
        return JSONResponse({"balance": account.balance}, status_code=201)

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
        return withdraw(claims, amount)

    @app.post("/withdraw")
    async def withdraw_form(request: Request) -> Response:
        """The page's form: on an RFC 9470 challenge, retry the authorization with the
        challenge's values; the person submits again once back."""
        claims = signed_in(request)
        form = await request.form()
        if claims is None or form.get("csrf") != request.session.get("csrf"):
            return RedirectResponse("/", status_code=303)
        raw = str(form.get("amount", ""))
        answer = withdraw(claims, int(raw) if raw.isdigit() and len(raw) <= 12 else 0)
        challenge = Challenge.parse(answer.headers.get("www-authenticate", ""))
        if challenge is not None:
            request.session["stepping_up"] = True
            query = f"acr_values={challenge.acr_values}&max_age={challenge.max_age}"
            return RedirectResponse(f"/login?{query}", status_code=303)
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
