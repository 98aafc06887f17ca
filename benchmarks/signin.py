"""Sign-in throughput, latency and server CPU: Sekisho against the minimal reference app.

Run:  .venv/bin/python -m benchmarks.signin [--users 32] [--seconds 10] [--backend sqlite]
      [--scenario email --scenario code --scenario passkey]
      [--scenario exchange --scenario refresh --scenario userinfo --scenario confirm]

Both servers run as separate uvicorn processes (one worker), pinned with ``taskset`` to
core 1 when the machine has two or more; the load generator pins itself to core 0 and
runs ``--users`` closed-loop virtual users over keep-alive HTTP/1.1 on 127.0.0.1, each
with its own address, binding cookie and passkey. Per scenario and server it prints
operations per second, p50/p95/p99 latency of one operation, the server process's CPU
milliseconds per operation (utime + stime from /proc/<pid>/stat, before and after the
window) and that CPU as a ratio to the reference app measured in the same run, then
each server's CPU per operation split between its event loop's thread (uvicorn's main
thread: HTTP, middleware, routing) and its other threads (Sekisho's endpoints and
workers, the database driver in them; the reference has none doing work). Statuses
other than the expected ones (a 500 above all) are counted and printed.

``--mail-worker separate`` runs Sekisho's delivery in its own ``sekisho mail worker``
process (pinned with the server), as the deployment guide advises; the server's CPU
then excludes delivery, and the worker's CPU per operation is printed apart.

Scenarios, in this order by default: ``code`` (request, wait for the mail at the SMTP
sink, POST the code: one whole code sign-in), ``passkey`` (options, then verify with the
software authenticator of tests/support), ``email`` (POST the sign-in request; last,
since it queues more mail than a worker delivers in the window, and the next window
would pay for that backlog). ``floor`` (not run by default) is ``GET /healthz``: the
HTTP floor of each server, routing and middleware with no work. The OpenID Connect
scenarios (not run by default) share one first-party confidential client, registered
before the first of them runs, when each user also signs in by passkey and keeps that
browser's cookies: ``exchange`` (``GET /authorize`` with PKCE S256 for the signed-in
browser, then ``POST /token`` with the code and ``client_secret_basic``: ID, access and
refresh token), ``refresh`` (the ``refresh_token`` grant; each answer's refresh token is
the user's next, so rotation is exercised) and ``userinfo`` (``GET /userinfo`` with the
user's latest access token). ``confirm`` (not run by default, after the same set-up) is
a step-up confirmation of a withdrawal, as the brokerage example asks for one: the
application (its own connection) posts the action and details with the user's access
token, the signed-in browser gets the passkey options whose challenge binds the details'
hash and answers them with the software authenticator (user verified), and the
application collects the signed single-use confirmation (HTTP Basic). The application's
own check of that JWT is not done: it is not the server's work. Nothing here is asserted.

``--open-loop`` adds, per scenario, a window where operations arrive at a fixed rate,
half of what each server reached in its closed-loop window, whatever the latency: the
p50/p95/p99 a service shows below saturation (issue 8's "p99 under 50 ms at half the
maximum rate"). Latency counts from when an operation was due. ``--open-rate N``
runs that window at N operations per second for every server instead: the same load for
each, so the CPU per operation of 1 and 2 workers can be compared below saturation
(where a full machine's scheduling does not inflate it).

Each virtual user clears its cookies before an operation except Sekisho's device cookie,
as a returning person's browser keeps it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import psycopg
from tests.support.authenticator import SoftAuthenticator, b64url, b64url_decode
from tests.support.confirmations import ACTIONS, STEP_UP
from tests.support.ports import free_port
from tests.support.server import POSTGRES_ADMIN

from benchmarks.mailsink import MailSink
from benchmarks.reference_app import Store
from benchmarks.wire import Client

MAX_USERS = 256
MAX_SECONDS = 120.0
SECRET = "benchmark-secret-key-0123456789abcdef0123456789"  # noqa: S105 (throwaway servers)
VENV_BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/14"
DEVICE_COOKIE = "sekisho_device"  # development mode: no __Host- prefix
OIDC_CLIENT = "bench-rp"
OIDC_REDIRECT = "https://rp.example/callback"
OIDC_SCOPE = "openid email profile offline_access"
OIDC_VERIFIER = "benchmark-pkce-verifier-0123456789abcdefghijklmnop"
OIDC_CHALLENGE = (
    base64.urlsafe_b64encode(hashlib.sha256(OIDC_VERIFIER.encode()).digest()).rstrip(b"=").decode()
)
#: The ``confirm`` scenario's policy: the withdrawal of examples/policy.toml (as the
#: integration tests declare it), asked of every account with an AAL2 session from
#: within the run.
CONFIRM_POLICY = STEP_UP.format(aal=2).replace('"5m"', '"12h"') + ACTIONS


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    paths: dict[str, str]
    database_url: str
    #: ``sekisho mail worker`` when delivery runs in its own process.
    mailer: subprocess.Popen[bytes] | None = None
    #: The benchmark client's secret (set up before the first OIDC scenario).
    oidc_secret: str = ""

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"

    def cpu_seconds(self) -> float:
        """The server's CPU: its process and every descendant (``--workers`` above 1
        runs the workers as children of uvicorn's manager)."""
        return sum(_pid_cpu_seconds(pid) for pid in _tree(self.process.pid))

    def loop_cpu_seconds(self) -> float:
        """The CPU of each server process's main thread, where uvicorn runs the event
        loop (the rest of :meth:`cpu_seconds` is other threads: Sekisho's endpoint and
        worker threads, SQLite working in them)."""
        return sum(_pid_cpu_seconds(pid, pid) for pid in _tree(self.process.pid))

    def stop(self) -> None:
        for process in (self.process, self.mailer):
            if process is not None:
                process.terminate()
                process.wait(timeout=15)


def _cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    return _pid_cpu_seconds(process.pid)


def _pid_cpu_seconds(pid: int, thread: int | None = None) -> float:
    """utime + stime of process ``pid``, or of only its thread ``thread``."""
    stat = Path(f"/proc/{pid}/stat" if thread is None else f"/proc/{pid}/task/{thread}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc/PID/task/*/children)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except FileNotFoundError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


def _idle_ticks() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values[:8])


@dataclass
class VirtualUser:
    index: int
    client: Client
    email: str
    authenticator: SoftAuthenticator = field(default_factory=SoftAuthenticator)
    #: The OIDC scenarios: the cookies of the signed-in browser, the latest tokens.
    signed_in: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    #: ``confirm``: the application's own connection to the server (no cookies).
    app: Client | None = None


@dataclass
class Result:
    operations: int = 0
    latencies: list[float] = field(default_factory=list)
    unexpected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    cpu: float = 0.0
    #: The part of ``cpu`` spent on the event loop's thread (``Server.loop_cpu_seconds``).
    loop_cpu: float = 0.0
    #: CPU of a separate mail worker process (None: delivery is in the server).
    mailer_cpu: float | None = None
    delivered: int = 0
    #: Share of the machine's CPU time (all cores) left idle during the window.
    idle: float = 0.0
    #: ``code``: ms from the sign-in request's answer to the mail at the sink.
    mail_waits: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Unexpected(Exception):
    pass


def _pin(workers: int) -> list[str]:
    """One worker: the servers on core 1, the load generator on core 0. Several workers
    are not pinned: they, the database and the load generator share every core."""
    if workers == 1 and shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {0})
        return ["taskset", "-c", "1"]
    return []


def _database(backend: str, folder: str, name: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{folder}/{name}.db"
    database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"


def _drop(url: str) -> None:
    if url.startswith("postgresql"):
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The server's output goes to a file (its access log is part of its work)."""
    with log.open("wb") as output:
        return subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)


def _wait_ready(process: subprocess.Popen[bytes], port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    process.kill()
    process.wait()
    raise RuntimeError(f"server on port {port} did not start")


def start_sekisho(args: argparse.Namespace, folder: str, smtp_port: int, pin: list[str]) -> Server:
    port = free_port()
    url = _database(args.backend, folder, "sekisho")
    many = "1000000/hour"
    env = dict(
        os.environ,
        SEKISHO_MODE="development",
        SEKISHO_PUBLIC_ORIGIN=f"http://localhost:{port}",
        SEKISHO_SECRET_KEY=SECRET,
        SEKISHO_DATABASE_URL=url,
        SEKISHO_MAIL_BACKEND="smtp",
        SEKISHO_SMTP_HOST="127.0.0.1",
        SEKISHO_SMTP_PORT=str(smtp_port),
        SEKISHO_SMTP_SECURITY="none",
        SEKISHO_MAIL_FROM="sekisho@example.com",
        SEKISHO_LIMIT_SENDS_PER_ADDRESS=many,
        SEKISHO_LIMIT_SENDS_PER_IP=many,
        SEKISHO_LIMIT_SENDS_GLOBAL=many,
        SEKISHO_LIMIT_VERIFY_PER_IP=many,
        SEKISHO_LIMIT_VERIFY_GLOBAL=many,
        SEKISHO_LIMIT_CEREMONIES_PER_IP=many,
        SEKISHO_LIMIT_TOKEN_PER_IP=many,
        SEKISHO_LIMIT_TOKEN_PER_CLIENT=many,
    )
    if args.mail_worker == "separate":
        env["SEKISHO_MAIL_WORKER"] = "false"
    if args.workers > 1:
        env["SEKISHO_REDIS_URL"] = REDIS_URL
    if "confirm" in (args.scenario or ()):
        policy = Path(folder) / "policy.toml"
        policy.write_text(CONFIRM_POLICY, encoding="utf-8")
        env["SEKISHO_POLICY_FILE"] = str(policy)
    command = [*pin, str(VENV_BIN / "sekisho"), "serve", "--port", str(port)]
    command += ["--workers", str(args.workers)]
    process = _spawn(command, env, Path(folder) / "sekisho.log")
    _wait_ready(process, port)
    mailer = None
    if args.mail_worker == "separate":
        command = [*pin, str(VENV_BIN / "sekisho"), "mail", "worker"]
        mailer = _spawn(command, env, Path(folder) / "sekisho-mail.log")
    paths = {
        "email": "/api/v1/signin/email",
        "code": "/api/v1/signin/email/flows/{flow_id}/code",
        "options": "/api/v1/signin/passkey/options",
        "verify": "/api/v1/signin/passkey/verify",
        "confirmations": "/api/v1/confirmations",
    }
    return Server("sekisho", port, process, paths, url, mailer)


def start_reference(
    args: argparse.Namespace, folder: str, smtp_port: int, pin: list[str]
) -> Server:
    port = free_port()
    url = _database(args.backend, folder, "reference")
    Store(url).connection.close()  # the schema, before several workers race to create it
    env = dict(
        os.environ,
        REFERENCE_SECRET=SECRET,
        REFERENCE_ORIGIN=f"http://localhost:{port}",
        REFERENCE_RP_ID="localhost",
        REFERENCE_SMTP_PORT=str(smtp_port),
        REFERENCE_DATABASE_URL=url,
    )
    command = [
        *pin,
        str(VENV_BIN / "uvicorn"),
        "--factory",
        "benchmarks.reference_app:create_app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--workers",
        str(args.workers),
    ]
    process = _spawn(command, env, Path(folder) / "reference.log")
    _wait_ready(process, port)
    paths = {
        "email": "/email",
        "code": "/email/{flow_id}/code",
        "options": "/passkey/options",
        "verify": "/passkey/verify",
        "confirmations": "/confirmations",
    }
    return Server("reference", port, process, paths, url)


def _expect(response_status: int, expected: int, what: str, result: Result) -> None:
    if response_status != expected:
        result.unexpected[f"{what} {response_status}"] += 1
        raise Unexpected(what)


def _returning(user: VirtualUser) -> None:
    """Sign in again as a returning browser: no session or flow cookies, but the device
    cookie Sekisho set a year long, as a person's browser keeps it (a sign-in from a
    browser the account has not seen before also queues a notice mail)."""
    kept = user.client.cookies.get(DEVICE_COOKIE)
    user.client.cookies.clear()
    if kept is not None:
        user.client.cookies[DEVICE_COOKIE] = kept


async def op_email(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    _returning(user)
    response = await user.client.post(server.paths["email"], {"email": _requester(user.email)})
    _expect(response.status, 202, "email", result)


async def op_code(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    _returning(user)
    code = sink.expect(user.email)
    response = await user.client.post(server.paths["email"], {"email": user.email})
    if response.status != 202:
        sink.forget(user.email, code)
    _expect(response.status, 202, "email", result)
    flow_id = response.json()["flow_id"]
    answered = time.perf_counter()
    try:
        value = await asyncio.wait_for(code, timeout=30)
    except TimeoutError:
        sink.forget(user.email, code)
        result.unexpected["mail timeout"] += 1
        raise Unexpected("mail") from None
    result.mail_waits.append((time.perf_counter() - answered) * 1000)
    response = await user.client.post(server.paths["code"].format(flow_id=flow_id), {"code": value})
    _expect(response.status, 200, "code", result)


async def op_passkey(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    _returning(user)
    response = await user.client.post(server.paths["options"], {})
    _expect(response.status, 200, "options", result)
    options = response.json()
    credential = user.authenticator.assert_(  # noqa: PT009 (the authenticator, not a test)
        rp_id=options["publicKey"]["rpId"],
        origin=server.origin,
        challenge=b64url_decode(options["publicKey"]["challenge"]),
    )
    response = await user.client.post(
        server.paths["verify"], {"flow_id": options["flow_id"], "credential": credential}
    )
    _expect(response.status, 200, "verify", result)


def _basic(server: Server) -> dict[str, str]:
    """``client_secret_basic`` (RFC 6749 §2.3.1) for the benchmark's client."""
    pair = f"{quote(OIDC_CLIENT, safe='')}:{quote(server.oidc_secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


async def op_exchange(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    """A signed-in browser at ``/authorize`` (PKCE S256), then the client at ``/token``
    with the code (``client_secret_basic``): ID, access and refresh token."""
    user.client.cookies = dict(user.signed_in)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": OIDC_CLIENT,
            "redirect_uri": OIDC_REDIRECT,
            "scope": OIDC_SCOPE,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": OIDC_CHALLENGE,
            "code_challenge_method": "S256",
        }
    )
    response = await user.client.get(f"/authorize?{query}")
    _expect(response.status, 303, "authorize", result)
    answer = parse_qs(urlsplit(response.location or "").query)
    if "code" not in answer:
        result.unexpected["authorize without code"] += 1
        raise Unexpected("authorize")
    fields = {
        "grant_type": "authorization_code",
        "code": answer["code"][0],
        "redirect_uri": OIDC_REDIRECT,
        "code_verifier": OIDC_VERIFIER,
    }
    response = await user.client.post_form("/token", fields, _basic(server))
    _expect(response.status, 200, "token", result)
    user.tokens = response.json()


async def op_refresh(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    """The refresh token grant with rotation: the answer's refresh token is the next."""
    fields = {"grant_type": "refresh_token", "refresh_token": user.tokens["refresh_token"]}
    response = await user.client.post_form("/token", fields, _basic(server))
    _expect(response.status, 200, "refresh", result)
    user.tokens = response.json()


async def op_userinfo(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    bearer = {"Authorization": f"Bearer {user.tokens['access_token']}"}
    response = await user.client.get("/userinfo", bearer)
    _expect(response.status, 200, "userinfo", result)


async def op_confirm(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    """The application asks for a withdrawal's confirmation with the user's access token;
    the signed-in browser runs the passkey ceremony (options, an assertion over their
    challenge, which binds the details' hash, verify); the application collects the
    signed confirmation."""
    assert user.app is not None
    base = server.paths["confirmations"]
    details = {
        "amount": str(100_001 + secrets.randbelow(10_000_000)),
        "currency": "JPY",
        "destination": f"MUFG 0123-{user.index:07d}",
    }
    bearer = {"Authorization": f"Bearer {user.tokens['access_token']}"}
    response = await user.app.post(base, {"action": "withdrawal", "details": details}, bearer)
    _expect(response.status, 201, "ask", result)
    confirmation = f"{base}/{response.json()['id']}"
    user.client.cookies = dict(user.signed_in)
    response = await user.client.post(f"{confirmation}/options", {})
    _expect(response.status, 200, "options", result)
    started = response.json()
    public_key = started["publicKey"]
    credential = user.authenticator.assert_(  # noqa: PT009 (the authenticator, not a test)
        rp_id=public_key["rpId"],
        origin=server.origin,
        challenge=b64url_decode(public_key["challenge"]),
        allow_credentials=[b64url_decode(c["id"]) for c in public_key["allowCredentials"]],
    )
    response = await user.client.post(
        f"{confirmation}/verify", {"flow_id": started["flow_id"], "credential": credential}
    )
    _expect(response.status, 200, "verify", result)
    response = await user.app.get(confirmation, _basic(server))
    _expect(response.status, 200, "collect", result)
    if not response.json().get("confirmation"):
        result.unexpected["collected without a confirmation"] += 1
        raise Unexpected("collect")


async def op_floor(server: Server, user: VirtualUser, sink: MailSink, result: Result) -> None:
    response = await user.client.get("/healthz")
    _expect(response.status, 200, "healthz", result)


Operation = Callable[[Server, VirtualUser, MailSink, Result], Awaitable[None]]
OPERATIONS: dict[str, Operation] = {
    "email": op_email,
    "code": op_code,
    "passkey": op_passkey,
    "floor": op_floor,
    "exchange": op_exchange,
    "refresh": op_refresh,
    "userinfo": op_userinfo,
    "confirm": op_confirm,
}
#: Scenarios that need the OIDC set-up (a client, each user's tokens).
OIDC_SCENARIOS = ("exchange", "refresh", "userinfo", "confirm")


async def run_window(
    server: Server,
    users: list[VirtualUser],
    sink: MailSink,
    operation: Operation,
    warmup: float,
    seconds: float,
) -> Result:
    result = Result()
    measuring = False
    stop = False

    async def loop(user: VirtualUser) -> None:
        while not stop:
            started = time.perf_counter()
            try:
                await operation(server, user, sink, result)
            except Unexpected:
                await user.client.close()
                continue
            if measuring:
                result.operations += 1
                result.latencies.append((time.perf_counter() - started) * 1000)

    tasks = [asyncio.create_task(loop(user)) for user in users]
    await asyncio.sleep(warmup)
    result.unexpected.clear()
    waits_before = len(result.mail_waits)
    cpu_before = server.cpu_seconds()
    loop_before = server.loop_cpu_seconds()
    mailer_before = _cpu_seconds(server.mailer) if server.mailer else 0.0
    delivered_before = sink.delivered
    idle_before = _idle_ticks()
    started = time.perf_counter()
    measuring = True
    await asyncio.sleep(seconds)
    measuring = False
    result.seconds = time.perf_counter() - started
    result.cpu = server.cpu_seconds() - cpu_before
    result.loop_cpu = server.loop_cpu_seconds() - loop_before
    result.delivered = sink.delivered - delivered_before
    idle_after = _idle_ticks()
    result.idle = (idle_after[0] - idle_before[0]) / max(1, idle_after[1] - idle_before[1])
    if server.mailer:
        result.mailer_cpu = _cpu_seconds(server.mailer) - mailer_before
    stop = True
    result.mail_waits = result.mail_waits[waits_before:]
    await asyncio.gather(*tasks)
    await _drained(sink)
    return result


async def run_open_window(
    server: Server,
    users: list[VirtualUser],
    sink: MailSink,
    operation: Operation,
    rate: float,
    warmup: float,
    seconds: float,
) -> Result:
    """Open loop: operations arrive every ``1 / rate`` seconds whether or not earlier
    ones have finished. Each takes a free virtual user (waiting for one if all are
    busy), and its latency runs from the moment it was due, not from when it could
    start, so a server that falls behind shows it in full (no coordinated omission)."""
    result = Result()
    free: asyncio.Queue[VirtualUser] = asyncio.Queue()
    for user in users:
        free.put_nowait(user)
    start = time.perf_counter()
    window = (start + warmup, start + warmup + seconds)
    samples: dict[str, float] = {}

    async def arrival(due: float) -> None:
        user = await free.get()
        try:
            await operation(server, user, sink, result)
        except Unexpected:
            await user.client.close()
            return
        finally:
            free.put_nowait(user)
        if window[0] <= due < window[1]:
            result.operations += 1
            result.latencies.append((time.perf_counter() - due) * 1000)

    async def meter() -> None:
        await asyncio.sleep(max(0.0, window[0] - time.perf_counter()))
        result.unexpected.clear()
        samples["cpu"], samples["idle"] = server.cpu_seconds(), 0.0
        idle_before = _idle_ticks()
        await asyncio.sleep(max(0.0, window[1] - time.perf_counter()))
        result.cpu = server.cpu_seconds() - samples["cpu"]
        idle_after = _idle_ticks()
        result.idle = (idle_after[0] - idle_before[0]) / max(1, idle_after[1] - idle_before[1])

    metering = asyncio.create_task(meter())
    arrivals: set[asyncio.Task[None]] = set()
    n = 0
    while (due := start + n / rate) < window[1]:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(arrival(due))
        arrivals.add(task)
        task.add_done_callback(arrivals.discard)
        n += 1
    await metering
    result.seconds = seconds
    if arrivals:
        await asyncio.wait(arrivals, timeout=60)
    await _drained(sink)
    return result


async def _drained(sink: MailSink) -> None:
    """Wait until mail queued during the window has been delivered (at most three
    minutes), so that the next window does not pay for this one's backlog."""
    deadline = time.monotonic() + 180
    seen = -1
    while sink.delivered != seen and time.monotonic() < deadline:
        seen = sink.delivered
        await asyncio.sleep(2.0)


def _requester(email: str) -> str:
    """The address the email-request scenario uses: a known account whose messages no
    user waits for, so that they never reach the code scenario's users."""
    return f"request-{email}"


def _add_sekisho_user(server: Server, email: str) -> None:
    from datetime import UTC, datetime

    from sekisho.core.keys import Keyring
    from sekisho.store.database import Database, make_engine

    database = Database(make_engine(server.database_url), Keyring(SECRET))
    try:
        with database.transaction() as repos:
            repos.users.create(email, now=datetime.now(UTC), verified=True)
    finally:
        database.dispose()


async def setup_sekisho(server: Server, users: list[VirtualUser], sink: MailSink) -> None:
    """Each user: an account, signed in by email code, then a passkey registered."""
    for user in users:
        _add_sekisho_user(server, user.email)
        _add_sekisho_user(server, _requester(user.email))
    for user in users:
        await op_code(server, user, sink, Result())
        options = (await user.client.post("/api/v1/passkeys/registration/options", {})).json()
        public_key = options["publicKey"]
        credential = user.authenticator.register(
            rp_id=public_key["rp"]["id"],
            origin=server.origin,
            challenge=b64url_decode(public_key["challenge"]),
            user_handle=b64url_decode(public_key["user"]["id"]),
        )
        response = await user.client.post(
            "/api/v1/passkeys/registration/verify",
            {"flow_id": options["flow_id"], "credential": credential},
        )
        if response.status != 201:
            raise RuntimeError(f"registration failed: {response.body[:300]!r}")


async def setup_reference(server: Server, users: list[VirtualUser]) -> None:
    """The same accounts; each holds the public key of the user's Sekisho passkey."""
    for user in users:
        stored = next(iter(user.authenticator.credentials.values()))
        response = await user.client.post(
            "/setup/user",
            {
                "email": user.email,
                "handle": b64url(stored.user_handle),
                "credential_id": stored.credential_id.hex(),
                "public_key": stored.public_key_cose.hex(),
            },
        )
        if response.status != 200:
            raise RuntimeError("reference set-up failed")


def _add_sekisho_client(server: Server) -> str:
    """A first-party confidential client (``client_secret_basic``) that may ask for
    ``offline_access``, its tokens living an hour (the longest allowed), so that a
    user's access token outlives the run. Returns its secret."""
    from datetime import UTC, datetime, timedelta

    from sekisho.core.keys import Keyring
    from sekisho.oidc import clients
    from sekisho.store.database import Database, make_engine
    from sekisho.store.oidc import SqlOidc

    made = clients.register(
        Keyring(SECRET),
        name="Benchmark",
        redirect_uris=[OIDC_REDIRECT],
        post_logout_redirect_uris=[],
        auth_method="client_secret_basic",
        application_type="web",
        first_party=True,
        scopes=OIDC_SCOPE.split(),
        id_token_lifetime=timedelta(hours=1),
        access_token_lifetime=timedelta(hours=1),
        now=datetime.now(UTC),
        client_id=OIDC_CLIENT,
    )
    database = Database(make_engine(server.database_url), Keyring(SECRET))
    try:
        with database.transaction() as repos:
            SqlOidc(repos.connection).add_client(made.client)
    finally:
        database.dispose()
    assert made.secret is not None
    return made.secret


async def setup_oidc(
    servers: list[Server], crowd: dict[str, list[VirtualUser]], sink: MailSink
) -> None:
    """Once, before the first OIDC scenario: the client on both servers; each user signs
    in by passkey (its browser's cookies kept for ``/authorize``) and runs one code
    exchange, so that it holds tokens for ``refresh`` and ``userinfo``."""
    reference, sekisho = servers
    sekisho.oidc_secret = _add_sekisho_client(sekisho)
    reference.oidc_secret = secrets.token_urlsafe(32)
    response = await crowd["reference"][0].client.post(
        "/setup/client",
        {
            "client_id": OIDC_CLIENT,
            "secret": reference.oidc_secret,
            "redirect_uri": OIDC_REDIRECT,
            "scope": OIDC_SCOPE,
        },
    )
    if response.status != 200:
        raise RuntimeError("reference client set-up failed")
    for server in servers:
        for user in crowd[server.name]:
            user.app = Client(server.port, f"localhost:{server.port}")
            result = Result()
            try:
                await op_passkey(server, user, sink, result)
                user.signed_in = dict(user.client.cookies)
                await op_exchange(server, user, sink, result)
            except Unexpected:
                failed = f"{server.name}: OIDC set-up failed: {result.unexpected}"
                raise RuntimeError(failed) from None


def _open_row(name: str, rate: float, result: Result, reference_cpu: float | None) -> str:
    cpu = result.cpu * 1000 / max(1, result.operations)
    ratio = f"{cpu / reference_cpu:.1f}x" if reference_cpu else "1.0x"
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(result.unexpected.items())) or "-"
    return (
        f"| {name} | {rate:.0f} | {result.operations / result.seconds:.0f}"
        f" | {result.percentile(0.5):.1f} | {result.percentile(0.95):.1f}"
        f" | {result.percentile(0.99):.1f} | {cpu:.2f} | {ratio} | {100 * result.idle:.0f} %"
        f" | {errors} |"
    )


def _split_row(name: str, result: Result) -> str:
    """Where the server's CPU per operation went: its event loop's thread, other threads."""
    per = 1000 / max(1, result.operations)
    loop, other = result.loop_cpu * per, (result.cpu - result.loop_cpu) * per
    return (
        f"{name}: {loop:.2f} ms of CPU per operation on the event loop's thread,"
        f" {other:.2f} ms in other threads"
    )


def _row(name: str, result: Result, reference_cpu: float | None) -> str:
    rate = result.operations / result.seconds
    cpu = result.cpu * 1000 / max(1, result.operations)
    ratio = f"{cpu / reference_cpu:.1f}x" if reference_cpu else "1.0x"
    errors = ", ".join(f"{k}: {v}" for k, v in sorted(result.unexpected.items())) or "-"
    return (
        f"| {name} | {rate:.0f} | {result.percentile(0.5):.1f} | {result.percentile(0.95):.1f}"
        f" | {result.percentile(0.99):.1f} | {cpu:.2f} | {ratio} | {100 * result.idle:.0f} %"
        f" | {errors} |"
    )


async def measure(args: argparse.Namespace, folder: str) -> None:
    pin = _pin(args.workers)
    sink = MailSink()
    sink.start()
    servers: list[Server] = []
    try:
        servers.append(start_reference(args, folder, sink.port, pin))
        servers.append(start_sekisho(args, folder, sink.port, pin))
        crowd: dict[str, list[VirtualUser]] = {}
        for server in servers:
            crowd[server.name] = [
                VirtualUser(
                    i, Client(server.port, f"localhost:{server.port}"), f"vu{i}@example.com"
                )
                for i in range(args.users)
            ]
        await setup_sekisho(servers[1], crowd["sekisho"], sink)
        for ref_user, user in zip(crowd["reference"], crowd["sekisho"], strict=True):
            ref_user.authenticator = user.authenticator
        await setup_reference(servers[0], crowd["reference"])
        print(
            f"{args.users} users, {args.seconds:g} s windows after {args.warmup:g} s warm-up,"
            f" {args.backend}, {args.workers} worker(s) each, servers pinned: {bool(pin)}"
        )
        for scenario in args.scenario or ["code", "passkey", "email"]:
            if scenario in OIDC_SCENARIOS and not servers[1].oidc_secret:
                await setup_oidc(servers, crowd, sink)
            print(f"\n{scenario}\n")
            print(
                "| server | ops/s | p50 ms | p95 ms | p99 ms | CPU ms/op | CPU ratio"
                " | machine idle | errors |"
            )
            print("|---|---|---|---|---|---|---|---|---|")
            reference_cpu: float | None = None
            mail_rows: list[str] = []
            split_rows: list[str] = []
            maxima: dict[str, float] = {}
            for server in servers:
                result = await run_window(
                    server,
                    crowd[server.name],
                    sink,
                    OPERATIONS[scenario],
                    args.warmup,
                    args.seconds,
                )
                print(_row(server.name, result, reference_cpu), flush=True)
                maxima[server.name] = result.operations / result.seconds
                split_rows.append(_split_row(server.name, result))
                if result.mail_waits:
                    waits = sorted(result.mail_waits)
                    mail_rows.append(
                        f"{server.name}: mail at the sink {waits[len(waits) // 2]:.1f} ms (p50),"
                        f" {waits[int(0.95 * len(waits))]:.1f} ms (p95) after the request's answer"
                    )
                if server.mailer is not None and result.mailer_cpu is not None:
                    per = result.mailer_cpu * 1000 / max(1, result.operations)
                    mail_rows.append(
                        f"separate mail worker: {per:.2f} ms CPU per operation;"
                        f" {result.delivered} messages reached the sink in the window (a"
                        " message whose flow a newer request superseded is dropped unsent)"
                    )
                if reference_cpu is None:
                    reference_cpu = result.cpu * 1000 / max(1, result.operations)
            for row in (*split_rows, *mail_rows):
                print(f"\n{row}")
            if args.open_loop or args.open_rate:
                await _open_loop(args, servers, crowd, sink, scenario, maxima)
    finally:
        for server in servers:
            server.stop()
            _drop(server.database_url)
        sink.stop()


async def _open_loop(
    args: argparse.Namespace,
    servers: list[Server],
    crowd: dict[str, list[VirtualUser]],
    sink: MailSink,
    scenario: str,
    maxima: dict[str, float],
) -> None:
    """Each server at ``--open-rate``, else at half the rate it reached in the
    closed-loop window just before."""
    if args.open_rate:
        print(f"\n{scenario}, open loop at {args.open_rate:g} arrivals/s for each server\n")
    else:
        print(f"\n{scenario}, open loop at half each server's closed-loop rate\n")
    print(
        "| server | arrivals/s | done/s | p50 ms | p95 ms | p99 ms | CPU ms/op | CPU ratio"
        " | machine idle | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    reference_cpu: float | None = None
    for server in servers:
        rate = args.open_rate or max(1.0, maxima[server.name] / 2)
        result = await run_open_window(
            server,
            crowd[server.name],
            sink,
            OPERATIONS[scenario],
            rate,
            args.warmup,
            args.seconds,
        )
        print(_open_row(server.name, rate, result, reference_cpu), flush=True)
        if reference_cpu is None:
            reference_cpu = result.cpu * 1000 / max(1, result.operations)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="uvicorn worker processes per server (above 1: PostgreSQL, and Sekisho's rate"
        " limits in Redis; nothing pinned)",
    )
    parser.add_argument("--scenario", action="append", choices=sorted(OPERATIONS))
    parser.add_argument(
        "--mail-worker",
        choices=["in-process", "separate"],
        default="in-process",
        help="Sekisho delivers mail in the web process, or in `sekisho mail worker` (its CPU"
        " is then reported apart, the web process's without it)",
    )
    parser.add_argument(
        "--open-loop",
        action="store_true",
        help="after each scenario's closed-loop windows, run each server open loop (a fixed"
        " arrival rate) at half the rate it reached, and report its latency there",
    )
    parser.add_argument(
        "--open-rate",
        type=float,
        default=0.0,
        help="run the open-loop window at this arrival rate (per second) for every server,"
        " instead of at half each server's closed-loop rate (implies --open-loop)",
    )
    args: Any = parser.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS or not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--users 1..{MAX_USERS}, --seconds up to {MAX_SECONDS:g}")
    if args.open_rate < 0:
        parser.error("--open-rate is an arrival rate per second, above 0")
    if args.workers > 1 and args.backend != "postgresql":
        parser.error("--workers above 1 needs --backend postgresql")
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(measure(args, folder))


if __name__ == "__main__":
    main()
