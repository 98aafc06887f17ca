"""Password bridge timing: an unknown address vs a known address with a wrong password,
for every supported legacy hash format (SECURITY.md cases 24 and 60), in one run.

Run:  .venv/bin/python -m benchmarks.password_timing [--samples 30] [--floor SECONDS]
Starts its own server on 127.0.0.1 (SQLite in a temporary folder), imports one account
per format through the importer (so its hash is stored wrapped) with each framework's
default cost, plus two ASP.NET Core Identity accounts stored unwrapped (a database
imported before wrapping existed), and prints per series the median, the ratio
unknown / this series, and how many samples answered more than 50 ms after the floor
(the work itself, or the loaded machine, overran it). ``--floor`` overrides
``password_attempt_floor`` (default: the server's default); a tiny floor such as 0.001
shows the raw cost each format adds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import statistics
import struct
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import httpx
from argon2 import PasswordHasher, Type
from passlib.hash import django_pbkdf2_sha256, pbkdf2_sha256, scrypt, sha256_crypt, sha512_crypt
from tests.support.ports import free_port
from tests.support.server import LiveServer, settings_for

from sekisho.core.records import User
from sekisho.importer import import_users

PASSWORD = "right password"  # noqa: S105 (the benchmark accounts' password)
UNKNOWN = "unknown address"


def _aspnet(version: int, password: str) -> str:
    salt = bytes(range(16))
    if version == 2:
        blob = b"\x00" + salt + hashlib.pbkdf2_hmac("sha1", password.encode(), salt, 1000, 32)
    else:
        key = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, 100_000, 32)
        blob = b"\x01" + struct.pack(">III", 2, 100_000, 16) + salt + key
    return base64.b64encode(blob).decode()


def legacy_hashes(password: str) -> dict[str, str]:
    """One hash per format, with the cost its framework uses by default."""
    return {
        "aspnet-identity-v2": _aspnet(2, password),
        "aspnet-identity-v3 (100k SHA-512)": _aspnet(3, password),
        "bcrypt (cost 12)": bcrypt.hashpw(password.encode(), bcrypt.gensalt(12)).decode(),
        "argon2i (argon2-cffi default)": PasswordHasher(type=Type.I).hash(password),
        "argon2id (argon2-cffi default)": PasswordHasher().hash(password),
        "django-pbkdf2-sha256 (1M)": django_pbkdf2_sha256.using(rounds=1_000_000).hash(password),
        "passlib-pbkdf2-sha256 (29k)": pbkdf2_sha256.hash(password),
        "scrypt (ln=16, r=8)": scrypt.hash(password),
        "sha256-crypt (535k)": sha256_crypt.hash(password),
        "sha512-crypt (656k)": sha512_crypt.hash(password),
    }


def _accounts(server: LiveServer, folder: str) -> dict[str, str]:
    """Series label -> address of its account."""
    hashes = legacy_hashes(PASSWORD)
    emails = {label: f"user{index}@example.com" for index, label in enumerate(hashes)}
    source = Path(folder) / "users.jsonl"
    source.write_text(
        "".join(
            json.dumps({"id": f"u{index}", "email": emails[label], "password_hash": stored}) + "\n"
            for index, (label, stored) in enumerate(hashes.items())
        ),
        encoding="utf-8",
    )
    summary = import_users(server.database, source, now=datetime.now(UTC))
    assert summary.created == len(hashes), summary
    now = datetime.now(UTC)
    with server.database.transaction() as repos:
        for version in (2, 3):
            label = f"aspnet-identity-v{version} (unwrapped)"
            user_id = f"raw-v{version}"
            emails[label] = f"{user_id}@example.com"
            repos.users.save_imported(
                User(id=user_id, email=emails[label], status="active", created_at=now)
            )
            repos.passwords.put(
                user_id, hash=_aspnet(version, PASSWORD), scheme=f"aspnet-v{version}", now=now
            )
    server.database.dispose()
    return emails


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--floor", type=float, default=None)
    args = parser.parse_args()
    if not 1 <= args.samples <= 95:
        parser.error("--samples must be 1..95 (one account per format stays under the cap)")
    overrides: dict[str, Any] = {}
    if args.floor is not None:
        overrides["password_attempt_floor"] = timedelta(seconds=args.floor)
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
            **overrides,
        )
        server = LiveServer(settings, port).start()
        emails = _accounts(server, folder)
        labels = [UNKNOWN, *emails]
        series: dict[str, list[float]] = {label: [] for label in labels}
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for index in range(args.samples):
                rotated = labels[index % len(labels) :] + labels[: index % len(labels)]
                for label in rotated:
                    # Several unknown addresses, so none reaches the failure cap.
                    email = emails.get(label, f"nobody{index % 40}@example.com")
                    started = time.perf_counter()
                    answer = client.post(
                        "/api/v1/signin/password",
                        json={"email": email, "password": "wrong password"},
                    )
                    series[label].append((time.perf_counter() - started) * 1000)
                    assert answer.status_code == 400, (label, answer.text)
        server.stop()
    floor = settings.password_attempt_floor.total_seconds()
    unknown = statistics.median(series[UNKNOWN])
    print(f"password_attempt_floor {floor:.3f} s, samples per series: {args.samples}")
    print(
        f"{'series (wrong password)':<40} {'median ms':>10} {'unknown / this':>15}"
        f" {'over the floor':>15}"
    )
    for label, values in series.items():
        median = statistics.median(values)
        over = sum(1 for value in values if value > floor * 1000 + 50)
        print(f"{label:<40} {median:10.1f} {unknown / median:15.3f} {over:>9} of {len(values)}")


if __name__ == "__main__":
    main()
