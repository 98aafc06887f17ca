"""The OpenAPI schema is true: Schemathesis, with all its checks, against the live server.

Schemathesis reads /api/openapi.json over real HTTP and sends schema-valid and invalid
requests to every operation (its examples, coverage, fuzzing and stateful phases); it
fails on any 5xx, any status, header, content type or body the schema does not
document, any valid request refused with 422 and any invalid one accepted. Its settings
are in tests/integration/schemathesis.toml (why 400 answers valid data in Sekisho).
The number of examples is bounded so that a run takes well under a minute.

The admin run uses an API key with every scope (the admin API accepts nothing else),
limited to the operations tagged ``admin``; the other runs see those operations refuse
with 401, which the ``ignored_auth`` check also asserts.

The signed-in run starts with an account that has a passkey, and leaves out only the
sign-out (DELETE /api/v1/session): run early, it would sign the rest out. The signed-out
run covers it, and test_email_api.py signs out for real.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sekisho.core.api_keys import SCOPES
from tests.conftest import ServerFactory
from tests.integration.admin.support import create_key
from tests.support.authenticator import SoftAuthenticator
from tests.support.passkeys import email_sign_in, register
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture

CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
EXAMPLES = 20


def _run(server: LiveServer, cwd: Path, *extra: str) -> None:
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{server.url}/api/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "20",
        *extra,
    ]
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stdout[-20000:] + done.stderr[-5000:]


def test_every_operation_signed_out(server: LiveServer, tmp_path: Path) -> None:
    _run(server, tmp_path)


def test_every_operation_signed_in(server: LiveServer, smtp: SmtpCapture, tmp_path: Path) -> None:
    server.add_user("fuzz@example.com")
    with server.client() as client:
        email_sign_in(server, smtp, client, "fuzz@example.com")
        assert register(server, client, SoftAuthenticator()).status_code == 201
        token = client.cookies["sekisho_session"]
    _run(
        server,
        tmp_path,
        "--header",
        f"Cookie: sekisho_session={token}",
        "--exclude-operation-id",
        "sign_out_api_v1_session_delete",
    )


def test_every_admin_operation_with_a_key(make_server: ServerFactory, tmp_path: Path) -> None:
    server = make_server(admin_emails=["ops@example.com"])
    server.add_user("fuzz@example.com")
    _key_id, key = create_key(server, *SCOPES, operator="ops@example.com")
    _run(server, tmp_path, "--header", f"Authorization: Bearer {key}", "--include-tag", "admin")


def test_every_operation_documents_its_refusals(server: LiveServer) -> None:
    with server.client() as client:
        schema = client.get("/api/openapi.json").json()
    assert "HTTPValidationError" not in schema.get("components", {}).get("schemas", {})
    assert f"{server.settings.max_body_bytes} bytes" in schema["info"]["description"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            expected = {"400", "408", "413", "503"}
            if "requestBody" in operation:
                expected |= {"403", "415", "422"}
            assert expected <= statuses, (method, path, sorted(statuses))
            for status, response in operation["responses"].items():
                if status == "204":
                    assert "content" not in response, (method, path)
                    continue
                body = response["content"]["application/json"]["schema"]
                assert body, (method, path, status)
                if status.startswith(("4", "5")):
                    assert body["required"] == ["error", "message"], (method, path, status)
                    assert body["properties"]["error"]["enum"], (method, path, status)
