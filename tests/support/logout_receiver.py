"""A relying party's back-channel logout endpoint on a real socket (OpenID Connect
Back-Channel Logout 1.0 §2.5): it records every ``logout_token`` posted to it, and can
be told to answer with an error status for its first requests (a client that is down)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.support.ports import free_port


class LogoutReceiver:
    def __init__(self, *, failures: int = 0, status: int = 503, location: str = "") -> None:
        """Answer ``status`` (with ``location``, for a redirect) to the first
        ``failures`` requests, then 200."""
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}/backchannel-logout"
        self.attempts: list[dict[str, str]] = []
        self.tokens: list[str] = []
        self._failures = failures
        self._arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = {
                    name: values[0]
                    for name, values in parse_qs(self.rfile.read(length).decode()).items()
                }
                with receiver._arrived:
                    receiver.attempts.append(
                        {**form, "_content_type": self.headers.get("Content-Type", "")}
                    )
                    failing = len(receiver.attempts) <= receiver._failures
                    if not failing:
                        receiver.tokens.append(form.get("logout_token", ""))
                    receiver._arrived.notify_all()
                self.send_response(status if failing else 200)
                if failing and location:
                    self.send_header("Location", location)
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> LogoutReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for_tokens(self, count: int = 1, timeout: float = 20.0) -> list[str]:
        """The tokens accepted so far, once there are at least ``count``."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.tokens) >= count, timeout=timeout):
                raise AssertionError(f"received {len(self.tokens)} logout tokens, not {count}")
            return list(self.tokens)

    def wait_for_attempts(self, count: int, timeout: float = 20.0) -> None:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.attempts) >= count, timeout=timeout):
                raise AssertionError(f"received {len(self.attempts)} requests, not {count}")
