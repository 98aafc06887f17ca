"""In-process CPU of a passkey sign-in's answers: cookies and JSON bodies, no I/O.

Run:  .venv/bin/python -m benchmarks.responses [--rounds 20000] [--repeat 5]
Compare two trees back to back with ``PYTHONPATH=/tmp/old/src`` for the other one.

One round is what the two requests of a passkey sign-in do around the service calls:
``POST /signin/passkey/options`` reads the binding, the client (device and language
cookies), answers the ceremony options and sets the binding cookie; ``POST
/signin/passkey/verify`` reads the binding, the client and the session cookie, answers
the session and sets the session cookie; and a sign-out clears it. Each round gets new
``Request`` objects (Starlette parses a request's cookies once per object). It prints
the best of ``--repeat`` runs, in microseconds of process CPU per round.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from tests.support.records import passkey_session

from sekisho.core.completion import IssuedSession
from sekisho.core.records import User
from sekisho.methods.passkey.ceremony import StartedCeremony
from sekisho.web import context, passkeys_api
from sekisho.web.api import signed_in
from sekisho.web.cookies import Cookies

#: ``ceremony_options`` was ``_options`` before it served the step-up API too.
_OPTIONS = "ceremony_options" if hasattr(passkeys_api, "ceremony_options") else "_options"
_answer_options: Callable[[StartedCeremony], Response] = getattr(passkeys_api, _OPTIONS)


def _app(secure: bool) -> Starlette:
    app = Starlette()
    app.state.cookies = Cookies(secure=secure)
    return app


def _request(app: Starlette, cookie: bytes) -> Request:
    headers = [
        (b"cookie", cookie),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Firefox/145.0"),
        (b"accept-language", b"ja,en;q=0.8"),
    ]
    return Request({"type": "http", "app": app, "headers": headers, "client": ("10.0.0.7", 1)})


def _issued(now: datetime) -> IssuedSession:
    session = passkey_session(
        "u_" + "x" * 22, now, id="s" * 22, ip="10.0.0.7", user_agent="Mozilla/5.0"
    )
    user = User.__new__(User)  # never read by the answer
    return IssuedSession(token="t" * 43, session=session, user=user)


def one_round(app: Starlette, issued: IssuedSession, started: StartedCeremony) -> None:
    jar: Cookies = app.state.cookies
    cookie = f"{jar.binding}={'b' * 43}; {jar.device}={'d' * 43}".encode()
    options = _request(app, cookie)
    binding = context.binding_for_request(options)
    context.client(options)
    response = _answer_options(started)
    context.set_binding(options, response, binding)
    verify = _request(app, cookie)
    context.binding(verify)
    context.client(verify)
    context.session_token(verify)
    signed_in(verify, issued)
    out = Response(status_code=204)
    context.cookies(verify).clear(out, context.cookies(verify).session)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    issued = _issued(now)
    started = StartedCeremony(
        flow_id="f" * 22,
        options={
            "challenge": "c" * 43,
            "timeout": 300000,
            "rpId": "localhost",
            "allowCredentials": [],
            "userVerification": "required",
        },
    )
    for secure in (True, False):
        app = _app(secure)
        best = float("inf")
        for _ in range(args.repeat):
            start = time.process_time()
            for _ in range(args.rounds):
                one_round(app, issued, started)
            best = min(best, time.process_time() - start)
        mode = "https" if secure else "development"
        print(f"{mode}: {best / args.rounds * 1e6:.1f} us of CPU per round ({args.rounds} rounds)")


if __name__ == "__main__":
    main()
