"""Routing without the linear scan for the paths routes declare literally.

Starlette's router tries its routes one after the other; in FastAPI each included
router's try walks that router's routes with a regular expression each, twice for the
winner (it matches again to handle). ``GET /userinfo`` tried eight included routers
(82 us of CPU), ``POST /token`` six (66 us), ``GET /healthz`` two (6 us).

:class:`ExactPaths` is the app router's ``middleware_stack`` (Starlette's place for what
runs before its routing). For a path some route declares without parameters it knows,
worked out once, which of the router's routes can match that path at all (a route's
"no match" depends on the path only: a path match with another method is a partial
match, Starlette's 405), and hands the request to a router holding just those, in the
same order: the same route wins, with the same partial match and the same 405, as in
the full scan, which every other request still takes (paths with parameters, unknown
paths, a ``root_path``, the lifespan). Nothing is cached per request, so the table
holds only the declared paths.

The table is built when the router is installed, not on the first request: trying every
route against the declared paths makes FastAPI prepare each included router's routes
(their dependants and parameter fields, which it otherwise prepares on the router's first
match), so no request pays for that (111 fields) and no request enters
``warnings.catch_warnings``, which FastAPI wraps around the preparation: it swaps the
process-wide warning filters, so two threads inside it at once can leave one of them with
the other's filters (an in-process server answered 500 that way under pytest's ``error``
filter).
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.routing import APIRouter
from starlette.routing import BaseRoute, Host, Match
from starlette.types import Receive, Scope, Send

#: The methods a path is tried with when the table is built.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def install(router: APIRouter) -> None:
    """Route ``router``'s requests through :class:`ExactPaths`; only on a router with no
    middleware of its own (a body limit, for one), which this would leave out."""
    if router.middleware_stack != router.app:
        raise RuntimeError("the router has middleware of its own")
    router.middleware_stack = ExactPaths(router)


class ExactPaths:
    """The router's dispatch, with a short list of routes for each declared path."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._built_for = -1
        self._table: dict[str, APIRouter] = {}
        self._build()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            if len(self.router.routes) != self._built_for:
                self._build()
            narrow = self._table.get(scope["path"])
            if narrow is not None:
                scope.setdefault("router", self.router)
                await narrow.app(scope, receive, send)
                return
        await self.router.app(scope, receive, send)

    def _build(self) -> None:
        router = self.router
        routes = list(router.routes)
        table: dict[str, APIRouter] = {}
        if not any(isinstance(route, Host) for route in routes):  # a Host matches by header
            for path in sorted(set(_declared_paths(routes))):
                candidates = [route for route in routes if _may_match(route, path)]
                if candidates:
                    narrow = APIRouter(routes=candidates, redirect_slashes=router.redirect_slashes)
                    narrow.default = router.default
                    narrow.form_limits = router.form_limits
                    table[path] = narrow
        self._table = table
        self._built_for = len(routes)


def _declared_paths(routes: list[BaseRoute]) -> Iterator[str]:
    """Every path a route (or a route of an included router) declares without
    parameters; one that an inclusion prefixes matches nothing and is left out."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if isinstance(original, APIRouter):
            yield from _declared_paths(list(original.routes))
            continue
        path = getattr(route, "path", None)
        if isinstance(path, str) and path.startswith("/") and "{" not in path:
            yield path


def _may_match(route: BaseRoute, path: str) -> bool:
    for method in METHODS:
        probe: Scope = {
            "type": "http",
            "path": path,
            "root_path": "",
            "method": method,
            "headers": [],
            "query_string": b"",
        }
        if route.matches(probe)[0] is not Match.NONE:
            return True
    return False
