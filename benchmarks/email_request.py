"""Email sign-in request path: latency for known vs unknown addresses (SECURITY.md case 10),
and Sekisho's floor against a minimal Starlette app on the same machine, in one run.

Run:  .venv/bin/python -m benchmarks.email_request [--samples 400] [--worker separate]
It starts its own servers on 127.0.0.1 (SQLite in a temporary folder, a throwaway SMTP
sink) and prints medians and ratios; nothing here is asserted, it is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tests.support.ports import free_port
from tests.support.server import LiveServer, settings_for
from tests.support.smtp import SmtpCapture


def _minimal_app() -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/healthz", health)])


def _serve_minimal() -> tuple[str, uvicorn.Server]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(_minimal_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}", server


def _timed(call: Callable[[], httpx.Response], expected: int) -> float:
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    if response.status_code != expected:
        raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument(
        "--worker",
        choices=["in-process", "separate"],
        default="in-process",
        help="deliver mail inside the measured server, or leave it to another process",
    )
    args = parser.parse_args()
    smtp = SmtpCapture()
    smtp.start()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        settings = settings_for(
            f"sqlite:///{folder}/bench.db",
            smtp.port,
            port,
            limit_sends_per_address="100000/hour",
            limit_sends_per_ip="100000/hour",
            limit_sends_global="100000/hour",
            mail_worker=args.worker == "in-process",
            mail_poll_seconds=0.5,
        )
        sekisho = LiveServer(settings, port).start()
        sekisho.add_user("known@example.com")
        minimal_url, minimal = _serve_minimal()
        known: list[float] = []
        unknown: list[float] = []
        floor_sekisho: list[float] = []
        floor_minimal: list[float] = []
        with (
            httpx.Client(base_url=sekisho.url) as client,
            httpx.Client(base_url=minimal_url) as bare,
        ):
            for index in range(args.samples):
                pair = [("known@example.com", known), ("unknown@example.com", unknown)]
                if index % 2:
                    pair.reverse()
                for address, bucket in pair:
                    bucket.append(
                        _timed(
                            partial(client.post, "/api/v1/signin/email", json={"email": address}),
                            202,
                        )
                    )
                floor_sekisho.append(_timed(lambda: client.get("/healthz"), 200))
                floor_minimal.append(_timed(lambda: bare.get("/healthz"), 200))
        sekisho.stop()
        minimal.should_exit = True
    smtp.stop()
    median = statistics.median
    print(f"samples per series: {args.samples}; mail worker: {args.worker}")
    print(f"POST /api/v1/signin/email, known address:   median {median(known):.2f} ms")
    print(f"POST /api/v1/signin/email, unknown address: median {median(unknown):.2f} ms")
    print(f"  ratio known/unknown: {median(known) / median(unknown):.3f}")
    print(f"GET /healthz, Sekisho:            median {median(floor_sekisho):.2f} ms")
    print(f"GET /healthz, minimal Starlette:  median {median(floor_minimal):.2f} ms")
    print(f"  ratio Sekisho/Starlette: {median(floor_sekisho) / median(floor_minimal):.3f}")


if __name__ == "__main__":
    main()
