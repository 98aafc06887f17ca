"""The minimal reference: Starlette and a raw DB-API connection doing only the essential work.

Essential work, the same as Sekisho's for each operation:

- email request: HMAC of the binding, the link token and the code; supersede the
  address's pending flow; one flow row, two secret rows, one outbox row holding the
  Fernet-sealed payload; the mail sent by an in-process task over one kept SMTP
  connection, woken after the commit, and the outbox row settled;
- code verification: the flow by id, the binding checked, the code's HMAC compared,
  the secret consumed atomically, the flow completed, a session row and an audit row;
- passkey sign-in: options (a challenge row) and verify (the challenge consumed,
  py_webauthn verification with UV required, the sign count updated, a session row and
  an audit row);
- OpenID Connect authorization, code exchange, refresh and UserInfo: see
  ``benchmarks/reference_oidc.py``; a step-up confirmation: see
  ``benchmarks/reference_confirm.py``.

Run by the benchmark as ``uvicorn --factory benchmarks.reference_app:create_app``;
settings from ``REFERENCE_*`` environment variables. One connection, used on the event
loop: statements are microseconds, and one connection is SQLite's single writer.
With several worker processes (``--workers``, PostgreSQL), each has its own connection;
the Fernet key is derived from the shared secret and each delivery claims its messages
with one ``UPDATE ... RETURNING``, so a message queued by one worker is sent once by
whichever worker claims it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosmtplib
from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import options_to_json_dict, parse_authentication_credential_json
from webauthn.helpers.structs import UserVerificationRequirement

from benchmarks import reference_confirm, reference_oidc

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS users (id TEXT PRIMARY KEY, email TEXT UNIQUE NOT NULL,"
    " handle TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS flows (id TEXT PRIMARY KEY, email TEXT NOT NULL,"
    " binding TEXT NOT NULL, state TEXT NOT NULL, challenge TEXT, expires_at DOUBLE PRECISION)",
    "CREATE INDEX IF NOT EXISTS flows_email ON flows (email, state)",
    "CREATE TABLE IF NOT EXISTS secrets (flow_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " digest TEXT NOT NULL, used INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (flow_id, kind))",
    "CREATE TABLE IF NOT EXISTS outbox (id TEXT PRIMARY KEY, sealed TEXT, status TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS credentials (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
    " public_key TEXT NOT NULL, sign_count INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
    " token TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL, aal INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit (id TEXT PRIMARY KEY, event TEXT NOT NULL,"
    " user_id TEXT, at DOUBLE PRECISION NOT NULL)",
)
TTL = 900.0


class Store:
    """One connection; ``?`` placeholders, rewritten for psycopg."""

    def __init__(self, url: str) -> None:
        self.postgres = url.startswith("postgresql")
        self.connection: Any
        if self.postgres:
            import psycopg

            self.connection = psycopg.connect(url.replace("+psycopg", ""))
        else:
            self.connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")
        for statement in (*SCHEMA, *reference_oidc.SCHEMA, *reference_confirm.SCHEMA):
            self.run(statement)
        self.commit()

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        elif not self.connection.in_transaction and not sql.startswith("CREATE"):
            self.connection.execute("BEGIN IMMEDIATE")
        cursor = self.connection.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """A read outside any write transaction (SQLite autocommit: no lock taken)."""
        if self.postgres:
            sql = sql.replace("?", "%s")
        return list(self.connection.execute(sql, params).fetchall())

    def commit(self) -> None:
        self.connection.commit()

    def rollback(self) -> None:
        self.connection.rollback()


class Reference:
    def __init__(self) -> None:
        self.key = os.environ["REFERENCE_SECRET"].encode()
        self.fernet = Fernet(
            base64.urlsafe_b64encode(hashlib.sha256(self.key + b"fernet").digest())
        )
        self.origin = os.environ["REFERENCE_ORIGIN"]
        self.rp_id = os.environ["REFERENCE_RP_ID"]
        self.smtp_port = int(os.environ["REFERENCE_SMTP_PORT"])
        self.store = Store(os.environ["REFERENCE_DATABASE_URL"])
        self.wakeup = asyncio.Event()
        self.signer = reference_oidc.Signer(self.key)

    def digest(self, purpose: str, value: str) -> str:
        return hmac.new(self.key + purpose.encode(), value.encode(), hashlib.sha256).hexdigest()

    def session(self, user_id: str, event: str, aal: int) -> str:
        """A session row holding the level its sign-in proved (a passkey with user
        verification: 2), which a step-up confirmation checks."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        self.store.run(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (uuid.uuid4().hex, user_id, self.digest("session", token), now + 86400, aal),
        )
        self.audit(event, user_id, now)
        return token

    def audit(self, event: str, user_id: str | None, now: float) -> None:
        """The audit row, in the caller's transaction."""
        self.store.run(
            "INSERT INTO audit VALUES (?, ?, ?, ?)", (uuid.uuid4().hex, event, user_id, now)
        )

    async def deliver(self) -> None:
        """Send queued mail over one kept connection; woken by each request's commit."""
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.smtp_port)
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            rows = self.store.run(
                "UPDATE outbox SET status = 'sending' WHERE status = 'pending' RETURNING id, sealed"
            )
            self.store.commit()
            for message_id, sealed in rows:
                payload = json.loads(self.fernet.decrypt(sealed.encode()))
                if not smtp.is_connected:
                    await smtp.connect()
                text = (
                    f"Subject: Sign in\r\nTo: {payload['to']}\r\nFrom: ref@example.com\r\n"
                    f"Content-Type: text/plain; charset=utf-8\r\n\r\n"
                    f"{payload['link']}\r\nCode: {payload['code']}\r\n"
                )
                await smtp.sendmail("ref@example.com", [payload["to"]], text.encode())
                self.store.run(
                    "UPDATE outbox SET status = 'sent', sealed = NULL WHERE id = ?", (message_id,)
                )
                self.store.commit()


async def request_email(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    address = str((await request.json())["email"]).strip().lower()
    binding = request.cookies.get("binding") or secrets.token_urlsafe(32)
    flow_id = secrets.token_urlsafe(16)
    token = secrets.token_urlsafe(32)
    code = f"{secrets.randbelow(10**6):06d}"
    store = ref.store
    store.run(
        "UPDATE flows SET state = 'superseded' WHERE email = ? AND state = 'pending'", (address,)
    )
    store.run(
        "INSERT INTO flows VALUES (?, ?, ?, 'pending', NULL, ?)",
        (flow_id, address, ref.digest("binding", binding), time.time() + TTL),
    )
    store.run("INSERT INTO secrets VALUES (?, 'link', ?, 0)", (flow_id, ref.digest("link", token)))
    store.run(
        "INSERT INTO secrets VALUES (?, 'code', ?, 0)",
        (flow_id, ref.digest("code", f"{flow_id}:{code}")),
    )
    payload = {"to": address, "link": f"{ref.origin}/link?token={token}", "code": code}
    store.run(
        "INSERT INTO outbox VALUES (?, ?, 'pending')",
        (uuid.uuid4().hex, ref.fernet.encrypt(json.dumps(payload).encode()).decode()),
    )
    store.commit()
    ref.wakeup.set()
    response = JSONResponse({"flow_id": flow_id}, status_code=202)
    response.set_cookie("binding", binding, httponly=True, samesite="lax")
    return response


async def verify_code(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    flow_id = request.path_params["flow_id"]
    code = str((await request.json())["code"])
    binding = request.cookies.get("binding", "")
    store = ref.store
    try:
        rows = store.run(
            "SELECT f.email, f.binding, s.digest FROM flows f JOIN secrets s ON s.flow_id = f.id"
            " WHERE f.id = ? AND f.state = 'pending' AND s.kind = 'code' AND s.used = 0"
            " AND f.expires_at > ?",
            (flow_id, time.time()),
        )
        if (
            not rows
            or not hmac.compare_digest(rows[0][1], ref.digest("binding", binding))
            or not hmac.compare_digest(rows[0][2], ref.digest("code", f"{flow_id}:{code}"))
        ):
            store.rollback()
            return JSONResponse({"error": "invalid_or_expired"}, status_code=400)
        if not store.run(
            "UPDATE secrets SET used = 1 WHERE flow_id = ? AND used = 0 RETURNING kind",
            (flow_id,),
        ):
            store.rollback()
            return JSONResponse({"error": "invalid_or_expired"}, status_code=400)
        store.run("UPDATE flows SET state = 'completed' WHERE id = ?", (flow_id,))
        user = store.run("SELECT id FROM users WHERE email = ?", (rows[0][0],))
        token = ref.session(user[0][0], "signin.succeeded", aal=1)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    response = JSONResponse({"signed_in": True})
    response.set_cookie("session", token, httponly=True, samesite="lax")
    return response


async def passkey_options(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    challenge = secrets.token_bytes(32)
    options = generate_authentication_options(
        rp_id=ref.rp_id,
        challenge=challenge,
        timeout=300000,
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    flow_id = secrets.token_urlsafe(16)
    ref.store.run(
        "INSERT INTO flows VALUES (?, '', '', 'pending', ?, ?)",
        (flow_id, challenge.hex(), time.time() + 300),
    )
    ref.store.commit()
    return JSONResponse({"flow_id": flow_id, "publicKey": options_to_json_dict(options)})


async def passkey_verify(request: Request) -> JSONResponse:
    ref: Reference = request.app.state.ref
    body = await request.json()
    store = ref.store
    try:
        flow = store.run(
            "UPDATE flows SET state = 'completed' WHERE id = ? AND state = 'pending'"
            " AND expires_at > ? RETURNING challenge",
            (body["flow_id"], time.time()),
        )
        parsed = parse_authentication_credential_json(body["credential"])
        found = store.run(
            "SELECT user_id, public_key, sign_count FROM credentials WHERE id = ?",
            (parsed.raw_id.hex(),),
        )
        if not flow or not found:
            store.rollback()
            return JSONResponse({"error": "passkey_rejected"}, status_code=400)
        user_id, public_key, count = found[0]
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=bytes.fromhex(flow[0][0]),
            expected_rp_id=ref.rp_id,
            expected_origin=ref.origin,
            credential_public_key=bytes.fromhex(public_key),
            credential_current_sign_count=count,
            require_user_verification=True,
        )
        store.run(
            "UPDATE credentials SET sign_count = ? WHERE id = ?",
            (verified.new_sign_count, parsed.raw_id.hex()),
        )
        token = ref.session(user_id, "passkey.signin.succeeded", aal=2)
        store.commit()
    except BaseException:
        store.rollback()
        raise
    response = JSONResponse({"signed_in": True})
    response.set_cookie("session", token, httponly=True, samesite="lax")
    return response


async def healthz(request: Request) -> JSONResponse:
    """The HTTP floor: routing and a JSON answer, no work."""
    return JSONResponse({"status": "ok"})


async def add_user(request: Request) -> JSONResponse:
    """Benchmark set-up only: an account, and optionally its passkey's public key."""
    ref: Reference = request.app.state.ref
    body = await request.json()
    user_id = uuid.uuid4().hex
    ref.store.run("INSERT INTO users VALUES (?, ?, ?)", (user_id, body["email"], body["handle"]))
    if body.get("credential_id"):
        ref.store.run(
            "INSERT INTO credentials VALUES (?, ?, ?, 0)",
            (body["credential_id"], user_id, body["public_key"]),
        )
    ref.store.commit()
    return JSONResponse({"id": user_id})


def create_app() -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ref = Reference()
        app.state.ref = ref
        task = asyncio.create_task(ref.deliver())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return Starlette(
        routes=[
            Route("/email", request_email, methods=["POST"]),
            Route("/email/{flow_id}/code", verify_code, methods=["POST"]),
            Route("/passkey/options", passkey_options, methods=["POST"]),
            Route("/passkey/verify", passkey_verify, methods=["POST"]),
            Route("/setup/user", add_user, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/authorize", reference_oidc.authorize, methods=["GET"]),
            Route("/token", reference_oidc.token, methods=["POST"]),
            Route("/userinfo", reference_oidc.userinfo, methods=["GET"]),
            Route("/setup/client", reference_oidc.add_client, methods=["POST"]),
            Route("/confirmations", reference_confirm.create, methods=["POST"]),
            Route("/confirmations/{id}", reference_confirm.collect, methods=["GET"]),
            Route("/confirmations/{id}/options", reference_confirm.options, methods=["POST"]),
            Route("/confirmations/{id}/verify", reference_confirm.verify, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
