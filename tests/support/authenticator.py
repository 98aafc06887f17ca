"""A software WebAuthn authenticator and client, for tests.

The server verifies WebAuthn responses with py_webauthn and the tests never mock that
verification, so everything here is produced byte for byte as WebAuthn Level 3 and CTAP2
describe it:

* ``clientDataJSON`` follows the limited serialisation of WebAuthn §5.8.1.1 (CCDToString):
  compact, members in the order type, challenge, origin, crossOrigin, topOrigin.
* ``authenticatorData`` is rpIdHash | flags | signCount (big-endian u32) | attested
  credential data (aaguid | credentialIdLength (u16) | credentialId | COSE_Key), §6.1.
* COSE keys and the attestation object use CTAP2 canonical CBOR (cbor2, ``canonical=True``),
  so map keys come out in the order an authenticator emits them.
* Attestation formats "none" and "packed" (self attestation and x5c with a certificate that
  follows §8.2.1), §8.2 and §8.7.
* The JSON forms are what a browser's ``PublicKeyCredential.toJSON()`` gives:
  RegistrationResponseJSON and AuthenticationResponseJSON with base64url (no padding) strings.

Keys, signatures and certificates come from ``cryptography``; CBOR from ``cbor2``.  Nothing
cryptographic is written by hand here.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any, Literal

import cbor2
from cryptography import x509
from cryptography.hazmat.asn1 import encode_der
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID

__all__ = [
    "AAGUID_EXTENSION_OID",
    "COSE_ALGORITHMS",
    "FLAG_AT",
    "FLAG_BE",
    "FLAG_BS",
    "FLAG_ED",
    "FLAG_UP",
    "FLAG_UV",
    "Algorithm",
    "AttestationCA",
    "AttestationCertificate",
    "AttestationKind",
    "NoCredentialError",
    "PrivateKey",
    "SoftAuthenticator",
    "StoredCredential",
    "b64url",
    "b64url_decode",
    "collected_client_data",
    "cose_public_key",
    "generate_private_key",
    "sign",
]

Algorithm = Literal["ES256", "EdDSA", "RS256"]
AttestationKind = Literal["none", "packed-self", "packed-x5c"]
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

#: COSE algorithm identifiers (IANA "COSE Algorithms" registry).
COSE_ALGORITHMS: dict[Algorithm, int] = {"ES256": -7, "EdDSA": -8, "RS256": -257}

# Authenticator data flags, WebAuthn §6.1.
FLAG_UP = 0x01  # user present
FLAG_UV = 0x04  # user verified
FLAG_BE = 0x08  # backup eligible
FLAG_BS = 0x10  # backup state
FLAG_AT = 0x40  # attested credential data included
FLAG_ED = 0x80  # extension data included

#: id-fido-gen-ce-aaguid, WebAuthn §8.2.1.
AAGUID_EXTENSION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFFFFFF

# COSE key parameters (RFC 9052 / RFC 9053 / RFC 8230).
_COSE_KTY = 1
_COSE_ALG = 3
_COSE_CRV_OR_N = -1
_COSE_X_OR_E = -2
_COSE_Y = -3
_COSE_KTY_OKP = 1
_COSE_KTY_EC2 = 2
_COSE_KTY_RSA = 3
_COSE_CRV_P256 = 1
_COSE_CRV_ED25519 = 6


class NoCredentialError(LookupError):
    """The authenticator holds no credential that matches the request (NotAllowedError)."""


# --------------------------------------------------------------------------- encodings


def b64url(data: bytes) -> str:
    """Base64url without padding, as WebAuthn's JSON forms use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The inverse of :func:`b64url` (accepts missing padding)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ccd_to_string(value: str) -> bytes:
    """CCDToString from WebAuthn §5.8.1.1: a JSON string with the minimal escaping."""
    encoded = bytearray(b'"')
    for char in value:
        code = ord(char)
        if char == '"':
            encoded += b'\\"'
        elif char == "\\":
            encoded += b"\\\\"
        elif code < 0x20:
            encoded += b"\\u%04x" % code
        else:
            encoded += char.encode("utf-8")
    encoded += b'"'
    return bytes(encoded)


def collected_client_data(
    *,
    client_data_type: str,
    challenge: bytes,
    origin: str,
    cross_origin: bool | None = None,
    top_origin: str | None = None,
) -> bytes:
    """The clientDataJSON bytes, serialised as WebAuthn §5.8.1.1 prescribes.

    ``crossOrigin`` is written only when ``cross_origin`` is not None (browsers always write
    it; older ones did not), ``topOrigin`` only when given.
    """
    parts = [
        b'{"type":',
        _ccd_to_string(client_data_type),
        b',"challenge":',
        _ccd_to_string(b64url(challenge)),
        b',"origin":',
        _ccd_to_string(origin),
    ]
    if cross_origin is not None:
        parts += [b',"crossOrigin":', b"true" if cross_origin else b"false"]
    if top_origin is not None:
        parts += [b',"topOrigin":', _ccd_to_string(top_origin)]
    parts.append(b"}")
    return b"".join(parts)


# --------------------------------------------------------------------------- keys


def generate_private_key(algorithm: Algorithm) -> PrivateKey:
    """A fresh credential key pair for the given COSE algorithm name."""
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unsupported algorithm {algorithm!r}")


def sign(private_key: PrivateKey, data: bytes) -> bytes:
    """Sign as WebAuthn expects for the key's algorithm.

    ES256: ECDSA P-256 with SHA-256, DER-encoded signature; EdDSA: Ed25519;
    RS256: RSASSA-PKCS1-v1_5 with SHA-256.
    """
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        return private_key.sign(data, ec.ECDSA(hashes.SHA256()))
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def _algorithm_of(private_key: PrivateKey) -> Algorithm:
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise ValueError("only P-256 EC keys are supported (ES256)")
        return "ES256"
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    return "RS256"


def _unsigned_be(value: int) -> bytes:
    """A non-negative integer as minimal big-endian bytes (COSE RSA n and e)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")


def cose_public_key(private_key: PrivateKey) -> bytes:
    """The credential public key as a COSE_Key in CTAP2 canonical CBOR.

    EC2: {1: 2, 3: -7, -1: 1, -2: x, -3: y} with 32-byte coordinates;
    OKP: {1: 1, 3: -8, -1: 6, -2: x}; RSA: {1: 3, 3: -257, -1: n, -2: e}.
    """
    algorithm = _algorithm_of(private_key)
    key: dict[int, int | bytes]
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        point = private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        key = {
            _COSE_KTY: _COSE_KTY_EC2,
            _COSE_ALG: COSE_ALGORITHMS[algorithm],
            _COSE_CRV_OR_N: _COSE_CRV_P256,
            _COSE_X_OR_E: point[1:33],
            _COSE_Y: point[33:65],
        }
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        key = {
            _COSE_KTY: _COSE_KTY_OKP,
            _COSE_ALG: COSE_ALGORITHMS[algorithm],
            _COSE_CRV_OR_N: _COSE_CRV_ED25519,
            _COSE_X_OR_E: private_key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            ),
        }
    else:
        numbers = private_key.public_key().public_numbers()
        key = {
            _COSE_KTY: _COSE_KTY_RSA,
            _COSE_ALG: COSE_ALGORITHMS[algorithm],
            _COSE_CRV_OR_N: _unsigned_be(numbers.n),
            _COSE_X_OR_E: _unsigned_be(numbers.e),
        }
    return cbor2.dumps(key, canonical=True)


def _spki_der(private_key: PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _u32(value: int, what: str) -> bytes:
    if not 0 <= value <= _U32_MAX:
        raise ValueError(f"{what} must fit an unsigned 32-bit integer, got {value}")
    return struct.pack(">I", value)


# --------------------------------------------------------------------------- attestation


@dataclass(frozen=True, kw_only=True)
class AttestationCertificate:
    """An attestation leaf: its ES256 key and the certificate that goes first in x5c."""

    private_key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _name(*, country: str, organization: str, unit: str | None, common_name: str) -> x509.Name:
    attributes = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if unit is not None:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


@dataclass(kw_only=True, eq=False)
class AttestationCA:
    """A throwaway attestation root (P-256) that issues packed attestation certificates.

    Give :attr:`root_pem` to the verifier as a trusted root for the "packed" format.
    """

    country: str = "JP"
    organization: str = "Sekisho Test Authenticators"
    common_name: str = "Sekisho Test Attestation Root"
    validity: datetime.timedelta = datetime.timedelta(days=3650)
    private_key: ec.EllipticCurvePrivateKey = field(init=False, repr=False)
    certificate: x509.Certificate = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(
            country=self.country,
            organization=self.organization,
            unit=None,
            common_name=self.common_name,
        )
        public_key = self.private_key.public_key()
        now = datetime.datetime.now(datetime.UTC)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + self.validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .sign(self.private_key, hashes.SHA256())
        )

    @property
    def root_pem(self) -> bytes:
        """The root certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def root_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def issue(
        self,
        *,
        aaguid: bytes | None,
        country: str | None = None,
        organization: str | None = None,
        organizational_unit: str = "Authenticator Attestation",
        common_name: str = "Sekisho Soft Authenticator",
        validity: datetime.timedelta = datetime.timedelta(days=365),
    ) -> AttestationCertificate:
        """Issue an attestation certificate per WebAuthn §8.2.1.

        Version 3; subject C, O, OU ("Authenticator Attestation"), CN; basicConstraints with
        CA false; and, unless ``aaguid`` is None, the non-critical id-fido-gen-ce-aaguid
        extension whose value is the AAGUID as an OCTET STRING (which X.509 wraps in the
        extnValue OCTET STRING).
        """
        if aaguid is not None and len(aaguid) != 16:
            raise ValueError("aaguid must be 16 bytes")
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        public_key = leaf_key.public_key()
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(
                _name(
                    country=country or self.country,
                    organization=organization or self.organization,
                    unit=organizational_unit,
                    common_name=common_name,
                )
            )
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.private_key.public_key()),
                critical=False,
            )
        )
        if aaguid is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(AAGUID_EXTENSION_OID, encode_der(aaguid)),
                critical=False,
            )
        certificate = builder.sign(self.private_key, hashes.SHA256())
        return AttestationCertificate(private_key=leaf_key, certificate=certificate)


# --------------------------------------------------------------------------- authenticator


@dataclass(kw_only=True, eq=False)
class StoredCredential:
    """One credential the authenticator holds (a discoverable credential, CTAP2 style)."""

    credential_id: bytes
    private_key: PrivateKey = field(repr=False)
    rp_id: str
    user_handle: bytes
    sign_count: int

    @property
    def algorithm(self) -> Algorithm:
        return _algorithm_of(self.private_key)

    @property
    def cose_algorithm(self) -> int:
        return COSE_ALGORITHMS[self.algorithm]

    @property
    def public_key_cose(self) -> bytes:
        """The COSE_Key bytes, as the relying party stores them after registration."""
        return cose_public_key(self.private_key)

    @property
    def public_key_spki(self) -> bytes:
        """The SubjectPublicKeyInfo DER, as ``response.publicKey`` carries it."""
        return _spki_der(self.private_key)


@dataclass(kw_only=True, eq=False)
class SoftAuthenticator:
    """A platform authenticator plus the browser side of the ceremony, in software.

    The options below are plain attributes: tests may change ``user_verification``,
    ``user_presence``, ``backup_eligible`` and ``backup_state`` between calls and the next
    response reflects them.  No consistency is enforced (BS without BE is produced on
    request), so tests can forge what a faulty authenticator would send.
    """

    algorithm: Algorithm = "ES256"
    aaguid: bytes = bytes(16)
    backup_eligible: bool = False
    backup_state: bool = False
    user_verification: bool = True
    user_presence: bool = True
    sign_count_start: int = 0
    sign_count_step: int = 1
    attestation: AttestationKind = "none"
    attestation_ca: AttestationCA | None = None
    #: The leaf used for "packed-x5c"; issued from ``attestation_ca`` for ``aaguid`` if None.
    attestation_certificate: AttestationCertificate | None = None
    transports: list[str] = field(default_factory=lambda: ["internal"])
    #: ``authenticatorAttachment`` in the JSON; None leaves the member out.
    authenticator_attachment: str | None = "platform"
    credentials: dict[bytes, StoredCredential] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.algorithm not in COSE_ALGORITHMS:
            raise ValueError(f"unsupported algorithm {self.algorithm!r}")
        if len(self.aaguid) != 16:
            raise ValueError("aaguid must be 16 bytes")
        _u32(self.sign_count_start, "sign_count_start")
        if self.sign_count_step < 0:
            raise ValueError("sign_count_step must not be negative")
        if self.attestation not in ("none", "packed-self", "packed-x5c"):
            raise ValueError(f"unsupported attestation {self.attestation!r}")
        if self.attestation == "packed-x5c" and self.attestation_certificate is None:
            if self.attestation_ca is None:
                raise ValueError('attestation="packed-x5c" needs an attestation_ca')
            self.attestation_certificate = self.attestation_ca.issue(aaguid=self.aaguid)

    # ---------------------------------------------------------------- pieces

    def flags(self, *, attested_credential_data: bool = False) -> int:
        """The flags byte the authenticator would set right now."""
        value = 0
        if self.user_presence:
            value |= FLAG_UP
        if self.user_verification:
            value |= FLAG_UV
        if self.backup_eligible:
            value |= FLAG_BE
        if self.backup_state:
            value |= FLAG_BS
        if attested_credential_data:
            value |= FLAG_AT
        return value

    @staticmethod
    def _rp_id_hash(rp_id: str) -> bytes:
        return hashlib.sha256(rp_id.encode("utf-8")).digest()

    def _credential_json(self, credential_id: bytes, response: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "response": response,
            "type": "public-key",
            "clientExtensionResults": {},
        }
        if self.authenticator_attachment is not None:
            result["authenticatorAttachment"] = self.authenticator_attachment
        return result

    def _attestation_statement(
        self, private_key: PrivateKey, auth_data: bytes, client_data_hash: bytes
    ) -> tuple[str, dict[str, Any]]:
        signed = auth_data + client_data_hash
        if self.attestation == "none":
            return "none", {}
        if self.attestation == "packed-self":
            return "packed", {
                "alg": COSE_ALGORITHMS[_algorithm_of(private_key)],
                "sig": sign(private_key, signed),
            }
        leaf = self.attestation_certificate
        if leaf is None:  # pragma: no cover - __post_init__ guarantees it
            raise ValueError('attestation="packed-x5c" needs an attestation certificate')
        return "packed", {
            "alg": COSE_ALGORITHMS["ES256"],
            "sig": sign(leaf.private_key, signed),
            "x5c": [leaf.der],
        }

    # ---------------------------------------------------------------- ceremonies

    def register(
        self,
        *,
        rp_id: str,
        origin: str,
        challenge: bytes,
        user_handle: bytes,
        credential_id_length: int = 32,
        credential_id: bytes | None = None,
        client_data_type: str = "webauthn.create",
        cross_origin: bool | None = None,
        top_origin: str | None = None,
        rp_id_for_hash: str | None = None,
    ) -> dict[str, Any]:
        """navigator.credentials.create(): a new credential, as RegistrationResponseJSON.

        ``credential_id`` forces the new credential's id (a faulty or malicious
        authenticator reusing an id); otherwise it is ``credential_id_length`` random bytes.
        """
        if credential_id is None:
            if not 1 <= credential_id_length <= _U16_MAX:
                raise ValueError("credential_id_length must be between 1 and 65535")
            credential_id = secrets.token_bytes(credential_id_length)
        elif not 1 <= len(credential_id) <= _U16_MAX:
            raise ValueError("credential_id must be between 1 and 65535 bytes")
        private_key = generate_private_key(self.algorithm)
        credential = StoredCredential(
            credential_id=credential_id,
            private_key=private_key,
            rp_id=rp_id,
            user_handle=user_handle,
            sign_count=self.sign_count_start,
        )
        attested_credential_data = (
            self.aaguid
            + struct.pack(">H", len(credential_id))
            + credential_id
            + credential.public_key_cose
        )
        auth_data = (
            self._rp_id_hash(rp_id if rp_id_for_hash is None else rp_id_for_hash)
            + bytes([self.flags(attested_credential_data=True)])
            + _u32(credential.sign_count, "sign count")
            + attested_credential_data
        )
        client_data = collected_client_data(
            client_data_type=client_data_type,
            challenge=challenge,
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
        )
        fmt, att_stmt = self._attestation_statement(
            private_key, auth_data, hashlib.sha256(client_data).digest()
        )
        attestation_object = cbor2.dumps(
            {"fmt": fmt, "attStmt": att_stmt, "authData": auth_data}, canonical=True
        )
        self.credentials[credential_id] = credential
        return self._credential_json(
            credential_id,
            {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "transports": list(self.transports),
                "publicKey": b64url(credential.public_key_spki),
                "publicKeyAlgorithm": credential.cose_algorithm,
                "attestationObject": b64url(attestation_object),
            },
        )

    def _select(
        self,
        *,
        rp_id: str,
        credential_id: bytes | None,
        allow_credentials: list[bytes] | None,
    ) -> StoredCredential:
        if credential_id is not None:
            # Explicit choice: the test decides, even across relying parties.
            try:
                return self.credentials[credential_id]
            except KeyError:
                raise NoCredentialError(f"no credential {b64url(credential_id)}") from None
        if allow_credentials:
            for candidate in allow_credentials:
                held = self.credentials.get(candidate)
                if held is not None and held.rp_id == rp_id:
                    return held
            raise NoCredentialError(f"none of allowCredentials is held for {rp_id!r}")
        for held in self.credentials.values():
            if held.rp_id == rp_id:
                return held
        raise NoCredentialError(f"no discoverable credential for {rp_id!r}")

    def assert_(
        self,
        *,
        rp_id: str,
        origin: str,
        challenge: bytes,
        credential_id: bytes | None = None,
        allow_credentials: list[bytes] | None = None,
        client_data_type: str = "webauthn.get",
        cross_origin: bool | None = None,
        top_origin: str | None = None,
        rp_id_for_hash: str | None = None,
        user_handle_override: bytes | None = None,
        omit_user_handle: bool = False,
    ) -> dict[str, Any]:
        """navigator.credentials.get(): an assertion, as AuthenticationResponseJSON.

        The credential is ``credential_id`` if given, else the first of
        ``allow_credentials`` held for ``rp_id``, else (discoverable, usernameless) the first
        credential held for ``rp_id``.  Raises :class:`NoCredentialError` when none matches.
        """
        credential = self._select(
            rp_id=rp_id, credential_id=credential_id, allow_credentials=allow_credentials
        )
        sign_count = credential.sign_count + self.sign_count_step
        counter = _u32(sign_count, "sign count")
        credential.sign_count = sign_count
        auth_data = (
            self._rp_id_hash(rp_id if rp_id_for_hash is None else rp_id_for_hash)
            + bytes([self.flags()])
            + counter
        )
        client_data = collected_client_data(
            client_data_type=client_data_type,
            challenge=challenge,
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
        )
        signature = sign(credential.private_key, auth_data + hashlib.sha256(client_data).digest())
        response: dict[str, Any] = {
            "clientDataJSON": b64url(client_data),
            "authenticatorData": b64url(auth_data),
            "signature": b64url(signature),
        }
        if not omit_user_handle:
            handle = (
                credential.user_handle if user_handle_override is None else user_handle_override
            )
            response["userHandle"] = b64url(handle)
        return self._credential_json(credential.credential_id, response)

    # ---------------------------------------------------------------- test helpers

    def set_sign_count(self, credential_id: bytes, value: int) -> None:
        """Set a credential's counter (e.g. back in time, as a cloned authenticator would)."""
        _u32(value, "sign count")
        self.credentials[credential_id].sign_count = value

    def clone(self) -> SoftAuthenticator:
        """An independent copy with the same keys and counters (for clone detection tests)."""
        return dataclasses.replace(
            self,
            transports=list(self.transports),
            credentials={
                credential_id: dataclasses.replace(credential)
                for credential_id, credential in self.credentials.items()
            },
        )
