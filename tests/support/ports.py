"""Ports for the servers tests start, chosen so that nothing else takes them first.

A port the kernel hands out for ``bind(0)`` comes from the ephemeral range, the same
range it draws from for every outgoing connection (to PostgreSQL, Redis, a test's own
HTTP client). Between the choice and the server's own bind, such a connection can take
the port, and the server fails to start. :func:`free_port` chooses below that range,
where only a listener that asks for its port by number ever lands, and never hands the
same port out twice in one test run.
"""

from __future__ import annotations

import random
import socket
import threading
from pathlib import Path

#: The lowest port handed out; below it sit the well-known and many registered services.
LOWEST = 20_000
_given: set[int] = set()
_lock = threading.Lock()


def ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (Linux's default when unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port() -> int:
    """A port on 127.0.0.1 that is free now, below the ephemeral range, not given before."""
    highest = ephemeral_start() - 1
    with _lock:
        while True:
            port = random.randint(LOWEST, highest)
            if port in _given:
                continue
            _given.add(port)
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
