"""JSON answers rendered once, by pydantic-core.

The sign-in and step-up endpoints built a pydantic model, turned it into a dict of JSON
values (``model_dump(mode="json")``) and had Starlette's ``JSONResponse`` encode that
dict again with ``json.dumps``; the ceremony options (a plain dict) went through
``json.dumps`` alone, whose encoder is made anew on every call for the compact
separators. ``pydantic_core.to_json`` writes a model, through the model's own
serializer, or a dict of JSON values straight to UTF-8 bytes, as Starlette did: the
same keys in the same order, the same datetimes (ISO 8601, ``Z`` for UTC, as
``model_dump(mode="json")`` wrote them), compact separators, non-ASCII characters as
they are (``ensure_ascii=False``). The endpoints keep their ``response_model`` for the
OpenAPI schema; they return the ``Response`` themselves, so FastAPI neither validates
nor encodes the answer again (nor, for a ``def`` route, hops to the thread pool for it).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic_core import to_json
from starlette.responses import Response


def json_answer(content: BaseModel | dict[str, Any], *, status_code: int = 200) -> Response:
    """``content`` as an ``application/json`` response."""
    return Response(to_json(content), status_code=status_code, media_type="application/json")
