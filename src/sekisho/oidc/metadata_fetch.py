"""Fetching a client's metadata documents (its ``jwks_uri``, RFC 7517 §5 and OIDC
Registration §2; its ``sector_identifier_uri``, OIDC Core §8.1) without letting a
registered URI turn Sekisho into a proxy into its own network (SSRF).

Invariants of every fetch:

- ``https`` only; ``http`` only on a loopback host when
  ``oidc_client_fetch_allow_loopback`` is on (development and tests; production
  refuses that setting).
- The host is resolved here and every address it resolves to must be public (not
  private, loopback, link-local, multicast, shared, reserved or unspecified); loopback
  is allowed only with the same setting. The connection goes to the checked address,
  with the name kept for ``Host`` and for TLS (SNI and certificate check), so a second
  resolution cannot swap in another address (DNS rebinding). No proxy from the
  environment is used.
- No redirect is followed; short timeouts, and a body of at most :data:`MAX_BYTES`.
- The caller waits at most :data:`DEADLINE` for the whole fetch, name resolution
  included: the fetch runs in a daemon thread of its own, at most
  :data:`MAX_CONCURRENT` at once, so a site that answers a byte at a time (or a slow
  resolver) cannot hold the server's thread pool.
- The body must be JSON.

A refusal is :class:`FetchRefused` with a stable ``code`` (:class:`FetchFailure`),
never an unhandled error. Fetches block: call them from the thread pool, never from
the event loop.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import httpx

from sekisho.oidc.clients import is_loopback

MAX_BYTES = 64 * 1024
MAX_URI_LENGTH = 2000
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 3.0
DEADLINE = 5.0
"""Seconds the caller waits for the whole fetch, however slowly the answer trickles in."""
MAX_CONCURRENT = 8
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d{1,10})\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)", re.IGNORECASE)

Resolver = Callable[[str, int], list[str]]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
"""RFC 6052's well-known prefix: the IPv4 address it embeds is the one reached."""


class FetchFailure(StrEnum):
    """Why a fetch was refused: stable codes for audit events and operators."""

    uri = "uri"
    """Not an https URI (or http on loopback where allowed), or userinfo/fragment."""
    address = "address"
    """The host resolves to an address that is not public (or does not resolve)."""
    unreachable = "unreachable"
    timeout = "timeout"
    redirect = "redirect"
    status = "status"
    too_large = "too_large"
    not_json = "not_json"
    invalid = "invalid"
    """JSON, but not the document expected (a JWK Set, an array of URIs)."""


class FetchRefused(Exception):
    def __init__(self, code: FetchFailure, detail: str = "") -> None:
        super().__init__(f"{code.value}: {detail}" if detail else code.value)
        self.code = code


@dataclass(frozen=True, slots=True)
class Fetched:
    document: Any
    max_age: int | None
    """Seconds from ``Cache-Control: max-age`` (0 for ``no-store``/``no-cache``);
    None when the response says nothing."""


def _resolve(host: str, port: int) -> list[str]:
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise FetchRefused(FetchFailure.address, f"{host} does not resolve") from error
    return [str(entry[4][0]) for entry in found]


def max_age(cache_control: str) -> int | None:
    """The freshness lifetime a ``Cache-Control`` header gives (RFC 9111 §5.2.2)."""
    if _NO_CACHE.search(cache_control):
        return 0
    found = _MAX_AGE.search(cache_control)
    return int(found.group(1)) if found else None


class MetadataFetcher:
    def __init__(
        self,
        *,
        allow_loopback: bool,
        resolve: Resolver = _resolve,
        deadline: float = DEADLINE,
    ) -> None:
        self.allow_loopback = allow_loopback
        self._resolve = resolve
        self._deadline = deadline
        self._slots = threading.BoundedSemaphore(MAX_CONCURRENT)

    def check_uri(self, uri: str) -> str:
        """``uri`` if it may be fetched at all (before any resolution), else
        :class:`FetchRefused` with ``uri``."""
        if len(uri) > MAX_URI_LENGTH or not uri.isascii() or not uri.isprintable() or " " in uri:
            raise FetchRefused(FetchFailure.uri, "not a plain URI")
        parts = urlsplit(uri)
        try:
            parts.port  # noqa: B018 (a malformed port raises)
        except ValueError as error:
            raise FetchRefused(FetchFailure.uri, "malformed port") from error
        if parts.fragment or "#" in uri or parts.username is not None or parts.password:
            raise FetchRefused(FetchFailure.uri, "no fragment and no user information")
        if not parts.hostname:
            raise FetchRefused(FetchFailure.uri, "no host")
        if parts.scheme == "https":
            return uri
        if parts.scheme == "http" and self.allow_loopback and is_loopback(parts.hostname):
            return uri
        raise FetchRefused(FetchFailure.uri, "use https")

    def fetch_json(self, uri: str) -> Fetched:
        """The JSON document at ``uri``, or :class:`FetchRefused`, within the deadline."""
        self.check_uri(uri)
        if not self._slots.acquire(timeout=self._deadline):
            raise FetchRefused(FetchFailure.timeout, "too many fetches under way")
        outcome: list[Fetched | FetchRefused] = []
        worker = threading.Thread(
            target=self._run, args=(uri, outcome), name="sekisho-metadata-fetch", daemon=True
        )
        worker.start()
        worker.join(self._deadline)
        if not outcome:
            raise FetchRefused(
                FetchFailure.timeout if worker.is_alive() else FetchFailure.unreachable
            )
        if isinstance(outcome[0], FetchRefused):
            raise outcome[0]
        return outcome[0]

    def _run(self, uri: str, outcome: list[Fetched | FetchRefused]) -> None:
        try:
            outcome.append(self._fetch(uri))
        except FetchRefused as error:
            outcome.append(error)
        finally:
            self._slots.release()

    def _fetch(self, uri: str) -> Fetched:
        parts = urlsplit(uri)
        host = str(parts.hostname)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._checked_address(host, port)
        literal = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{literal}:{port}").geturl()
        host_header = f"[{host}]" if ":" in host else host
        if parts.port:
            host_header = f"{host_header}:{parts.port}"
        deadline = time.monotonic() + self._deadline
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                    follow_redirects=False,
                    trust_env=False,
                ) as http,
                http.stream(
                    "GET",
                    target,
                    headers={"Host": host_header, "Accept": "application/json"},
                    extensions={"sni_hostname": host},
                ) as answer,
            ):
                if answer.is_redirect:
                    raise FetchRefused(FetchFailure.redirect, str(answer.status_code))
                if answer.status_code != 200:
                    raise FetchRefused(FetchFailure.status, str(answer.status_code))
                body = _bounded_body(answer, deadline)
                cache_control = answer.headers.get("cache-control", "")
        except httpx.TimeoutException as error:
            raise FetchRefused(FetchFailure.timeout) from error
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
            raise FetchRefused(FetchFailure.unreachable, type(error).__name__) from error
        try:
            document = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise FetchRefused(FetchFailure.not_json) from error
        return Fetched(document=document, max_age=max_age(cache_control))

    def _checked_address(self, host: str, port: int) -> str:
        """The address to connect to: every address the host has must be allowed,
        so that the choice among them cannot matter."""
        addresses = self._resolve(host, port)
        if not addresses:
            raise FetchRefused(FetchFailure.address, f"{host} does not resolve")
        for address in addresses:
            if not self._allowed(address):
                raise FetchRefused(FetchFailure.address, f"{host} resolves to {address}")
        return addresses[0]

    def _allowed(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address):
            embedded = ip.ipv4_mapped or ip.sixtofour
            if embedded is None and ip in _NAT64:
                embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            ip = embedded or ip
        if ip.is_loopback:
            return self.allow_loopback
        return ip.is_global and not ip.is_multicast


def _bounded_body(answer: httpx.Response, deadline: float) -> bytes:
    declared = answer.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise FetchRefused(FetchFailure.too_large, declared)
    body = bytearray()
    for chunk in answer.iter_bytes():
        body.extend(chunk)
        if len(body) > MAX_BYTES:
            raise FetchRefused(FetchFailure.too_large)
        if time.monotonic() > deadline:
            raise FetchRefused(FetchFailure.timeout)
    return bytes(body)
