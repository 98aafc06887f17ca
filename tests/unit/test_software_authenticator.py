"""The software authenticator's responses verify with py_webauthn, for real."""

# SoftAuthenticator.assert_ is navigator.credentials.get(), not unittest's assert_.

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.asn1 import decode_der
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from webauthn import verify_authentication_response, verify_registration_response
from webauthn.helpers.exceptions import (
    InvalidAuthenticationResponse,
    InvalidBackupFlags,
    InvalidRegistrationResponse,
)
from webauthn.helpers.structs import AttestationFormat, CredentialDeviceType
from webauthn.registration.verify_registration_response import VerifiedRegistration

from tests.support.authenticator import (
    AAGUID_EXTENSION_OID,
    FLAG_AT,
    FLAG_BE,
    FLAG_BS,
    FLAG_UP,
    FLAG_UV,
    Algorithm,
    AttestationCA,
    NoCredentialError,
    SoftAuthenticator,
    b64url,
    b64url_decode,
    collected_client_data,
)

RP_ID = "localhost"
ORIGIN = "http://localhost:8000"
ALGORITHMS: list[Algorithm] = ["ES256", "EdDSA", "RS256"]
AAGUID = bytes.fromhex("5e5e15b0a5a5410f9b6c1d2e3f405162")
USER = b"user-handle-0001"


def challenge(n: int = 0) -> bytes:
    return hashlib.sha256(b"challenge %d" % n).digest()


def register(
    authenticator: SoftAuthenticator, *, n: int = 0, **verify: Any
) -> tuple[dict[str, Any], VerifiedRegistration]:
    response = authenticator.register(
        rp_id=RP_ID, origin=ORIGIN, challenge=challenge(n), user_handle=USER
    )
    verified = verify_registration_response(
        credential=response,
        expected_challenge=challenge(n),
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        require_user_verification=True,
        **verify,
    )
    return response, verified


def authenticate(
    response: dict[str, Any],
    verified: VerifiedRegistration,
    *,
    n: int,
    current_sign_count: int,
    require_user_verification: bool = True,
) -> Any:
    return verify_authentication_response(
        credential=response,
        expected_challenge=challenge(n),
        expected_rp_id=RP_ID,
        expected_origin=ORIGIN,
        credential_public_key=verified.credential_public_key,
        credential_current_sign_count=current_sign_count,
        require_user_verification=require_user_verification,
    )


def auth_data_of(registration: dict[str, Any]) -> bytes:
    attestation = cbor2.loads(b64url_decode(registration["response"]["attestationObject"]))
    return bytes(attestation["authData"])


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_registration_and_authentication_verify(algorithm: Algorithm) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm, aaguid=AAGUID)
    registration, verified = register(authenticator)

    credential_id = b64url_decode(registration["id"])
    stored = authenticator.credentials[credential_id]
    assert verified.credential_id == credential_id
    assert verified.credential_public_key == stored.public_key_cose
    assert verified.fmt == AttestationFormat.NONE
    assert verified.sign_count == 0
    assert verified.user_verified
    assert verified.aaguid == "5e5e15b0-a5a5-410f-9b6c-1d2e3f405162"
    assert verified.credential_device_type == CredentialDeviceType.SINGLE_DEVICE
    assert not verified.credential_backed_up
    assert (
        registration["response"]["publicKeyAlgorithm"]
        == {
            "ES256": -7,
            "EdDSA": -8,
            "RS256": -257,
        }[algorithm]
    )
    assert stored.rp_id == RP_ID
    assert stored.user_handle == USER

    current = verified.sign_count
    for n in (1, 2, 3):
        assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(n))
        assert assertion["id"] == registration["id"]
        assert b64url_decode(assertion["response"]["userHandle"]) == USER
        result = authenticate(assertion, verified, n=n, current_sign_count=current)
        assert result.credential_id == credential_id
        assert result.new_sign_count == n
        assert result.user_verified
        current = result.new_sign_count


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_registration_json_has_the_browser_shape(algorithm: Algorithm) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm)
    registration, _ = register(authenticator)

    assert json.loads(json.dumps(registration)) == registration
    assert set(registration) == {
        "id",
        "rawId",
        "type",
        "response",
        "clientExtensionResults",
        "authenticatorAttachment",
    }
    assert registration["id"] == registration["rawId"]
    assert "=" not in registration["id"]
    assert registration["type"] == "public-key"
    assert registration["clientExtensionResults"] == {}
    assert registration["authenticatorAttachment"] == "platform"
    response = registration["response"]
    assert response["transports"] == ["internal"]
    assert b64url_decode(response["authenticatorData"]) == auth_data_of(registration)
    # publicKey is the SubjectPublicKeyInfo of the credential key.
    spki = serialization.load_der_public_key(b64url_decode(response["publicKey"]))
    stored = authenticator.credentials[b64url_decode(registration["id"])]
    assert spki.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) == (stored.public_key_spki)

    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    assert json.loads(json.dumps(assertion)) == assertion
    assert set(assertion["response"]) == {
        "clientDataJSON",
        "authenticatorData",
        "signature",
        "userHandle",
    }
    assert assertion["authenticatorAttachment"] == "platform"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_authenticator_data_and_cose_key_layout(algorithm: Algorithm) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm, aaguid=AAGUID, sign_count_start=7)
    registration = authenticator.register(
        rp_id=RP_ID,
        origin=ORIGIN,
        challenge=challenge(),
        user_handle=USER,
        credential_id_length=20,
    )
    raw = b64url_decode(registration["response"]["attestationObject"])
    attestation = cbor2.loads(raw)
    assert list(attestation) == ["fmt", "attStmt", "authData"]
    assert attestation["fmt"] == "none"
    assert attestation["attStmt"] == {}
    assert cbor2.dumps(attestation, canonical=True) == raw

    auth_data = bytes(attestation["authData"])
    assert auth_data[:32] == hashlib.sha256(RP_ID.encode()).digest()
    assert auth_data[32] == FLAG_UP | FLAG_UV | FLAG_AT
    assert struct.unpack(">I", auth_data[33:37]) == (7,)
    assert auth_data[37:53] == AAGUID
    assert struct.unpack(">H", auth_data[53:55]) == (20,)
    credential_id = auth_data[55:75]
    assert b64url(credential_id) == registration["id"]
    cose_bytes = auth_data[75:]
    cose = cbor2.loads(cose_bytes)
    assert cbor2.dumps(cose, canonical=True) == cose_bytes
    if algorithm == "ES256":
        assert list(cose) == [1, 3, -1, -2, -3]
        assert (cose[1], cose[3], cose[-1]) == (2, -7, 1)
        assert len(cose[-2]) == len(cose[-3]) == 32
    elif algorithm == "EdDSA":
        assert list(cose) == [1, 3, -1, -2]
        assert (cose[1], cose[3], cose[-1]) == (1, -8, 6)
        assert len(cose[-2]) == 32
    else:
        assert list(cose) == [1, 3, -1, -2]
        assert (cose[1], cose[3]) == (3, -257)
        assert len(cose[-1]) == 256
        assert cose[-2] == b"\x01\x00\x01"

    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    auth_data = b64url_decode(assertion["response"]["authenticatorData"])
    assert len(auth_data) == 37
    assert auth_data[32] == FLAG_UP | FLAG_UV
    assert struct.unpack(">I", auth_data[33:37]) == (8,)


def test_client_data_json_is_the_spec_serialisation() -> None:
    value = collected_client_data(
        client_data_type="webauthn.get",
        challenge=b"\xfb\xff",
        origin=ORIGIN,
        cross_origin=True,
        top_origin="https://top.example",
    )
    assert value == (
        b'{"type":"webauthn.get","challenge":"-_8","origin":"http://localhost:8000",'
        b'"crossOrigin":true,"topOrigin":"https://top.example"}'
    )
    assert (
        collected_client_data(
            client_data_type="webauthn.create", challenge=b"", origin='a"\\\n\u00e9'
        )
        == ('{"type":"webauthn.create","challenge":"","origin":"a\\"\\\\\\u000a\u00e9"}').encode()
    )

    authenticator = SoftAuthenticator()
    registration = authenticator.register(
        rp_id=RP_ID, origin=ORIGIN, challenge=b"abc", user_handle=USER, cross_origin=False
    )
    assert b64url_decode(registration["response"]["clientDataJSON"]) == (
        b'{"type":"webauthn.create","challenge":"YWJj","origin":"http://localhost:8000",'
        b'"crossOrigin":false}'
    )


# ------------------------------------------------------------------ attestation


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_packed_self_attestation_verifies(algorithm: Algorithm) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm, attestation="packed-self")
    registration, verified = register(authenticator)
    assert verified.fmt == AttestationFormat.PACKED
    statement = cbor2.loads(b64url_decode(registration["response"]["attestationObject"]))["attStmt"]
    assert list(statement) == ["alg", "sig"]
    assert statement["alg"] == registration["response"]["publicKeyAlgorithm"]

    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    assert authenticate(assertion, verified, n=1, current_sign_count=0).new_sign_count == 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_packed_x5c_attestation_chains_to_the_root(algorithm: Algorithm) -> None:
    ca = AttestationCA()
    authenticator = SoftAuthenticator(
        algorithm=algorithm, aaguid=AAGUID, attestation="packed-x5c", attestation_ca=ca
    )
    registration, verified = register(
        authenticator, pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: [ca.root_pem]}
    )
    assert verified.fmt == AttestationFormat.PACKED
    statement = cbor2.loads(b64url_decode(registration["response"]["attestationObject"]))["attStmt"]
    assert list(statement) == ["alg", "sig", "x5c"]
    assert statement["alg"] == -7
    assert authenticator.attestation_certificate is not None
    assert statement["x5c"] == [authenticator.attestation_certificate.der]

    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    assert authenticate(assertion, verified, n=1, current_sign_count=0).new_sign_count == 1


def test_packed_x5c_from_another_root_is_rejected() -> None:
    authenticator = SoftAuthenticator(attestation="packed-x5c", attestation_ca=AttestationCA())
    with pytest.raises(InvalidRegistrationResponse, match="Certificate chain"):
        register(
            authenticator,
            pem_root_certs_bytes_by_fmt={AttestationFormat.PACKED: [AttestationCA().root_pem]},
        )


def test_attestation_certificate_follows_packed_requirements() -> None:
    ca = AttestationCA()
    leaf = ca.issue(aaguid=AAGUID).certificate
    assert leaf.version == x509.Version.v3
    assert leaf.issuer == ca.certificate.subject
    subject = {attribute.oid: attribute.value for attribute in leaf.subject}
    assert set(subject) == {
        NameOID.COUNTRY_NAME,
        NameOID.ORGANIZATION_NAME,
        NameOID.ORGANIZATIONAL_UNIT_NAME,
        NameOID.COMMON_NAME,
    }
    assert subject[NameOID.ORGANIZATIONAL_UNIT_NAME] == "Authenticator Attestation"
    assert len(str(subject[NameOID.COUNTRY_NAME])) == 2
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    aaguid_extension = leaf.extensions.get_extension_for_oid(AAGUID_EXTENSION_OID)
    assert not aaguid_extension.critical
    assert isinstance(aaguid_extension.value, x509.UnrecognizedExtension)
    # The extnValue holds the DER of an OCTET STRING that holds the 16 AAGUID bytes.
    assert aaguid_extension.value.value == b"\x04\x10" + AAGUID
    assert decode_der(bytes, aaguid_extension.value.value) == AAGUID
    leaf.verify_directly_issued_by(ca.certificate)

    root = x509.load_pem_x509_certificate(ca.root_pem)
    assert root == ca.certificate
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    bare = ca.issue(aaguid=None).certificate
    with pytest.raises(x509.ExtensionNotFound):
        bare.extensions.get_extension_for_oid(AAGUID_EXTENSION_OID)


# ------------------------------------------------------------------ flags


@pytest.mark.parametrize(
    ("backup_eligible", "backup_state", "device_type"),
    [
        (False, False, CredentialDeviceType.SINGLE_DEVICE),
        (True, False, CredentialDeviceType.MULTI_DEVICE),
        (True, True, CredentialDeviceType.MULTI_DEVICE),
    ],
)
def test_backup_flags_are_reported(
    backup_eligible: bool, backup_state: bool, device_type: CredentialDeviceType
) -> None:
    authenticator = SoftAuthenticator(
        backup_eligible=backup_eligible, backup_state=backup_state, sign_count_step=0
    )
    registration, verified = register(authenticator)
    flags = auth_data_of(registration)[32]
    assert bool(flags & FLAG_BE) is backup_eligible
    assert bool(flags & FLAG_BS) is backup_state
    assert verified.credential_device_type == device_type
    assert verified.credential_backed_up is backup_state

    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    result = authenticate(assertion, verified, n=1, current_sign_count=0)
    assert result.credential_device_type == device_type
    assert result.credential_backed_up is backup_state


def test_flags_follow_attribute_changes_between_calls() -> None:
    authenticator = SoftAuthenticator(backup_eligible=True)
    _, verified = register(authenticator)
    assert not verified.credential_backed_up

    authenticator.backup_state = True
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    assert authenticate(assertion, verified, n=1, current_sign_count=0).credential_backed_up

    authenticator.user_verification = False
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(2))
    with pytest.raises(InvalidAuthenticationResponse, match="verification"):
        authenticate(assertion, verified, n=2, current_sign_count=1)
    result = authenticate(
        assertion, verified, n=2, current_sign_count=1, require_user_verification=False
    )
    assert not result.user_verified

    authenticator.user_presence = False
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(3))
    with pytest.raises(InvalidAuthenticationResponse, match="not present"):
        authenticate(
            assertion, verified, n=3, current_sign_count=2, require_user_verification=False
        )


def test_backup_state_without_eligibility_is_produced_and_rejected() -> None:
    authenticator = SoftAuthenticator(backup_state=True)
    with pytest.raises(InvalidBackupFlags):
        register(authenticator)


def test_registration_without_user_verification_is_rejected_when_required() -> None:
    authenticator = SoftAuthenticator(user_verification=False)
    with pytest.raises(InvalidRegistrationResponse, match="verification"):
        register(authenticator)


# ------------------------------------------------------------------ tampering and forgery


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tampered_signature_fails(algorithm: Algorithm) -> None:
    authenticator = SoftAuthenticator(algorithm=algorithm)
    _, verified = register(authenticator)
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    signature = bytearray(b64url_decode(assertion["response"]["signature"]))
    signature[len(signature) // 2] ^= 0x01
    assertion["response"]["signature"] = b64url(bytes(signature))
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        authenticate(assertion, verified, n=1, current_sign_count=0)


def test_tampered_authenticator_data_fails() -> None:
    authenticator = SoftAuthenticator()
    _, verified = register(authenticator)
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    auth_data = bytearray(b64url_decode(assertion["response"]["authenticatorData"]))
    auth_data[36] += 1  # the low byte of the counter
    assertion["response"]["authenticatorData"] = b64url(bytes(auth_data))
    with pytest.raises(InvalidAuthenticationResponse, match="signature"):
        authenticate(assertion, verified, n=1, current_sign_count=0)


def test_tampered_packed_signature_fails() -> None:
    authenticator = SoftAuthenticator(attestation="packed-self")
    registration = authenticator.register(
        rp_id=RP_ID, origin=ORIGIN, challenge=challenge(), user_handle=USER
    )
    attestation = cbor2.loads(b64url_decode(registration["response"]["attestationObject"]))
    signature = bytearray(attestation["attStmt"]["sig"])
    signature[-1] ^= 0x01
    attestation["attStmt"]["sig"] = bytes(signature)
    registration["response"]["attestationObject"] = b64url(cbor2.dumps(attestation, canonical=True))
    with pytest.raises(InvalidRegistrationResponse, match="signature"):
        verify_registration_response(
            credential=registration,
            expected_challenge=challenge(),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )


def test_foreign_rp_id_hash_is_rejected() -> None:
    authenticator = SoftAuthenticator()
    registration = authenticator.register(
        rp_id=RP_ID,
        origin=ORIGIN,
        challenge=challenge(),
        user_handle=USER,
        rp_id_for_hash="evil.example",
    )
    assert auth_data_of(registration)[:32] == hashlib.sha256(b"evil.example").digest()
    with pytest.raises(InvalidRegistrationResponse, match="RP ID hash"):
        verify_registration_response(
            credential=registration,
            expected_challenge=challenge(),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )

    _, verified = register(authenticator, n=1)
    assertion = authenticator.assert_(
        rp_id=RP_ID,
        origin=ORIGIN,
        challenge=challenge(2),
        credential_id=verified.credential_id,
        rp_id_for_hash="evil.example",
    )
    with pytest.raises(InvalidAuthenticationResponse, match="RP ID hash"):
        authenticate(assertion, verified, n=2, current_sign_count=0)


def test_wrong_client_data_type_and_origin_are_rejected() -> None:
    authenticator = SoftAuthenticator()
    registration = authenticator.register(
        rp_id=RP_ID,
        origin=ORIGIN,
        challenge=challenge(),
        user_handle=USER,
        client_data_type="webauthn.get",
    )
    with pytest.raises(InvalidRegistrationResponse, match="client data type"):
        verify_registration_response(
            credential=registration,
            expected_challenge=challenge(),
            expected_rp_id=RP_ID,
            expected_origin=ORIGIN,
        )

    _, verified = register(authenticator, n=1)
    assertion = authenticator.assert_(
        rp_id=RP_ID,
        origin=ORIGIN,
        challenge=challenge(2),
        credential_id=verified.credential_id,
        client_data_type="webauthn.create",
    )
    with pytest.raises(InvalidAuthenticationResponse, match="client data type"):
        authenticate(assertion, verified, n=2, current_sign_count=0)

    assertion = authenticator.assert_(
        rp_id=RP_ID,
        origin="http://evil.example",
        challenge=challenge(3),
        credential_id=verified.credential_id,
    )
    with pytest.raises(InvalidAuthenticationResponse, match="origin"):
        authenticate(assertion, verified, n=3, current_sign_count=1)


# ------------------------------------------------------------------ counters and clones


def test_sign_count_step_zero_keeps_the_counter_at_zero() -> None:
    authenticator = SoftAuthenticator(sign_count_step=0, backup_eligible=True, backup_state=True)
    _, verified = register(authenticator)
    for n in (1, 2):
        assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(n))
        assert authenticate(assertion, verified, n=n, current_sign_count=0).new_sign_count == 0


def test_sign_count_start_and_step() -> None:
    authenticator = SoftAuthenticator(sign_count_start=100, sign_count_step=5)
    _, verified = register(authenticator)
    assert verified.sign_count == 100
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    assert authenticate(assertion, verified, n=1, current_sign_count=100).new_sign_count == 105


def test_a_clone_is_caught_by_the_counter() -> None:
    original = SoftAuthenticator()
    _, verified = register(original)
    copy = original.clone()
    assert copy.credentials.keys() == original.credentials.keys()
    assert (
        copy.credentials[verified.credential_id] is not original.credentials[verified.credential_id]
    )

    current = 0
    for n in (1, 2):
        assertion = original.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(n))
        current = authenticate(assertion, verified, n=n, current_sign_count=current).new_sign_count
    assert current == 2
    assert copy.credentials[verified.credential_id].sign_count == 0

    # The clone signs with the same key, but its counter lags behind.
    assertion = copy.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(3))
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        authenticate(assertion, verified, n=3, current_sign_count=current)


def test_set_sign_count_rewinds_a_credential() -> None:
    authenticator = SoftAuthenticator()
    _, verified = register(authenticator)
    authenticator.set_sign_count(verified.credential_id, 10)
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1))
    assert authenticate(assertion, verified, n=1, current_sign_count=0).new_sign_count == 11

    authenticator.set_sign_count(verified.credential_id, 3)
    assertion = authenticator.assert_(rp_id=RP_ID, origin=ORIGIN, challenge=challenge(2))
    with pytest.raises(InvalidAuthenticationResponse, match="sign count"):
        authenticate(assertion, verified, n=2, current_sign_count=11)

    with pytest.raises(ValueError, match="32-bit"):
        authenticator.set_sign_count(verified.credential_id, 2**32)


# ------------------------------------------------------------------ credential choice


def test_credential_selection() -> None:
    authenticator = SoftAuthenticator()
    first = b64url_decode(
        authenticator.register(
            rp_id=RP_ID, origin=ORIGIN, challenge=challenge(), user_handle=b"first"
        )["id"]
    )
    second = b64url_decode(
        authenticator.register(
            rp_id=RP_ID, origin=ORIGIN, challenge=challenge(), user_handle=b"second"
        )["id"]
    )
    other = b64url_decode(
        authenticator.register(
            rp_id="other.example", origin=ORIGIN, challenge=challenge(), user_handle=b"other"
        )["id"]
    )

    def chosen(**kwargs: Any) -> bytes:
        response = authenticator.assert_(
            rp_id=RP_ID, origin=ORIGIN, challenge=challenge(9), **kwargs
        )
        return b64url_decode(response["rawId"])

    assert chosen() == first  # discoverable: the first credential for the RP
    assert chosen(credential_id=second) == second
    assert chosen(allow_credentials=[b"unknown", other, second, first]) == second
    with pytest.raises(NoCredentialError):
        chosen(allow_credentials=[b"unknown", other])
    with pytest.raises(NoCredentialError):
        chosen(credential_id=b"unknown")
    with pytest.raises(NoCredentialError):
        authenticator.assert_(rp_id="nobody.example", origin=ORIGIN, challenge=challenge())


def test_user_handle_override_and_omission() -> None:
    authenticator = SoftAuthenticator()
    _, verified = register(authenticator)
    response = authenticator.assert_(
        rp_id=RP_ID, origin=ORIGIN, challenge=challenge(1), user_handle_override=b"someone"
    )
    assert response["response"]["userHandle"] == b64url(b"someone")
    authenticate(response, verified, n=1, current_sign_count=0)

    response = authenticator.assert_(
        rp_id=RP_ID, origin=ORIGIN, challenge=challenge(2), omit_user_handle=True
    )
    assert "userHandle" not in response["response"]
    authenticate(response, verified, n=2, current_sign_count=1)


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="aaguid"):
        SoftAuthenticator(aaguid=b"short")
    with pytest.raises(ValueError, match="attestation_ca"):
        SoftAuthenticator(attestation="packed-x5c")
    with pytest.raises(ValueError, match="sign_count_step"):
        SoftAuthenticator(sign_count_step=-1)
    with pytest.raises(ValueError, match="credential_id_length"):
        SoftAuthenticator().register(
            rp_id=RP_ID,
            origin=ORIGIN,
            challenge=challenge(),
            user_handle=USER,
            credential_id_length=0,
        )


def test_b64url_round_trip() -> None:
    for data in (b"", b"\x00", b"\xfb\xff", bytes(range(256))):
        text = b64url(data)
        assert "=" not in text
        assert "+" not in text
        assert "/" not in text
        assert b64url_decode(text) == data
