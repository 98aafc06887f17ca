"""Passkeys in a real browser: Debian's Chromium with a CDP virtual authenticator.

The servers run on ``http://localhost:PORT``: WebAuthn needs a secure context (plain-http
localhost is one) and an RP ID that is a domain, and ``127.0.0.1`` is an IP address.

What Chromium's virtual authenticator does (Chromium 156, checked by these tests):

- With ``automaticPresenceSimulation`` it answers every request by itself, including a
  conditional (autofill) one: as soon as the sign-in page's autofill request meets a
  matching credential, the user is signed in with no click. The button and email-first
  tests therefore open a browser whose ``isConditionalMediationAvailable()`` answers
  false (like a browser without passkey autofill, which passkey.js supports): the page
  then starts no autofill request and only a click or the email form starts a ceremony.
  Adding the authenticator after the autofill request started also keeps it from
  answering, but nothing in the page says when the browser has registered that request,
  so that is a race; hiding conditional mediation is deterministic.
- It enforces user verification itself: with ``isUserVerified`` false, ``create()``
  fails with NotAllowedError whatever the RP asks ("discouraged" included) and ``get()``
  fails for "required" and "preferred" (the only values Sekisho sends), so no response
  reaches the server. ``setResponseOverrideBits(isBadUV)``
  makes it answer with the UV flag cleared, which is how the server's own UV check is
  reached. An authenticator without UV (``hasUserVerification`` false) can register
  under "preferred" and sign in when the request lists its credential (email-first),
  but Chromium refuses it a discoverable (usernameless/autofill) request.
- Its ``direct`` attestation is ``packed`` with a one-certificate x5c: a self-signed,
  non-CA "Batch Certificate" (C=US, O=Chromium, OU=Authenticator Attestation), AAGUID
  01020304-0506-0708-0102-030405060708. The key and the names are fixed, but the
  certificate is signed afresh for every registration (ECDSA: a new signature, so new
  DER bytes), and OpenSSL trusts a self-signed leaf only when that very certificate is
  in the store. A root captured from one registration therefore never verifies the
  next one; see :func:`forward_trusting_this_authenticator` for how the test does it.
- Counters start at 1 on registration and go up by one per assertion.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect
from webauthn.helpers import base64url_to_bytes, parse_attestation_object
from webauthn.helpers.structs import AttestationFormat

from sekisho.core.records import AuditEvent, Passkey
from tests.conftest import ServerFactory
from tests.e2e.conftest import TIMEOUT_MS, Device
from tests.e2e.test_email_signin_browser import JAPANESE, session_of, settle
from tests.support.server import LiveServer
from tests.support.smtp import SmtpCapture, link_and_code

pytestmark = pytest.mark.browser

HINT = "sekisho.passkey-email"
CHROMIUM_VIRTUAL_AAGUID = "01020304-0506-0708-0102-030405060708"
YUBIKEY_5_AAGUID = "cb69481e-8ff7-4039-93ec-0a2729a154a8"
PLATFORM = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}
SECURITY_KEY = {**PLATFORM, "transport": "usb"}
# A browser without passkey autofill: passkey.js then starts no conditional request.
NO_CONDITIONAL_MEDIATION = """
if (window.PublicKeyCredential) {
  Object.defineProperty(PublicKeyCredential, "isConditionalMediationAvailable", {
    value: () => Promise.resolve(false), configurable: true, writable: true,
  });
}
"""
HWK_UV = ["hwk", "pin", "mfa"]

Opener = Callable[..., Page]


# -- browser and authenticator -----------------------------------------------------


@pytest.fixture
def server(make_server: ServerFactory) -> LiveServer:
    """The default server, reached as localhost (also what ``device`` opens)."""
    return make_server(host_name="localhost")


@pytest.fixture
def open_device(chromium: Browser) -> Iterator[Opener]:
    """``open_device(server, autofill=True, **context_options)``: a new browser context
    with one page on ``server``; ``autofill=False`` hides conditional mediation."""
    contexts: list[BrowserContext] = []

    def open_(target: LiveServer, *, autofill: bool = True, **options: Any) -> Page:
        context = chromium.new_context(base_url=target.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        if not autofill:
            context.add_init_script(NO_CONDITIONAL_MEDIATION)
        contexts.append(context)
        return context.new_page()

    yield open_
    for context in contexts:
        context.close()


class VirtualAuthenticator:
    """A CDP virtual authenticator attached to ``page``'s tab."""

    def __init__(self, page: Page, **options: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        added = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator", {"options": {**PLATFORM, **options}}
        )
        self.id: str = added["authenticatorId"]

    def _send(self, method: str, **params: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self.cdp.send(
            f"WebAuthn.{method}", {"authenticatorId": self.id, **params}
        )
        return answer

    def credentials(self) -> list[dict[str, Any]]:
        credentials: list[dict[str, Any]] = self._send("getCredentials")["credentials"]
        return credentials

    def only_credential(self) -> dict[str, Any]:
        credentials = self.credentials()
        assert len(credentials) == 1, credentials
        return credentials[0]

    def replace_credential(self, credential: dict[str, Any]) -> None:
        """Swap the stored credential for ``credential`` (same id): a restored copy."""
        self._send("removeCredential", credentialId=credential["credentialId"])
        self._send("addCredential", credential=credential)

    def set_user_verified(self, verified: bool) -> None:
        self._send("setUserVerified", isUserVerified=verified)

    def override_response_bits(self, *, bad_uv: bool = False) -> None:
        self._send("setResponseOverrideBits", isBogusSignature=False, isBadUV=bad_uv, isBadUP=False)

    def set_backup(self, credential: dict[str, Any], *, eligible: bool, state: bool) -> None:
        self._send(
            "setCredentialProperties",
            credentialId=credential["credentialId"],
            backupEligibility=eligible,
            backupState=state,
        )


def base64url_of(standard: str) -> str:
    """CDP gives credential ids in standard base64; Sekisho shows base64url."""
    return base64.urlsafe_b64encode(base64.b64decode(standard)).decode().rstrip("=")


# -- pages --------------------------------------------------------------------------


def sign_in_by_email(
    page: Page, server: LiveServer, smtp: SmtpCapture, address: str, *, script: bool = True
) -> None:
    """Request an email on /signin and type the emailed code on the wait page (where
    wait.js submits six digits by itself; without script, the button submits them)."""
    earlier = len(smtp.to(address))
    page.goto("/signin")
    page.locator("#email").fill(address)
    page.locator("#email-form button[type=submit]").click()
    settle(page, "#code-form #code")
    page.wait_for_load_state("load")  # wait.js, which submits a typed code, is running
    _link, code = link_and_code(smtp.wait_for(address, earlier + 1))
    page.locator("#code-form #code").fill(code)
    if not script:
        page.locator("#code-form button[type=submit]").click()
    settle(page, "#account-email")
    expect(page).to_have_url(server.url + "/account")
    expect(page.locator("#session-amr")).to_have_attribute("data-amr", "email")
    expect(page.locator("#session-amr")).to_have_attribute("data-aal", "1")


def add_passkey(page: Page) -> None:
    """Click "Add a passkey" on /account; the page reloads with one more row."""
    before = page.locator("tr.passkey").count()
    page.locator("#add-passkey").click()
    error = page.locator("#add-passkey-error:not([hidden])")
    expect(page.locator("tr.passkey").nth(before).or_(error)).to_be_visible()
    if error.count():
        pytest.fail(f"adding a passkey failed: {error.inner_text()}")
    expect(page.locator("tr.passkey")).to_have_count(before + 1)


def add_passkey_refused(page: Page, message: str) -> None:
    """Click "Add a passkey" and see ``message``; no row appears."""
    before = page.locator("tr.passkey").count()
    page.locator("#add-passkey").click()
    error = page.locator("#add-passkey-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(message)
    expect(page.locator("tr.passkey")).to_have_count(before)


def error_text(page: Page, selector: str, key: str) -> str:
    """The localised message a page keeps in ``data-<key>`` for passkey.js."""
    text = page.locator(selector).get_attribute(f"data-{key}")
    assert text
    return text


def sign_out(page: Page, server: LiveServer) -> None:
    page.locator("#signout-form button[type=submit]").click()
    expect(page).to_have_url(server.url + "/signin")
    assert session_of(page, server) is None


def expect_passkey_account(
    page: Page, server: LiveServer, address: str, *, amr: list[str], aal: int
) -> dict[str, Any]:
    """The page is on /account, signed in as ``address`` with a passkey."""
    settle(page, "#account-email")
    expect(page).to_have_url(server.url + "/account")
    expect(page.locator("#account-email")).to_have_text(address)
    expect(page.locator("#session-amr")).to_have_attribute("data-amr", " ".join(amr))
    expect(page.locator("#session-amr")).to_have_attribute("data-aal", str(aal))
    session = session_of(page, server)
    assert session is not None
    assert session["amr"] == amr
    assert session["aal"] == aal
    return session


def expect_passkey_refused(page: Page, server: LiveServer) -> None:
    error = page.locator("#passkey-error")
    expect(error).to_be_visible()
    expect(error).to_have_text(error_text(page, "#passkey-error", "failed"))
    expect(page).to_have_url(server.url + "/signin")
    assert session_of(page, server) is None


# -- the database behind the pages ----------------------------------------------------


def stored_passkeys(server: LiveServer, user_id: str) -> list[Passkey]:
    database = server.database
    try:
        with database.transaction() as repos:
            return repos.passkeys.for_user(user_id)
    finally:
        database.dispose()


def audit_events(server: LiveServer, user_id: str, address: str) -> list[AuditEvent]:
    database = server.database
    try:
        with database.transaction() as repos:
            return repos.audit.recent(user_id, address, 100)
    finally:
        database.dispose()


def failures(events: list[AuditEvent], name: str) -> list[str]:
    """The ``reason`` of each ``name`` failure event, oldest first."""
    return [str(e.detail.get("reason")) for e in reversed(events) if e.event == name]


def failure_texts(events: list[AuditEvent], name: str) -> list[str]:
    """Everything each ``name`` failure event says (its reason and what the verifier
    said), oldest first, to search for the verifier's words."""
    return [
        " | ".join(str(value) for value in e.detail.values())
        for e in reversed(events)
        if e.event == name
    ]


# -- 1-3: the three ways to sign in ---------------------------------------------------


def test_added_passkey_signs_in_usernameless_with_the_button(
    server: LiveServer, smtp: SmtpCapture, open_device: Opener
) -> None:
    address = "alice@example.com"
    user_id = server.add_user(address)
    page = open_device(server, autofill=False)
    authenticator = VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    expect(page.locator("#passkey-nudge")).to_be_visible()

    add_passkey(page)

    credential = authenticator.only_credential()
    assert credential["rpId"] == "localhost"
    assert credential["isResidentCredential"] is True
    assert credential["userName"] == address
    row = page.locator("tr.passkey")
    expect(row).to_contain_text("This device or security key only")
    expect(page.locator("#passkeys")).to_have_attribute(
        "data-credential-ids", base64url_of(credential["credentialId"])
    )
    expect(page.locator("#passkey-nudge")).to_have_count(0)
    [passkey] = stored_passkeys(server, user_id)
    assert passkey.user_verified
    assert not passkey.backup_eligible
    assert passkey.sign_count == credential["signCount"] == 1

    sign_out(page, server)
    with page.expect_request("**/api/v1/signin/passkey/options") as options:
        page.locator("#passkey-button").click()
    assert options.value.post_data_json == {}  # usernameless: no address sent
    expect_passkey_account(page, server, address, amr=HWK_UV, aal=2)
    [used] = stored_passkeys(server, user_id)
    assert used.sign_count == authenticator.only_credential()["signCount"] == 2
    assert used.last_used_at is not None


def test_autofill_signs_in_without_a_click(
    server: LiveServer, smtp: SmtpCapture, open_device: Opener
) -> None:
    address = "bob@example.com"
    server.add_user(address)
    page = open_device(server)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)
    email_session = session_of(page, server)
    assert email_session is not None

    # Signing out lands on /signin, whose conditional request the authenticator answers
    # at once: the user picks nothing and clicks nothing.
    with (
        page.expect_request("**/api/v1/signin/passkey/options") as options,
        page.expect_response("**/api/v1/signin/passkey/verify") as verified,
    ):
        page.locator("#signout-form button[type=submit]").click()
    assert options.value.post_data_json == {}
    assert verified.value.ok, verified.value.text()

    session = expect_passkey_account(page, server, address, amr=HWK_UV, aal=2)
    assert session["session_id"] != email_session["session_id"]


def test_email_button_sends_an_email_even_with_a_remembered_passkey(
    server: LiveServer, smtp: SmtpCapture, open_device: Opener
) -> None:
    """Issue 7, defect 9: the button says it emails a link, so it does; the passkey is
    offered beside it as a choice, and used only when chosen (email-first)."""
    address = "carol@example.com"
    server.add_user(address)
    page = open_device(server, autofill=False)
    VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    assert page.evaluate(f"localStorage.getItem('{HINT}')") is None
    add_passkey(page)
    assert page.evaluate(f"localStorage.getItem('{HINT}')") == address
    smtp.wait_for(address, 2)  # the sign-in email, then the "passkey added" notice

    sign_out(page, server)
    page.goto("/signin")
    offer = page.locator("#passkey-for-email")
    expect(offer).to_have_count(1)
    expect(offer).to_be_hidden()  # until the remembered address is typed
    page.locator("#email").fill(address.upper())
    expect(offer).to_be_visible()
    page.locator("#email-form button[type=submit]").click()
    settle(page, "#code-form #code")
    smtp.wait_for(address, 3)
    expect_not_signed_in_here(page, server)

    page.goto("/signin")
    page.locator("#email").fill(address)
    with page.expect_request("**/api/v1/signin/passkey/options") as options:
        offer.click()
    assert options.value.post_data_json == {"email": address}
    expect_passkey_account(page, server, address, amr=HWK_UV, aal=2)


def expect_not_signed_in_here(page: Page, server: LiveServer) -> None:
    assert session_of(page, server) is None


# -- 4: a security key with direct attestation -----------------------------------------


def placeholder_root(tmp_path: Path) -> Path:
    """A CA of our own that signed nothing: no authenticator chains to it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sekisho test root")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "placeholder-root.pem"
    path.write_bytes(certificate.public_bytes(Encoding.PEM))
    return path


def direct_attestation_server(make_server: ServerFactory, tmp_path: Path) -> LiveServer:
    """The page's server: asks for direct attestation, trusts only the placeholder."""
    return make_server(
        host_name="localhost",
        passkey_attestation="direct",
        passkey_trust_roots=[placeholder_root(tmp_path)],
        passkey_aaguid_allowlist=[YUBIKEY_5_AAGUID],
    )


def forward_trusting_this_authenticator(
    page: Page,
    front: LiveServer,
    make_server: ServerFactory,
    tmp_path: Path,
    allowlist: Callable[[str], list[str]],
) -> dict[str, Any]:
    """Send the next registration response to a second server configured to trust the
    authenticator's attestation root, with ``allowlist(aaguid)`` as its allow-list.

    Chromium signs its attestation certificate afresh for every registration (see the
    module docstring), so the only root that can verify a registration is the one in
    that same response. The route takes the x5c root from the response the browser is
    sending, writes it as a PEM trust root, starts a server with direct attestation, that
    root and the allow-list (same database, same keys, same public origin and RP ID as
    ``front``), and passes the unmodified request to it. That server then runs every
    check itself: the packed signature, the chain to the root, the AAGUID.
    """
    seen: dict[str, Any] = {}

    def handle(route: Route) -> None:
        body = route.request.post_data_json
        assert isinstance(body, dict)
        attestation = parse_attestation_object(
            base64url_to_bytes(body["credential"]["response"]["attestationObject"])
        )
        attested = attestation.auth_data.attested_credential_data
        assert attested is not None
        seen["fmt"] = attestation.fmt
        seen["x5c"] = attestation.att_stmt.x5c or []
        seen["aaguid"] = str(uuid.UUID(bytes=attested.aaguid))
        root = tmp_path / f"authenticator-root-{uuid.uuid4().hex[:8]}.pem"
        if seen["x5c"]:
            certificate = x509.load_der_x509_certificate(seen["x5c"][-1])
            root.write_bytes(certificate.public_bytes(Encoding.PEM))
            seen["root"] = certificate
        else:
            root.write_bytes(placeholder_root(tmp_path).read_bytes())
        trusting = make_server(
            host_name="localhost",
            public_origin=front.settings.public_origin,
            passkey_attestation="direct",
            passkey_trust_roots=[root],
            passkey_aaguid_allowlist=allowlist(seen["aaguid"]),
        )
        forwarded = route.fetch(url=trusting.url + "/api/v1/passkeys/registration/verify")
        seen["status"] = forwarded.status
        route.fulfill(response=forwarded)

    page.route("**/api/v1/passkeys/registration/verify", handle)
    return seen


def expect_chromium_batch_attestation(seen: dict[str, Any]) -> None:
    assert seen["fmt"] == AttestationFormat.PACKED
    assert len(seen["x5c"]) == 1
    root: x509.Certificate = seen["root"]
    assert root.subject == root.issuer  # self-signed
    assert root.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Chromium"
    assert not root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert seen["aaguid"] == CHROMIUM_VIRTUAL_AAGUID


def test_security_key_with_allowed_aaguid_and_trusted_attestation_is_added(
    make_server: ServerFactory,
    smtp: SmtpCapture,
    open_device: Opener,
    tmp_path: Path,
) -> None:
    front = direct_attestation_server(make_server, tmp_path)
    address = "dave@example.com"
    user_id = front.add_user(address)
    page = open_device(front, autofill=False)
    VirtualAuthenticator(page, **SECURITY_KEY)
    sign_in_by_email(page, front, smtp, address)
    seen = forward_trusting_this_authenticator(
        page, front, make_server, tmp_path, allowlist=lambda aaguid: [aaguid]
    )
    add_passkey(page)

    expect_chromium_batch_attestation(seen)
    assert seen["status"] == 201
    expect(page.locator("tr.passkey")).to_contain_text("This device or security key only")
    [passkey] = stored_passkeys(front, user_id)
    assert passkey.aaguid == CHROMIUM_VIRTUAL_AAGUID
    assert passkey.attestation_format == "packed"
    assert passkey.transports == ("usb",)


def test_security_key_refused_unless_trusted_and_allowed(
    make_server: ServerFactory,
    smtp: SmtpCapture,
    open_device: Opener,
    tmp_path: Path,
) -> None:
    front = direct_attestation_server(make_server, tmp_path)
    address = "erin@example.com"
    user_id = front.add_user(address)
    page = open_device(front, autofill=False)
    VirtualAuthenticator(page, **SECURITY_KEY)
    sign_in_by_email(page, front, smtp, address)

    # The attestation does not chain to the configured root: refused as "not allowed".
    with page.expect_response("**/api/v1/passkeys/registration/options") as asked:
        add_passkey_refused(page, error_text(page, "#add-passkey-error", "not-allowed"))
    public_key = asked.value.json()["publicKey"]
    assert public_key["attestation"] == "direct"
    assert public_key["hints"] == ["security-key"]

    # A trusted chain but an AAGUID missing from the allow-list: "not allowed".
    seen = forward_trusting_this_authenticator(
        page, front, make_server, tmp_path, allowlist=lambda _aaguid: [YUBIKEY_5_AAGUID]
    )
    add_passkey_refused(page, error_text(page, "#add-passkey-error", "not-allowed"))
    expect_chromium_batch_attestation(seen)
    assert seen["status"] == 403

    assert stored_passkeys(front, user_id) == []
    assert page.context.request.get(front.url + "/api/v1/passkeys").json() == []
    events = audit_events(front, user_id, address)
    said = failure_texts(events, "passkey.registration.failed")
    assert len(said) == 2, said
    assert "certificate chain" in said[0].lower()
    assert failures(events, "passkey.registration.failed")[1] == "aaguid_not_allowed"


# -- 5: a counter that goes backwards ------------------------------------------------


def test_sign_count_going_backwards_is_refused(
    server: LiveServer, smtp: SmtpCapture, open_device: Opener
) -> None:
    address = "fay@example.com"
    user_id = server.add_user(address)
    page = open_device(server, autofill=False)
    authenticator = VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)
    sign_out(page, server)
    page.locator("#passkey-button").click()
    expect_passkey_account(page, server, address, amr=HWK_UV, aal=2)
    sign_out(page, server)

    credential = authenticator.only_credential()
    [passkey] = stored_passkeys(server, user_id)
    assert passkey.sign_count == credential["signCount"] == 2
    # A copy of the key taken before its last use: same key, lower counter.
    authenticator.replace_credential({**credential, "signCount": 0})

    page.locator("#passkey-button").click()
    expect_passkey_refused(page, server)
    [after] = stored_passkeys(server, user_id)
    assert after.sign_count == 2
    assert after.last_used_at == passkey.last_used_at
    events = audit_events(server, user_id, address)
    assert [e.detail for e in events if e.event == "passkey.clone_suspected"] == [
        {"passkey": passkey.id, "stored": 2, "received": 1}
    ]
    assert failures(events, "passkey.signin.failed") == ["sign_count_not_increased"]


# -- 6: user verification ----------------------------------------------------------


def test_registration_without_user_verification_is_refused_by_default(
    server: LiveServer, smtp: SmtpCapture, open_device: Opener
) -> None:
    address = "gina@example.com"
    user_id = server.add_user(address)
    page = open_device(server, autofill=False)
    authenticator = VirtualAuthenticator(page)
    sign_in_by_email(page, server, smtp, address)
    verify_requests: list[str] = []
    page.on(
        "request",
        lambda request: (
            verify_requests.append(request.url)
            if request.url.endswith("/registration/verify")
            else None
        ),
    )

    # Failed UV: Chromium itself refuses (NotAllowedError, which passkey.js treats as a
    # cancel and does not report); nothing reaches the server.
    authenticator.set_user_verified(False)
    with page.expect_response("**/api/v1/passkeys/registration/options"):
        page.locator("#add-passkey").click()
    page.wait_for_timeout(500)
    assert verify_requests == []
    assert authenticator.credentials() == []
    expect(page.locator("#add-passkey-error")).to_be_hidden()

    # An authenticator answering with UV=0: the server refuses (UV required).
    authenticator.set_user_verified(True)
    authenticator.override_response_bits(bad_uv=True)
    add_passkey_refused(page, error_text(page, "#add-passkey-error", "failed"))
    assert len(verify_requests) == 1
    assert stored_passkeys(server, user_id) == []
    said = failure_texts(audit_events(server, user_id, address), "passkey.registration.failed")
    assert len(said) == 1, said
    assert "User verification is required" in said[0]


def test_preferred_user_verification_allows_presence_only_at_aal1(
    make_server: ServerFactory, smtp: SmtpCapture, open_device: Opener
) -> None:
    server = make_server(host_name="localhost", passkey_user_verification="preferred")
    address = "hana@example.com"
    user_id = server.add_user(address)
    page = open_device(server, autofill=False)
    # An authenticator that cannot verify its user, only see that one is present.
    VirtualAuthenticator(page, hasUserVerification=False, isUserVerified=False)
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)
    [passkey] = stored_passkeys(server, user_id)
    assert not passkey.user_verified

    # Chromium refuses such an authenticator a usernameless request, so sign in
    # email-first: the request names the credential.
    sign_out(page, server)
    page.locator("#email").fill(address)
    page.locator("#passkey-for-email").click()
    expect_passkey_account(page, server, address, amr=["hwk", "user"], aal=1)


# -- synced passkeys ---------------------------------------------------------------


def test_synced_passkey_is_swk_and_a_change_of_backup_eligibility_is_refused(
    server: LiveServer, smtp: SmtpCapture, open_device: Opener
) -> None:
    address = "iris@example.com"
    user_id = server.add_user(address)
    page = open_device(server, autofill=False)
    authenticator = VirtualAuthenticator(
        page, defaultBackupEligibility=True, defaultBackupState=True
    )
    sign_in_by_email(page, server, smtp, address)
    add_passkey(page)
    expect(page.locator("tr.passkey")).to_contain_text("Synced across your devices")
    [passkey] = stored_passkeys(server, user_id)
    assert passkey.backup_eligible
    assert passkey.backup_state

    sign_out(page, server)
    page.locator("#passkey-button").click()
    expect_passkey_account(page, server, address, amr=["swk", "pin", "mfa"], aal=2)
    sign_out(page, server)

    # BE is fixed for a credential's life (WebAuthn L3 §6.1.3): a change is refused.
    authenticator.set_backup(authenticator.only_credential(), eligible=False, state=False)
    page.locator("#passkey-button").click()
    expect_passkey_refused(page, server)
    events = audit_events(server, user_id, address)
    assert failures(events, "passkey.signin.failed") == ["backup_eligibility_changed"]


# -- 7: Japanese ------------------------------------------------------------------


def test_japanese_browser_sees_a_japanese_passkey_button(device: Device) -> None:
    page = device(locale="ja-JP")
    page.goto("/signin")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    button = page.locator("#passkey-button")
    expect(page.locator("#passkey-signin")).to_be_visible()
    expect(button).to_be_visible()
    expect(button).not_to_have_text("Sign in with a passkey")
    expect(button).to_have_text(JAPANESE)
    expect(page.locator("#passkey-error")).to_have_attribute("data-failed", JAPANESE)
    expect(page.locator("#email")).to_have_attribute("autocomplete", re.compile(r"\bwebauthn\b"))
