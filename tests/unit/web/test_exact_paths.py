"""Declared paths are routed through a short list of routes, to the same route as the
full scan, with the same answers (405 and its ``Allow`` included)."""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from starlette.routing import BaseRoute, Match
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from sekisho.app import create_app
from sekisho.web import exact_paths
from sekisho.web.exact_paths import METHODS, ExactPaths
from tests.support.server import settings_for

ORIGIN = "http://127.0.0.1:8000"
#: Requests whose answers must not depend on the table (declared paths, wrong methods,
#: HEAD, paths with parameters, unknown paths).
REQUESTS = [
    ("GET", "/healthz"),
    ("HEAD", "/healthz"),
    ("PUT", "/healthz"),
    ("GET", "/userinfo"),
    ("DELETE", "/userinfo"),
    ("POST", "/.well-known/jwks.json"),
    ("GET", "/api/v1/session"),
    ("PATCH", "/api/v1/session"),
    ("GET", "/api/v1/signin/email"),
    ("POST", "/api/v1/signin/email"),
    ("GET", "/signin"),
    ("POST", "/token"),
    ("GET", "/token"),
    ("GET", "/authorize"),
    ("HEAD", "/authorize"),
    ("GET", "/api/v1/signin/email/flows/" + "A" * 22),
    ("GET", "/static/none.css"),
    ("GET", "/no/such/path"),
    ("GET", "/healthz/"),
]


def _app(tmp_path: Path, name: str) -> FastAPI:
    return create_app(settings_for(f"sqlite:///{tmp_path}/{name}.db", 1, 8000, mail_worker=False))


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, TestClient]]:
    tmp_path = tmp_path_factory.mktemp("exact")
    exact, scan = _app(tmp_path, "exact"), _app(tmp_path, "scan")
    assert isinstance(exact.router.middleware_stack, ExactPaths)
    scan.router.middleware_stack = scan.router.app
    with (
        TestClient(exact, base_url=ORIGIN) as exact_client,
        TestClient(scan, base_url=ORIGIN) as scan_client,
    ):
        yield exact_client, scan_client


def _winner(routes: list[BaseRoute], scope: Scope) -> tuple[int, Match] | None:
    """The route Starlette's scan picks (first full match, else first partial)."""
    partial = None
    for route in routes:
        match, _ = route.matches(dict(scope))
        if match is Match.FULL:
            return id(route), match
        if match is Match.PARTIAL and partial is None:
            partial = (id(route), match)
    return partial


def test_every_declared_path_goes_to_the_route_the_full_scan_picks(
    apps: tuple[TestClient, TestClient],
) -> None:
    exact, _scan = apps
    assert isinstance(exact.app, FastAPI)
    dispatch = exact.app.router.middleware_stack
    assert isinstance(dispatch, ExactPaths)
    table = dispatch._table
    assert {"/healthz", "/userinfo", "/token", "/api/v1/signin/email", "/signin"} <= set(table)
    for path, narrow in table.items():
        for method in (*METHODS, "TRACE"):
            scope: Scope = {"type": "http", "path": path, "method": method, "headers": []}
            scope.update(root_path="", query_string=b"")
            full = _winner(list(exact.app.router.routes), scope)
            assert full is not None, (method, path)
            assert _winner(list(narrow.routes), scope) == full, (method, path)


def _kept(answer: Any) -> tuple[object, ...]:
    """Status, headers and body, without what differs between any two answers: the
    time, the request id, a page's CSRF token (its cookie's value and the form field)."""
    headers = sorted(
        (name, value.split("=")[0] if name == "set-cookie" else value)
        for name, value in answer.headers.multi_items()
        if name not in {"date", "x-request-id"}
    )
    html = answer.headers.get("content-type", "").startswith("text/html")
    return answer.status_code, headers, len(answer.content) if html else answer.content


def test_the_answers_are_the_full_scans(apps: tuple[TestClient, TestClient]) -> None:
    exact, scan = apps
    for method, path in REQUESTS:
        answers = [_kept(client.request(method, path)) for client in (exact, scan)]
        assert answers[0] == answers[1], (method, path)


def test_a_declared_path_does_not_scan_the_router(tmp_path: Path) -> None:
    """Fails loudly if Starlette stops routing through ``Router.middleware_stack``, or the
    table stops covering the declared paths: the full scan is not reachable for them."""
    app = _app(tmp_path, "loud")

    async def no_scan(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("scanned " + str(scope.get("path")))

    with TestClient(app, base_url=ORIGIN, raise_server_exceptions=False) as client:
        app.router.app = no_scan  # type: ignore[method-assign]
        assert client.get("/healthz").status_code == 200
        assert client.put("/healthz").status_code == 405
        assert client.get("/userinfo").status_code == 401
        assert client.get("/no/such/path").status_code == 500  # the scan, refused here


def test_no_request_prepares_routes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every route is prepared when the app is made: no request, whichever way it is
    routed, enters ``warnings.catch_warnings`` (FastAPI's route preparation does), which
    swaps the process-wide filters under the other threads' feet."""
    app = _app(tmp_path, "warm")
    entered: list[str] = []
    real = warnings.catch_warnings

    def watched(*args: Any, **kwargs: Any) -> warnings.catch_warnings:
        entered.append("".join(traceback.format_stack(limit=6)))
        return real(*args, **kwargs)

    with TestClient(app, base_url=ORIGIN) as client:
        monkeypatch.setattr(warnings, "catch_warnings", watched)
        for method, path in REQUESTS:
            client.request(method, path)
    assert entered == []


def test_a_router_with_middleware_of_its_own_is_refused() -> None:
    router = APIRouter(max_body_size=10)
    with pytest.raises(RuntimeError, match="middleware of its own"):
        exact_paths.install(router)
