"""A route class for the hot JSON endpoints: FastAPI's answers, without its per-request
dependency machinery on the way to a valid request.

:class:`LeanRoute` is an ``APIRoute`` (FastAPI's documented extension point: a route class
overriding ``get_route_handler``), so the endpoint functions, their decorators and the
OpenAPI schema are FastAPI's as before. For a route of the shape the sign-in endpoints
have (a plain ``def`` taking the request, path parameters and one JSON body model,
guarded by dependencies that take only the request: plain ``def`` ones, and
:func:`sekisho.web.context.require_json`) a request with a JSON content type takes a
short path:

1. the body, read through the edge (its size cap and read timeout apply as before);
2. the path parameters, checked by FastAPI's own parameter fields (the ``params.py``
   patterns), and the body validated from its bytes by the same pydantic model
   (``model_validate_json``);
3. one hop to the endpoint pool, where the dependencies run in their declared order
   (``require_json`` as its synchronous twin :func:`~sekisho.web.context.check_json`),
   then the endpoint; one that returns a model rather than a ``Response`` has it
   validated and serialised as FastAPI would (FastAPI hops once per plain ``def``
   dependency, and once more for that).

FastAPI decodes the body before it runs any dependency, and a dependency's refusal is
raised as it is; so for a valid body, running the dependencies after the validation gives
FastAPI's answer. Any other request (no JSON content type, an empty or invalid body, a
bad path id, FastAPI's telemetry on, a dependency override) is handed, with the body
already read and nothing run, to FastAPI's own handler for the route, which answers
exactly as it always did: the refusals are not the hot path, and none is re-implemented
here. The short path accepts only bodies FastAPI accepts, with the same values: jiter
(behind ``model_validate_json``) refuses what ``json.loads`` refuses, and also a BOM and
a lone surrogate (those go to FastAPI's handler). ``tests/unit/web/test_lean_route.py``
sends the same bad requests to both.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import fastapi.routing
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from fastapi.utils import is_body_allowed_for_status_code
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

from sekisho.web import context

#: The endpoints' threads: as many as AnyIO's default limiter lets FastAPI's other sync
#: routes use (40); a process may now run up to 40 of each.
ENDPOINT_THREADS = 40
_pool = ThreadPoolExecutor(max_workers=ENDPOINT_THREADS, thread_name_prefix="sekisho-endpoint")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


async def in_thread(function: Callable[[], Any]) -> Any:
    """Run ``function`` on the endpoint pool with this task's context (request id,
    tracing), as ``run_in_threadpool`` would, in one hop."""
    copied = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(_pool, copied.run, function)


class LeanRoute(APIRoute):
    """An ``APIRoute`` whose valid requests skip FastAPI's dependency solving (above)."""

    def get_route_handler(self) -> Handler:
        fastapi_handler = super().get_route_handler()
        route = _effective(self)
        plan = _Plan.of(route)
        if plan is None:
            return fastapi_handler
        return plan.handler(fastapi_handler)


def _effective(route: APIRoute) -> APIRoute:
    """The route as included (FastAPI builds a handler per inclusion, with the including
    router's dependencies added), the way ``APIRoute.get_route_handler`` reads it."""
    var: contextvars.ContextVar[Any] | None = getattr(
        fastapi.routing, "_effective_route_context_var", None
    )
    effective = var.get() if var is not None else None
    if effective is not None and effective.original_route is route:
        return cast(APIRoute, effective)
    return route


class _Plan:
    """What a valid request of one route needs, worked out once."""

    def __init__(
        self,
        route: APIRoute,
        guards: list[Callable[[Request], object]],
        body_name: str | None,
        model: type[BaseModel] | None,
    ) -> None:
        dependant = route.dependant
        assert dependant.call is not None
        self.endpoint: Callable[..., Any] = dependant.call
        self.request_name = dependant.request_param_name
        self.path_fields = dependant.path_params
        self.guards = guards
        self.body_name = body_name
        self.model = model
        self.overrides = route.dependency_overrides_provider
        self.response_field = route.response_field
        self.status_code = route.status_code
        self.dump_json = route.response_field is not None and isinstance(
            route.response_class, DefaultPlaceholder
        )
        self.response_class = route.response_class

    @classmethod
    def of(cls, route: APIRoute) -> _Plan | None:
        """A plan for a route of the lean shape, else None (FastAPI's handler serves it)."""
        dependant = route.dependant
        call = dependant.call
        if (
            call is None
            or inspect.isgeneratorfunction(call)
            or inspect.isasyncgenfunction(call)
            or dependant.query_params
            or dependant.header_params
            or dependant.cookie_params
            or dependant.response_param_name
            or dependant.background_tasks_param_name
            or dependant.security_scopes_param_name
            or dependant.websocket_param_name
            or dependant.http_connection_param_name
            or route.is_sse_stream
            or route.is_json_stream
        ):
            return None
        if not dependant.body_params and route.body_field is None:
            return cls._without_body(route)
        if (
            inspect.iscoroutinefunction(call)
            or dependant.request_param_name is None
            or len(dependant.body_params) != 1
            or route.body_field is None
        ):
            return None
        body = dependant.body_params[0]
        model = body.field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        if (
            body.field_info.metadata
            or getattr(body.field_info, "embed", False)
            or route._embed_body_fields
        ):
            return None
        guards = [_guard(sub) for sub in dependant.dependencies]
        calls = [sub.call for sub in dependant.dependencies]
        if any(guard is None for guard in guards) or len(set(calls)) != len(calls):
            return None  # FastAPI runs a repeated dependency once: not this path's shape
        return cls(route, [g for g in guards if g is not None], body.name, model)

    @classmethod
    def _without_body(cls, route: APIRoute) -> _Plan | None:
        """A route that takes at most the request and path parameters, with no
        dependencies (health, discovery, UserInfo); an ``async`` one only without a
        response model, so that nothing but the endpoint runs on the loop."""
        if route.dependant.dependencies:
            return None
        if inspect.iscoroutinefunction(route.dependant.call) and route.response_field is not None:
            return None
        return cls(route, [], None, None)

    def handler(self, fastapi_handler: Handler) -> Handler:
        request_name = self.request_name
        path_fields = self.path_fields
        model = self.model
        body_name = self.body_name
        overrides = self.overrides
        run = self._run
        if model is None:
            return self._handler_without_body(fastapi_handler)
        assert request_name is not None
        assert body_name is not None

        async def app(request: Request) -> Response:
            if _fastapi_answers(request, overrides) or not context.is_json_type(
                request.headers.get("content-type")
            ):
                return await fastapi_handler(request)
            body = await _read(request)
            values, errors = request_params_to_args(path_fields, request.path_params)
            if errors or not body:
                return await fastapi_handler(request)
            try:
                values[body_name] = model.model_validate_json(body)
            except ValueError:
                return await fastapi_handler(request)
            values[request_name] = request
            response: Response = await in_thread(functools.partial(run, request, values))
            return response

        return app

    def _handler_without_body(self, fastapi_handler: Handler) -> Handler:
        """No body to read or validate: the path parameters, then the endpoint, on the
        loop if it is ``async`` (as FastAPI runs it), else with one hop."""
        request_name = self.request_name
        path_fields = self.path_fields
        overrides = self.overrides
        endpoint = self.endpoint
        run = self._run
        is_async = inspect.iscoroutinefunction(endpoint)

        async def app(request: Request) -> Response:
            if _fastapi_answers(request, overrides):
                return await fastapi_handler(request)
            values, errors = request_params_to_args(path_fields, request.path_params)
            if errors:
                return await fastapi_handler(request)
            if request_name is not None:
                values[request_name] = request
            if is_async:
                return self._answer(await endpoint(**values))
            response: Response = await in_thread(functools.partial(run, request, values))
            return response

        return app

    def _run(self, request: Request, values: dict[str, Any]) -> Response:
        """The dependencies, the endpoint and, for one that returns a model, FastAPI's
        serialisation of it (validated against the response model), on one thread."""
        for guard in self.guards:
            guard(request)
        return self._answer(self.endpoint(**values))

    def _answer(self, raw: Any) -> Response:
        """The endpoint's return value as FastAPI answers it: a ``Response`` as it is,
        else validated against the response model and serialised."""
        if isinstance(raw, Response):
            return raw
        field = self.response_field
        if field is None:
            content: Any = jsonable_encoder(raw)
        else:
            value, errors = field.validate(raw, {}, loc=("response",))
            if errors:
                raise ResponseValidationError(errors=errors, body=raw)
            serialize = field.serialize_json if self.dump_json else field.serialize
            content = serialize(value)
        arguments: dict[str, Any] = {"background": None}
        if self.status_code is not None:
            arguments["status_code"] = self.status_code
        if self.dump_json:
            response = Response(content=content, media_type="application/json", **arguments)
        else:
            response_class = self.response_class
            if isinstance(response_class, DefaultPlaceholder):
                response_class = response_class.value
            response = response_class(content, **arguments)
        if not is_body_allowed_for_status_code(response.status_code):
            response.body = b""
        return response


#: ``async`` dependencies the short path runs on its thread, as their synchronous twins.
SYNC_TWINS: dict[Callable[..., Any], Callable[[Request], None]] = {
    context.require_json: context.check_json,
}


def _guard(sub: Dependant) -> Callable[[Request], object] | None:
    """A dependency that takes only the request, run on the endpoint's thread: a plain
    ``def`` as it is, an ``async def`` through :data:`SYNC_TWINS`; else None."""
    call = sub.call
    if (
        call is None
        or sub.name is not None  # a parameter of the endpoint, whose value it takes
        or inspect.isgeneratorfunction(call)
        or inspect.isasyncgenfunction(call)
        or sub.dependencies
        or sub.path_params
        or sub.query_params
        or sub.header_params
        or sub.cookie_params
        or sub.body_params
        or sub.request_param_name is None
    ):
        return None
    if inspect.iscoroutinefunction(call):
        twin = SYNC_TWINS.get(call)
        if twin is None:
            return None
        return twin
    name = sub.request_param_name
    return lambda request: call(**{name: request})


def _fastapi_answers(request: Request, overrides: Any) -> bool:
    """Whether FastAPI's own handler must answer whatever the request: its telemetry
    is on, an outer app limits the body, or a dependency is overridden (tests)."""
    return (
        get_telemetry_data() is not None
        or MAX_BODY_SIZE_SCOPE_KEY in request.scope
        or (overrides is not None and bool(getattr(overrides, "dependency_overrides", None)))
    )


async def _read(request: Request) -> bytes:
    """The body, with FastAPI's handling of a failed read (the edge's 413 and 408 are
    HTTP exceptions and pass through)."""
    try:
        return await request.body()
    except HTTPException:
        raise
    except Exception as error:
        raise HTTPException(
            status_code=400, detail="There was an error parsing the body"
        ) from error


def takes_short_path(route: APIRoute) -> bool:
    """Whether :class:`LeanRoute` gives this route its short path (tests, docs)."""
    return _Plan.of(_effective(route)) is not None
