"""A minimal keep-alive HTTP/1.1 client on asyncio streams, for the load generator.

httpx costs several times the CPU of the servers it measures; this client does only
what the scenarios need (JSON bodies, Content-Length responses, a cookie jar), so one
core of load generator can saturate one core of server. Loopback only.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    #: The ``Location`` header of a redirect, if any.
    location: str | None = None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Client:
    """One virtual user's connection and cookies."""

    port: int
    host_header: str
    cookies: dict[str, str] = field(default_factory=dict)
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: Any, headers: dict[str, str] | None = None) -> Response:
        return await self.request("POST", path, json.dumps(body).encode(), headers=headers)

    async def post_form(
        self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
    ) -> Response:
        """An ``application/x-www-form-urlencoded`` POST (the token endpoint's body)."""
        payload = urlencode(fields).encode()
        return await self.request("POST", path, payload, FORM, headers)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return await self.request("GET", path, None, headers=headers)

    async def request(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        content_type: str = JSON,
        headers: dict[str, str] | None = None,
    ) -> Response:
        reused = self._writer is not None and not self._writer.is_closing()
        try:
            return await self._send(method, path, payload, content_type, headers)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            # The server closes idle keep-alive connections; only then is a retry safe
            # (nothing of the request was answered).
            if not reused or (isinstance(error, asyncio.IncompleteReadError) and error.partial):
                raise
            await self.close()
            return await self._send(method, path, payload, content_type, headers)

    async def _send(
        self,
        method: str,
        path: str,
        payload: bytes | None,
        content_type: str,
        headers: dict[str, str] | None,
    ) -> Response:
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self._reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}"]
        head += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if payload is not None:
            head += [f"Content-Type: {content_type}", f"Content-Length: {len(payload)}"]
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        self._writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (payload or b""))
        raw = await self._reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        closing = False
        location = None
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "set-cookie":
                pair = value.strip().split(";", 1)[0]
                key, _, cookie = pair.partition("=")
                self.cookies[key] = cookie
            elif name == "connection" and value.strip().lower() == "close":
                closing = True
            elif name == "location":
                location = value.strip()
        content = await self._reader.readexactly(length)
        if closing:
            await self.close()
        return Response(status, content, location)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self._reader = None
