"""A deployment that trusts a throwaway attestation root and allow-lists one AAGUID, and
the software keys it accepts: what reaching AAL3 over real HTTP needs (SECURITY.md
case 55)."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.authenticator import AttestationCA, SoftAuthenticator
from tests.support.cli import run_sekisho
from tests.support.passkeys import email_sign_in, register, sign_in
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture


@dataclass
class AttestedDeployment:
    """``settings()`` for ``make_server``, and ``key()`` for an attested key of the
    allow-listed model."""

    root: Path
    ca: AttestationCA = field(default_factory=AttestationCA)
    aaguid: uuid.UUID = field(default_factory=uuid.uuid4)

    def __post_init__(self) -> None:
        self.root.write_bytes(self.ca.root_pem)

    def settings(self) -> dict[str, Any]:
        return {
            "passkey_attestation": "direct",
            "passkey_trust_roots": [self.root],
            "passkey_aaguid_allowlist": [str(self.aaguid)],
        }

    def key(self, *, synced: bool = False, backup_state: bool | None = None) -> SoftAuthenticator:
        """A device-bound key (AAL3 with UV), or with ``synced`` a backup-eligible one
        (``backup_state`` defaults to backed up)."""
        return SoftAuthenticator(
            aaguid=self.aaguid.bytes,
            attestation="packed-x5c",
            attestation_ca=self.ca,
            backup_eligible=synced,
            backup_state=synced if backup_state is None else backup_state,
        )


def synced_and_hardware(
    server: LiveServer, smtp: SmtpCapture, attested: AttestedDeployment, address: str
) -> tuple[SoftAuthenticator, SoftAuthenticator]:
    """Make the account at ``address`` hold a synced passkey (AAL2) and an attested
    device-bound key (AAL3), added over HTTP; the two keys, in that order."""
    synced, hardware = attested.key(synced=True), attested.key()
    with server.client() as client:
        email_sign_in(server, smtp, client, address)
        assert register(server, client, synced).status_code == 201
        assert sign_in(server, client, synced).json()["aal"] == 2
        assert register(server, client, hardware).status_code == 201
    return synced, hardware


def set_tier_attested(
    server: LiveServer, policy_file: Path, attested: AttestedDeployment, address: str, tier: str
) -> subprocess.CompletedProcess[str]:
    """``sekisho users set-tier`` with the policy and the attestation settings of
    ``attested`` (a tier that requires attestation is checked against them)."""
    return run_sekisho(
        server.settings.database_url,
        "users",
        "set-tier",
        address,
        tier,
        SEKISHO_POLICY_FILE=str(policy_file),
        SEKISHO_PASSKEY_ATTESTATION="direct",
        SEKISHO_PASSKEY_TRUST_ROOTS=json.dumps([str(attested.root)]),
        SEKISHO_PASSKEY_AAGUID_ALLOWLIST=json.dumps([str(attested.aaguid)]),
    )
