"""The lean route class answers every bad request exactly as FastAPI's own handler does.

Two apps from the same settings, each on a database of its own: Sekisho as it is (the
JSON sign-in endpoints on :class:`sekisho.web.lean_route.LeanRoute`), and the same app
built while ``LeanRoute`` hands every route FastAPI's ordinary handler. The same bad
requests go to every lean route of both; status, JSON body and headers must match. The
OpenAPI schema of the two is the same document.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.testclient import TestClient

from sekisho.app import create_app
from sekisho.web import context, lean_route
from sekisho.web.lean_route import LeanRoute
from tests.support.server import settings_for

ORIGIN = "http://127.0.0.1:8000"
FLOW = "A" * 22
TOKEN = "B" * 43
#: A well-formed body for each lean route (by method and path format).
GOOD: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/signin/email"): {"email": "someone@example.com", "locale": "en"},
    ("POST", "/api/v1/signin/email/flows/{flow_id}/code"): {"code": "123456"},
    ("POST", "/api/v1/signin/email/flows/{flow_id}/complete"): {},
    ("POST", "/api/v1/signin/email/link/inspect"): {"token": TOKEN},
    ("POST", "/api/v1/signin/email/link/confirm"): {"token": TOKEN},
    ("POST", "/api/v1/signin/email/link/code"): {"token": TOKEN, "code": "123456"},
    ("POST", "/api/v1/signin/email/link/approve"): {"token": TOKEN, "number": 42},
    ("POST", "/api/v1/sessions/revoke-others"): {},
    ("POST", "/api/v1/signin/passkey/options"): {"email": "someone@example.com"},
    ("POST", "/api/v1/signin/passkey/verify"): {"flow_id": FLOW, "credential": {"id": "x"}},
    ("POST", "/api/v1/passkeys/registration/options"): {},
    ("POST", "/api/v1/passkeys/registration/verify"): {
        "flow_id": FLOW,
        "credential": {"id": "x"},
        "name": "Key",
    },
    ("PATCH", "/api/v1/passkeys/{passkey_id}"): {"name": "Key"},
    ("POST", "/api/v1/confirmations"): {
        "action": "transfer",
        "details": {"amount": 10, "to": "x"},
        "return_uri": "https://app.example/done",
    },
    ("POST", "/api/v1/confirmations/{confirmation_id}/redeem"): {
        "action": "transfer",
        "details": {"amount": 10},
    },
    ("POST", "/api/v1/confirmations/{confirmation_id}/options"): {},
    ("POST", "/api/v1/confirmations/{confirmation_id}/verify"): {
        "flow_id": FLOW,
        "credential": {"id": "x"},
    },
}
#: The lean routes without a body (the request and path parameters at most), by method
#: and route path, and requests for each (path, headers): signed out, cross-site, bad
#: path ids; for UserInfo no token, another scheme, an unknown token.
_CROSS_SITE = {"origin": "https://evil.example"}
_BEARER = {"authorization": "Bearer " + TOKEN}
BODILESS: dict[tuple[str, str], list[tuple[str, dict[str, str]]]] = {
    ("GET", "/healthz"): [("/healthz", {})],
    ("GET", "/readyz"): [("/readyz", {})],
    ("GET", "/.well-known/openid-configuration"): [("/.well-known/openid-configuration", {})],
    ("GET", "/.well-known/oauth-authorization-server"): [
        ("/.well-known/oauth-authorization-server", {})
    ],
    ("GET", "/.well-known/jwks.json"): [("/.well-known/jwks.json", {})],
    ("GET", "/userinfo"): [
        ("/userinfo", {}),
        ("/userinfo", {"authorization": "Basic eDp5"}),
        ("/userinfo", {"authorization": "Bearer "}),
        ("/userinfo", _BEARER),
    ],
    ("POST", "/userinfo"): [("/userinfo", {}), ("/userinfo", _BEARER)],
    ("GET", "/api/v1/session"): [("/api/v1/session", {}), ("/api/v1/session", _CROSS_SITE)],
    ("DELETE", "/api/v1/session"): [("/api/v1/session", {}), ("/api/v1/session", _CROSS_SITE)],
    ("GET", "/api/v1/sessions"): [("/api/v1/sessions", {}), ("/api/v1/sessions", _CROSS_SITE)],
    ("DELETE", "/api/v1/sessions/{session_id:session_id}"): [
        ("/api/v1/sessions/" + FLOW, {}),
        ("/api/v1/sessions/" + FLOW, _CROSS_SITE),
        ("/api/v1/sessions/bad%20id", {}),
        ("/api/v1/sessions/" + "x" * 65, {}),
    ],
    ("GET", "/api/v1/passkeys"): [("/api/v1/passkeys", {}), ("/api/v1/passkeys", _CROSS_SITE)],
    ("DELETE", "/api/v1/passkeys/{passkey_id}"): [
        ("/api/v1/passkeys/" + FLOW, {}),
        ("/api/v1/passkeys/" + FLOW, _CROSS_SITE),
        ("/api/v1/passkeys/bad%20id", {}),
        ("/api/v1/passkeys/" + "x" * 65, {}),
    ],
    ("GET", "/api/v1/signin/email/flows/{flow_id}"): [
        ("/api/v1/signin/email/flows/" + FLOW, {}),
        ("/api/v1/signin/email/flows/bad%20id", {}),
        ("/api/v1/signin/email/flows/" + "x" * 65, {}),
    ],
}
#: Headers that differ between any two answers (time, request id).
VARYING = {"date", "x-request-id"}


def _app(tmp_path: Path, name: str) -> FastAPI:
    settings = settings_for(
        f"sqlite:///{tmp_path}/{name}.db", 1, 8000, mail_worker=False, max_body_bytes=4096
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    tmp_path = tmp_path_factory.mktemp("lean")
    lean = _app(tmp_path, "lean")
    # The routes' handlers are built when the app is made (web/exact_paths.py prepares
    # every route then), so the plain app is made with FastAPI's own route handler.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LeanRoute, "get_route_handler", APIRoute.get_route_handler)
        plain = _app(tmp_path, "plain")
    with (
        TestClient(lean, base_url=ORIGIN) as lean_client,
        TestClient(plain, base_url=ORIGIN) as plain_client,
    ):
        yield lean_client, plain_client


def _lean_routes(app: FastAPI, *, with_body: bool) -> list[tuple[str, str]]:
    return sorted(
        (method, included.path)
        for route in app.router.routes
        for included in getattr(route, "original_router", app.router).routes
        if isinstance(included, LeanRoute)
        and lean_route.takes_short_path(included)
        and (included.body_field is not None) == with_body
        for method in included.methods or ()
    )


def _path(path_format: str, value: str = FLOW) -> str:
    for name in ("{flow_id}", "{passkey_id}", "{confirmation_id}"):
        path_format = path_format.replace(name, value)
    return path_format


def _mutations(good: dict[str, Any]) -> Iterator[tuple[str, bytes]]:
    """Bad bodies for one route, each with what it tries."""
    yield "not json", b"{not json"
    yield "trailing garbage", json.dumps(good).encode() + b"x"
    yield "empty body", b""
    yield "array", b"[]"
    yield "null", b"null"
    yield "string", b'"x"'
    yield "empty object", b"{}"
    yield "extra field", json.dumps({**good, "extra": 1}).encode()
    yield "BOM", b"\xef\xbb\xbf" + json.dumps(good).encode()
    yield "bad UTF-8", b'{"x": "\xff"}'
    yield "lone surrogate", b'{"x": "\\ud800"}'
    yield "over the cap", json.dumps({**good, "pad": "x" * 5000}).encode()
    for name, value in good.items():
        rest = {k: v for k, v in good.items() if k != name}
        yield f"missing {name}", json.dumps(rest).encode()
        yield f"wrong type {name}", json.dumps({**good, name: [value]}).encode()
        yield f"number {name}", json.dumps({**good, name: 12.5}).encode()
        yield f"null {name}", json.dumps({**good, name: None}).encode()
        yield f"over-long {name}", json.dumps({**good, name: "9" * 5000}).encode()[:4000]
        yield f"long {name}", json.dumps({**good, name: "9" * 300}).encode()
        if isinstance(value, str):
            yield (
                f"NUL in {name}",
                json.dumps({**good, name: value[:2] + "\x00" + value[2:]}).encode(),
            )
            yield (
                f"raw tab in {name}",
                json.dumps({**good, name: value})
                .replace(json.dumps(value), '"\t' + value + '"')
                .encode(),
            )


HEADER_CASES: list[tuple[str, dict[str, str]]] = [
    ("no content type", {}),
    ("text/plain", {"content-type": "text/plain"}),
    ("form", {"content-type": "application/x-www-form-urlencoded"}),
    ("json+suffix", {"content-type": "application/problem+json"}),
    ("json charset", {"content-type": "application/json; charset=utf-8"}),
    ("json upper", {"content-type": "Application/JSON"}),
    ("two types", {"content-type": "application/json, text/plain"}),
    ("cross-site origin", {"content-type": "application/json", "origin": "https://evil.example"}),
    ("cross-site fetch", {"content-type": "application/json", "sec-fetch-site": "cross-site"}),
    ("cross-site text", {"content-type": "text/plain", "origin": "https://evil.example"}),
    ("null origin", {"content-type": "application/json", "origin": "null"}),
    ("same origin", {"content-type": "application/json", "origin": ORIGIN}),
]


def _answer(client: TestClient, method: str, url: str, body: bytes, headers: dict[str, str]) -> Any:
    response = client.request(method, url, content=body, headers=headers)
    kept = {
        name: value
        for name, value in response.headers.items()
        if name not in VARYING and name != "set-cookie"
    }
    # Cookie names and attributes; values are random per app.
    cookies = sorted(
        (cookie.split("=", 1)[0], cookie.split(";", 1)[-1])
        for cookie in response.headers.get_list("set-cookie")
    )
    try:
        content: Any = response.json()
    except ValueError:
        content = response.content
    if response.is_success and isinstance(content, dict):
        content = sorted(content)  # a new flow's id, number and expiry are its own
        kept.pop("content-length", None)
    return response.status_code, content, kept, cookies


def test_the_lean_routes_are_the_json_sign_in_endpoints(
    apps: tuple[TestClient, TestClient],
) -> None:
    lean, _plain = apps
    assert isinstance(lean.app, FastAPI)
    assert _lean_routes(lean.app, with_body=True) == sorted(GOOD)
    bodiless = _lean_routes(lean.app, with_body=False)
    assert [(method, path) for method, path in bodiless if method != "HEAD"] == sorted(BODILESS)


def test_every_request_without_a_body_is_answered_as_fastapi_answers_it(
    apps: tuple[TestClient, TestClient],
) -> None:
    lean, plain = apps
    for (method, _route), cases in BODILESS.items():
        methods = (method, "HEAD") if method == "GET" else (method,)
        for url, headers in cases:
            for sent in methods:
                for body in (b"", b"token=x"):
                    expected = _answer(plain, sent, url, body, headers)
                    assert _answer(lean, sent, url, body, headers) == expected, (sent, url, headers)


def test_every_bad_request_is_answered_as_fastapi_answers_it(
    apps: tuple[TestClient, TestClient],
) -> None:
    lean, plain = apps
    json_type = {"content-type": "application/json"}
    checked = 0
    for (method, path_format), good in GOOD.items():
        url = _path(path_format)
        cases: list[tuple[str, str, bytes, dict[str, str]]] = [
            (what, url, body, json_type) for what, body in _mutations(good)
        ]
        cases += [(what, url, json.dumps(good).encode(), h) for what, h in HEADER_CASES]
        cases += [("cross-site bad JSON", url, b"{", {**json_type, "origin": "https://x.example"})]
        if "{" in path_format:
            for bad in ("bad id!", "x" * 65, "%00", "a%20b"):
                cases.append(
                    (f"path {bad!r}", _path(path_format, bad), json.dumps(good).encode(), json_type)
                )
            cases.append(("path and body", _path(path_format, "bad id!"), b"{}", json_type))
        # A well-formed request for nothing that exists: the endpoint's own refusal.
        if (
            path_format != "/api/v1/signin/email"
            and path_format != "/api/v1/signin/passkey/options"
        ):
            cases.append(("well-formed", url, json.dumps(good).encode(), json_type))
        for what, target, body, headers in cases:
            expected = _answer(plain, method, target, body, headers)
            assert _answer(lean, method, target, body, headers) == expected, (
                method,
                path_format,
                what,
            )
            checked += 1
    assert checked > 400


def test_a_valid_request_takes_the_short_path_and_signs_the_same(
    apps: tuple[TestClient, TestClient],
) -> None:
    lean, plain = apps
    hops: list[object] = []
    real = lean_route.in_thread

    async def counted(function: Callable[[], Any]) -> Any:
        hops.append(function)
        return await real(function)

    answers = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lean_route, "in_thread", counted)
        for client in (lean, plain):
            response = client.post("/api/v1/signin/email", json={"email": "someone@example.com"})
            assert response.status_code == 202
            answers.append((set(response.json()), sorted(response.cookies)))
            assert len(hops) == 1  # the lean app's, not the plain one's
    assert answers[0] == answers[1]


def test_the_openapi_schema_is_unchanged(apps: tuple[TestClient, TestClient]) -> None:
    lean, plain = apps
    assert isinstance(lean.app, FastAPI)
    assert isinstance(plain.app, FastAPI)
    assert lean.app.openapi() == plain.app.openapi()


class _Body(BaseModel):
    name: str


async def _other_guard(request: Request) -> None:
    pass


def _counted(request: Request) -> None:
    pass


def _value(request: Request) -> str:
    return "x"


def test_only_the_shape_it_knows_takes_the_short_path() -> None:
    """Anything FastAPI would do more for (an async endpoint with a body, a query
    parameter, a dependency whose value the endpoint takes, an unknown async dependency,
    a repeated one, any dependency of a route without a body, an async one with a
    response model) keeps FastAPI's handler."""
    router = APIRouter(route_class=LeanRoute)

    @router.post("/plain", dependencies=[Depends(context.require_json), Depends(_counted)])
    def plain(request: Request, body: _Body) -> None: ...

    @router.post("/async")
    async def asynchronous(request: Request, body: _Body) -> None: ...

    @router.post("/query")
    def query(request: Request, body: _Body, page: int = 1) -> None: ...

    @router.post("/valued")
    def valued(request: Request, body: _Body, got: str = Depends(_value)) -> None: ...

    @router.post("/unknown", dependencies=[Depends(_other_guard)])
    def unknown(request: Request, body: _Body) -> None: ...

    @router.post("/twice", dependencies=[Depends(_counted), Depends(_counted)])
    def twice(request: Request, body: _Body) -> None: ...

    @router.post("/bodiless")
    def bodiless(request: Request) -> None: ...

    @router.get("/bare")
    async def bare() -> None: ...

    @router.get("/guarded", dependencies=[Depends(_counted)])
    def guarded(request: Request) -> None: ...

    @router.get("/modelled", response_model=_Body)
    async def modelled() -> dict[str, str]:
        return {"name": "x"}

    short = {
        route.path
        for route in router.routes
        if isinstance(route, LeanRoute) and lean_route.takes_short_path(route)
    }
    assert short == {"/plain", "/bodiless", "/bare"}


class _Answer(BaseModel):
    name: str
    count: int


def _tiny(route_class: type[APIRoute]) -> TestClient:
    router = APIRouter(route_class=route_class)

    @router.post("/things/{thing_id}", response_model=_Answer, status_code=201)
    def thing(request: Request, thing_id: str, body: _Body) -> _Answer:
        return _Answer(name=body.name + thing_id, count=len(body.name))

    @router.post("/broken", response_model=_Answer)
    def broken(request: Request, body: _Body) -> dict[str, str]:
        return {"name": body.name}

    @router.get("/things/{thing_id}", response_model=_Answer)
    def read(thing_id: str) -> _Answer:
        return _Answer(name=thing_id, count=len(thing_id))

    @router.get("/broken", response_model=_Answer)
    def read_broken() -> dict[str, str]:
        return {"name": "x"}

    @router.get("/plain/{thing_id}", response_model=None)
    async def read_plain(thing_id: str) -> dict[str, object]:
        return {"name": thing_id, "at": (1, 2)}

    app = FastAPI()
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_a_returned_model_is_validated_and_rendered_as_fastapi_does() -> None:
    lean, plain = _tiny(LeanRoute), _tiny(APIRoute)
    for path, body in (("/things/a", {"name": "x"}), ("/broken", {"name": "x"})):
        lean_answer, plain_answer = (
            client.post(path, json=body, headers={"content-type": "application/json"})
            for client in (lean, plain)
        )
        assert lean_answer.status_code == plain_answer.status_code
        assert lean_answer.content == plain_answer.content
        assert lean_answer.headers.get("content-type") == plain_answer.headers.get("content-type")
    for path in ("/things/ab", "/broken", "/plain/ab"):
        lean_answer, plain_answer = (client.get(path) for client in (lean, plain))
        assert lean_answer.status_code == plain_answer.status_code
        assert lean_answer.content == plain_answer.content
        assert lean_answer.headers.get("content-type") == plain_answer.headers.get("content-type")
    assert lean.post("/things/a", json={"name": "x"}).json() == {"name": "xa", "count": 1}
    assert lean.get("/things/ab").json() == {"name": "ab", "count": 2}
