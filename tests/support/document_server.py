"""A relying party's published documents on a real socket (127.0.0.1, plain http, which
Sekisho fetches only with ``oidc_client_fetch_allow_loopback``): its JWK Set at a
``jwks_uri``, its ``sector_identifier_uri`` listing, or a misbehaving answer (a
redirect, an oversize or non-JSON body). It counts the requests for each path."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.ports import free_port


@dataclass
class Answer:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    declare_length: bool = True
    """False: no Content-Length, the body ends when the connection closes."""
    stall: float = 0.0
    """Seconds to wait before answering (a site that answers slowly)."""


class DocumentServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.origin = f"http://127.0.0.1:{self.port}"
        self.hits: Counter[str] = Counter()
        self.hosts: list[str] = []
        self._answers: dict[str, Answer] = {}
        self._lock = threading.Lock()
        documents = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with documents._lock:
                    documents.hits[self.path] += 1
                    documents.hosts.append(self.headers.get("Host", ""))
                    answer = documents._answers.get(self.path, Answer(b"", status=404))
                time.sleep(answer.stall)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.declare_length:
                    self.send_header("Content-Length", str(len(answer.body)))
                else:
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def serve(self, path: str, answer: Answer) -> str:
        """Answer GET ``path`` so from now on; its URL."""
        with self._lock:
            self._answers[path] = answer
        return self.origin + path

    def serve_json(self, path: str, document: Any, headers: dict[str, str] | None = None) -> str:
        body = json.dumps(document).encode()
        kind = {"Content-Type": "application/json"}
        return self.serve(path, Answer(body, headers={**kind, **(headers or {})}))

    def start(self) -> DocumentServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
