"""Password bridge timing: unknown address vs known address with a wrong password vs the
right password (SECURITY.md case 24), measured in one run.

Run:  .venv/bin/python -m benchmarks.password_timing [--samples 200]
Starts its own server on 127.0.0.1 (SQLite in a temporary folder); prints medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime

import httpx
from tests.support.server import LiveServer, settings_for
from tests.support.smtp import free_port

from sekisho.core.records import User
from sekisho.methods.password.hashes import hash_password


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        settings = settings_for(
            f"sqlite:///{folder}/bench.db",
            free_port(),
            port,
            mail_worker=False,
            limit_verify_per_ip="100000/hour",
            limit_verify_global="100000/minute",
            account_failure_free_attempts=100,
        )
        server = LiveServer(settings, port).start()
        database = server.database
        now = datetime.now(UTC)
        with database.transaction() as repos:
            repos.users.save_imported(
                User(
                    id="bench",
                    email="known@example.com",
                    status="active",
                    created_at=now,
                    imported_at=now,
                )
            )
            repos.passwords.put(
                "bench", hash=hash_password("right password"), scheme="argon2id", now=now
            )
        database.dispose()
        series: dict[str, list[float]] = {
            "unknown address": [],
            "wrong password": [],
            "right password": [],
        }
        cases = [
            ("unknown address", "nobody@example.com", "wrong password"),
            ("wrong password", "known@example.com", "wrong password"),
            ("right password", "known@example.com", "right password"),
        ]
        with httpx.Client(base_url=server.url) as client:
            for index in range(args.samples):
                # Several unknown addresses, so none reaches the failure cap (a 429 would
                # skip the argon2 work and flatter the unknown series).
                cases[0] = ("unknown address", f"nobody{index % 40}@example.com", "wrong password")
                for label, email, password in cases[index % 3 :] + cases[: index % 3]:
                    started = time.perf_counter()
                    client.post(
                        "/api/v1/signin/password", json={"email": email, "password": password}
                    )
                    series[label].append((time.perf_counter() - started) * 1000)
                    if label == "wrong password" and index % 50 == 49:
                        client.post(
                            "/api/v1/signin/password",
                            json={"email": "known@example.com", "password": "right password"},
                        )
        server.stop()
    base = statistics.median(series["wrong password"])
    print(f"samples per series: {args.samples}")
    for label, values in series.items():
        median = statistics.median(values)
        print(f"{label:<16} median {median:7.2f} ms   ratio to wrong password {median / base:.3f}")


if __name__ == "__main__":
    main()
