"""In-process CPU of the HTTP floor: the whole ASGI app driven directly, no server, no I/O.

Run:  .venv/bin/python -m benchmarks.floor [--requests 2000] [--rounds 15]
Compare two trees in the same run: ``--other /tmp/edge-old/src`` runs the same requests
in a child process with that tree first on ``PYTHONPATH``, alternating round by round.

Each request is a fresh synthetic scope, ``receive`` and ``send`` (what uvicorn hands the
app), through every layer Sekisho's app has in production (``mode = production``,
tracing off, access log on, written to ``/dev/null``): ``Edge``, FastAPI's and
Starlette's layers, routing, the route. The requests touch no database:

- ``GET /healthz``: the cheapest route (``async``, no hop);
- ``GET /no/such/path``: a 404, routing tries every route, then the error handler;
- ``GET /userinfo`` without a token: a sync route after 30 others, one hop to a thread,
  401 with its challenge;
- ``POST /api/v1/signin/email`` with an invalid email: a lean route whose body fails
  validation, answered by FastAPI's handler and Sekisho's 422 ``invalid_email``;
- ``POST /api/v1/signin/email`` with a valid body from another site: the lean route's
  short path, one hop to the endpoint pool, refused there with 403 ``csrf_failed``.

A round sends ``--requests`` of one kind; the figure is the median over ``--rounds``
rounds of process CPU (``time.process_time``, so the endpoint pool's threads count too)
per request, in microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

ORIGIN = "https://id.example.com"
KINDS = ("healthz", "404", "userinfo", "email-invalid", "email-cross-site")
_EMAIL = "/api/v1/signin/email"


def _request(kind: str) -> tuple[str, str, list[tuple[bytes, bytes]], bytes, int]:
    """Method, path, headers, body and the status Sekisho answers for one kind."""
    common = [(b"host", b"id.example.com"), (b"user-agent", b"bench/1"), (b"accept", b"*/*")]
    if kind == "healthz":
        return "GET", "/healthz", common, b"", 200
    if kind == "404":
        return "GET", "/no/such/path", common, b"", 404
    if kind == "userinfo":
        return "GET", "/userinfo", common, b"", 401
    good = kind == "email-cross-site"
    body = json.dumps({"email": "someone@example.com" if good else "nope", "locale": "en"})
    origin = b"https://elsewhere.example" if good else ORIGIN.encode()
    headers = [
        *common,
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"origin", origin),
    ]
    return "POST", _EMAIL, headers, body.encode(), 403 if good else 422


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8000),
        "client": ("10.0.0.7", 50000),
        "scheme": "http",
        "method": method,
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "state": {},
    }


async def _send_many(app: Callable[..., Any], kind: str, count: int) -> None:
    method, path, headers, body, expected = _request(kind)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(count):
        await app(_scope(method, path, headers), receive, send)
    if set(statuses) != {expected}:
        raise SystemExit(f"{kind}: expected {expected}, got {sorted(set(statuses))}")


def _app() -> Any:
    from sekisho.app import create_app
    from sekisho.settings import Settings

    directory = tempfile.mkdtemp(prefix="sekisho-floor-")
    settings = Settings(
        mode="production",
        public_origin=ORIGIN,
        secret_key="f" * 48,
        database_url=f"sqlite:///{directory}/floor.db",
        mail_backend="smtp",
        mail_worker=False,
    )
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("sekisho.web").setLevel(logging.CRITICAL)
    return create_app(settings)


def _serve(requests: int) -> None:
    """Child mode: read a kind per line on stdin, answer the CPU per request in us."""
    app = _app()
    loop = asyncio.new_event_loop()
    for kind in KINDS:  # warm: FastAPI builds included routes' handlers on first use
        loop.run_until_complete(_send_many(app, kind, 50))
    for line in sys.stdin:
        kind = line.strip()
        start = time.process_time()
        loop.run_until_complete(_send_many(app, kind, requests))
        print((time.process_time() - start) / requests * 1e6, flush=True)


class _Tree:
    def __init__(self, label: str, src: str | None, requests: int) -> None:
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, (src, env.get("PYTHONPATH"))))
        self.label = label
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.floor", "--serve", "--requests", str(requests)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def measure(self, kind: str) -> float:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(kind + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"{self.label}: the child process ended")
        return float(line)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--other", help="another tree's src directory, measured alongside")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve(args.requests)
        return
    trees = [_Tree("this tree", None, args.requests)]
    if args.other:
        trees.insert(0, _Tree(args.other, args.other, args.requests))
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for kind in KINDS:
            for tree in trees:
                samples.setdefault((tree.label, kind), []).append(tree.measure(kind))
    for tree in trees:
        tree.close()
    print(f"median us of process CPU per request, {args.rounds} rounds of {args.requests}")
    header = f"{'request':<18}" + "".join(f"{tree.label:>22}" for tree in trees)
    print(header + ("   ratio" if len(trees) == 2 else ""))
    for kind in KINDS:
        medians = [statistics.median(samples[(tree.label, kind)]) for tree in trees]
        row = f"{kind:<18}" + "".join(f"{value:>22.1f}" for value in medians)
        if len(medians) == 2:
            row += f"   {medians[1] / medians[0]:.2f}"
        print(row)


if __name__ == "__main__":
    main()
