"""A stand-in relying party's callback on a real socket: it records every authorization
response it receives, by GET (``query``) or POST (``form_post``), and answers a page."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.support.ports import free_port


class Callback:
    def __init__(self) -> None:
        self.port = free_port()
        self.redirect_uri = f"http://127.0.0.1:{self.port}/callback"
        self.received: list[tuple[str, dict[str, str]]] = []
        self._arrived = threading.Condition()
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self, method: str, query: str) -> None:
                values = {name: items[0] for name, items in parse_qs(query).items()}
                with callback._arrived:
                    callback.received.append((method, values))
                    callback._arrived.notify_all()
                body = (
                    b"<!doctype html><title>Relying party</title><h1 id='rp'>Back at the app</h1>"
                )
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._record("GET", urlsplit(self.path).query)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._record("POST", self.rfile.read(length).decode())

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> Callback:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float = 15.0) -> tuple[str, dict[str, str]]:
        """The first response received (waiting for it if need be)."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: bool(self.received), timeout=timeout):
                raise AssertionError("the relying party received nothing")
            return self.received[0]
