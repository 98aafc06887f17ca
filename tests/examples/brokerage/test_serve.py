"""The README's one command for the example (issue 9, "Example relying party"):
``examples/brokerage/serve.py`` starts Sekisho and the example together, the example
registered as a client, ready to click through; Ctrl-C stops both."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[3]


def _wait_until_up(url: str, process: subprocess.Popen[str], deadline: float) -> None:
    while True:
        assert process.poll() is None, "serve.py exited before both servers were up"
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} did not come up"
        time.sleep(0.2)


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_serve_starts_sekisho_and_the_example_ready_to_sign_in(tmp_path: Path) -> None:
    sekisho_port, example_port = free_port(), free_port()
    sekisho, example = f"http://localhost:{sekisho_port}", f"http://localhost:{example_port}"
    process = subprocess.Popen(
        [sys.executable, "examples/brokerage/serve.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "PORT": str(sekisho_port),
            "BROKERAGE_PORT": str(example_port),
            "SEKISHO_DATABASE_URL": f"sqlite:///{tmp_path / 'brokerage.db'}",
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        _wait_until_up(f"{sekisho}/healthz", process, deadline)
        _wait_until_up(f"{example}/", process, deadline)
        with httpx.Client(follow_redirects=False, timeout=10) as browser:
            login = browser.get(f"{example}/login")
            assert login.status_code in (302, 303, 307), login.text
            authorize = login.headers["location"]
            assert authorize.startswith(f"{sekisho}/authorize?")
            assert "client_id=brokerage" in authorize
            to_sign_in = browser.get(authorize)
            assert to_sign_in.status_code in (302, 303), to_sign_in.text
            assert to_sign_in.headers["location"].startswith("/signin")
            assert browser.get(sekisho + to_sign_in.headers["location"]).status_code == 200
            assert browser.get(f"{sekisho}/dev/mailbox").status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert f"Sekisho: {sekisho}" in output
    assert f"Example: {example}" in output
    assert _refused(f"{sekisho}/healthz"), "Ctrl-C stops Sekisho"
    assert _refused(f"{example}/"), "Ctrl-C stops the example"
